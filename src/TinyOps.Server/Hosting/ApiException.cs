namespace TinyOps.Server.Hosting;

/// <summary>An error with an HTTP status, returned to the client as problem details.</summary>
public sealed class ApiException(int status, string title, string detail) : Exception(detail)
{
    public int Status { get; } = status;
    public string Title { get; } = title;

    /// <summary>The request field at fault (problem details' "field"), when there is one.</summary>
    public string? Field { get; init; }

    public static ApiException BadRequest(string detail) => new(400, "bad request", detail);
    /// <summary>A 400 naming the request field at fault (problem details' "field").</summary>
    public static ApiException BadField(string field, string detail) => new(400, "bad request", detail) { Field = field };
    public static ApiException Unauthorized(string detail) => new(401, "unauthorized", detail);
    public static ApiException Forbidden(string detail) => new(403, "forbidden", detail);
    public static ApiException NotFound(string detail) => new(404, "not found", detail);
    public static ApiException Conflict(string detail) => new(409, "conflict", detail);
    public static ApiException Unprocessable(string detail) => new(422, "unprocessable", detail);
}
