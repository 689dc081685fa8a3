using System.Net.Http.Headers;
using System.Net.Http.Json;
using Npgsql;
using TinyOps.Protocol;
using TinyOps.Server.Hosting;

namespace TinyOps.Server.Tests;

/// <summary>
/// Starts a real server (Kestrel on 127.0.0.1, port 0) on a fresh data directory, with SQLite or PostgreSQL.
/// PostgreSQL tests use TINYOPS_TEST_POSTGRES (a connection string to a database the tests may create databases in);
/// .ci/run starts a local cluster and sets it.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private TestServer(TinyOpsServer server, string dataDir)
    {
        Server = server;
        DataDirectory = dataDir;
        Admin = Client(server.AdminToken!);
    }

    public TinyOpsServer Server { get; }
    public string DataDirectory { get; }
    public HttpClient Admin { get; }
    public string BaseUrl => Server.BaseUrl;

    public static IEnumerable<object[]> Backends()
    {
        yield return ["sqlite"];
        if (PostgresConnectionString is not null) yield return ["postgres"];
    }

    public static string? PostgresConnectionString => Environment.GetEnvironmentVariable("TINYOPS_TEST_POSTGRES") is { Length: > 0 } s ? s : null;

    public static async Task<TestServer> StartAsync(string backend, Action<ServerOptions>? configure = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "tinyops-test-" + Guid.NewGuid().ToString("N")[..12]);
        var options = new ServerOptions { DataDirectory = dir, Urls = "http://127.0.0.1:0", Announce = _ => { }, RolloutInterval = TimeSpan.FromMilliseconds(200), DevicePollSeconds = 1 };
        if (backend == "postgres")
        {
            var baseCs = PostgresConnectionString ?? throw new InvalidOperationException("TINYOPS_TEST_POSTGRES is not set");
            string dbName = "tinyops_test_" + Guid.NewGuid().ToString("N")[..12];
            await using (var c = new NpgsqlConnection(baseCs))
            {
                await c.OpenAsync();
                await using var cmd = new NpgsqlCommand($"CREATE DATABASE {dbName}", c);
                await cmd.ExecuteNonQueryAsync();
            }
            options.PostgresConnectionString = new NpgsqlConnectionStringBuilder(baseCs) { Database = dbName }.ToString();
        }
        configure?.Invoke(options);
        var server = await TinyOpsServer.StartAsync(options);
        return new TestServer(server, dir);
    }

    public HttpClient Client(string? token)
    {
        var c = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        if (token is not null) c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return c;
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        try { Directory.Delete(DataDirectory, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

public static class HttpJson
{
    public static async Task<T> ReadAsync<T>(this HttpResponseMessage r)
    {
        if (!r.IsSuccessStatusCode) throw new HttpRequestException($"{(int)r.StatusCode} {r.ReasonPhrase}: {await r.Content.ReadAsStringAsync()}");
        return (await r.Content.ReadFromJsonAsync<T>(ProtocolJsonOptions.Options))!;
    }
}

public static class ProtocolJsonOptions
{
    public static readonly System.Text.Json.JsonSerializerOptions Options = new(ProtocolJson.Default.Options);
}
