using System.Runtime.InteropServices;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>
/// Pad: 'paddings' (opset 1) or 'pads' (2-10) attributes with 'value', or pads / constant_value / axes (18+)
/// inputs from 11. Modes constant, reflect, edge and wrap (19+). Negative pads crop.
/// </summary>
internal sealed class PadKernel : Kernel
{
    private enum PadMode { Constant, Reflect, Edge, Wrap }

    private readonly PadMode _mode;
    private readonly long[]? _padsAttr;
    private readonly float _value;

    public PadKernel(Node node, int opset) : base(node, opset)
    {
        string mode = node.GetString("mode", "constant");
        _mode = mode switch
        {
            "constant" => PadMode.Constant,
            "reflect" => PadMode.Reflect,
            "edge" => PadMode.Edge,
            "wrap" when opset >= 19 => PadMode.Wrap,
            _ => throw Error($"mode '{mode}' is not valid at opset {opset} (constant, reflect, edge{(opset >= 19 ? ", wrap" : "")})"),
        };
        if (opset < 11)
        {
            string name = opset < 2 ? "paddings" : "pads";
            _padsAttr = node.GetInts(name) ?? throw Error($"required attribute '{name}' is missing");
            _value = node.GetFloat("value", 0f);
        }
    }

    public override void Infer(InferContext ctx)
    {
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        var input = ctx.InputShape(0);
        int r = input.Length;
        Tensor? padsT = null, axesT = null;
        if (Opset >= 11)
        {
            ctx.ExpectType(1, DataType.Int64);
            padsT = ctx.RequireValue(1);
            if (ctx.HasInput(2))
            {
                if (ctx.InputType(2) != type) throw ctx.Error($"constant_value has type {ctx.InputType(2).OnnxName()} but data has {type.OnnxName()}");
                if (ShapeUtil.Size(ctx.InputShape(2)) != 1) throw ctx.Error("constant_value must hold one element");
            }
            if (Opset >= 18 && ctx.HasInput(3))
            {
                ctx.ExpectType(3, ShapeOpsUtil.IndexTypes);
                axesT = ctx.RequireValue(3);
            }
        }
        Span<long> begin = stackalloc long[r];
        Span<long> end = stackalloc long[r];
        string? error = ComputePads(input, padsT, axesT, begin, end);
        if (error is not null) throw ctx.Error(error);
        var output = new int[r];
        for (int d = 0; d < r; d++)
        {
            long n = input[d] + begin[d] + end[d];
            if (n < 0 || n > int.MaxValue) throw ctx.Error($"pads {begin[d]},{end[d]} give axis {d} of size {input[d]} an invalid size {n}");
            long kept = input[d] - Math.Max(0, -begin[d]) - Math.Max(0, -end[d]);
            if (_mode != PadMode.Constant && n > 0 && kept <= 0)
                throw ctx.Error($"cannot pad axis {d} in {_mode.ToString().ToLowerInvariant()} mode: no input elements remain along it");
            output[d] = (int)n;
        }
        ctx.SetOutput(0, type, output);
    }

    private string? ComputePads(ReadOnlySpan<int> shape, Tensor? padsT, Tensor? axesT, Span<long> begin, Span<long> end)
    {
        int r = shape.Length;
        begin.Clear();
        end.Clear();
        int nPads = _padsAttr?.Length ?? padsT!.Length;
        int k = axesT?.Length ?? r;
        if (nPads != 2 * k) return $"pads has {nPads} entries; expected {2 * k} (twice the number of {(axesT is null ? "input axes" : "axes")})";
        Span<bool> seen = stackalloc bool[r];
        seen.Clear();
        for (int i = 0; i < k; i++)
        {
            int axis = i;
            if (axesT is not null)
            {
                long a = axesT.GetInt64(i);
                if (a < -r || a >= r) return $"axis {a} is out of range for rank {r}";
                axis = (int)(a < 0 ? a + r : a);
                if (seen[axis]) return $"axis {a} is repeated";
                seen[axis] = true;
            }
            begin[axis] = _padsAttr is not null ? _padsAttr[i] : padsT!.GetInt64(i);
            end[axis] = _padsAttr is not null ? _padsAttr[i + k] : padsT!.GetInt64(i + k);
            if (Math.Abs(begin[axis]) > int.MaxValue || Math.Abs(end[axis]) > int.MaxValue) return "pads are too large";
        }
        return null;
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0);
        var inShape = x.Shape;
        var outShape = y.Shape;
        int r = inShape.Length;
        Span<long> begin = stackalloc long[r];
        Span<long> end = stackalloc long[r];
        string? error = ComputePads(inShape, ctx.OptionalInput(1), Opset >= 18 ? ctx.OptionalInput(3) : null, begin, end);
        if (error is not null) throw Error(error);

        Span<byte> fill = stackalloc byte[8];
        fill.Clear();
        var cv = Opset >= 11 ? ctx.OptionalInput(2) : null;
        if (cv is not null) cv.Bytes.CopyTo(fill);
        else if (_value != 0f)
        {
            switch (x.Type)
            {
                case DataType.Float32: MemoryMarshal.Write(fill, in _value); break;
                case DataType.Int32: MemoryMarshal.Write(fill, (int)_value); break;
                case DataType.Int64: MemoryMarshal.Write(fill, (long)_value); break;
                case DataType.Int8: fill[0] = (byte)(sbyte)_value; break;
                case DataType.Bool: fill[0] = 1; break;
                default: fill[0] = (byte)_value; break;
            }
        }

        int total = 0;
        for (int d = 0; d < r; d++) total += outShape[d];
        var maps = ctx.Scratch<int>(Math.Max(1, total), 0);
        int k = 0, stride = 1;
        Span<int> strides = stackalloc int[r];
        for (int d = r - 1; d >= 0; d--) { strides[d] = stride; stride *= inShape[d]; }
        for (int d = 0; d < r; d++)
        {
            int lo = (int)Math.Max(0, -begin[d]);
            int n = inShape[d] - lo - (int)Math.Max(0, -end[d]);
            int shift = (int)Math.Max(0, begin[d]);
            for (int o = 0; o < outShape[d]; o++)
            {
                int p = o - shift;
                if (p < 0 || p >= n)
                {
                    switch (_mode)
                    {
                        case PadMode.Constant: maps[k++] = -1; continue;
                        case PadMode.Edge: p = p < 0 ? 0 : n - 1; break;
                        case PadMode.Wrap: p = ((p % n) + n) % n; break;
                        default:
                            if (n == 1) p = 0;
                            else
                            {
                                int period = 2 * (n - 1);
                                p = ((p % period) + period) % period;
                                if (p >= n) p = period - p;
                            }
                            break;
                    }
                }
                maps[k++] = (lo + p) * strides[d];
            }
        }
        ShapeOpsUtil.MapGather(x, y, outShape, maps, fill.Slice(0, x.Type.ElementSize()));
    }
}
