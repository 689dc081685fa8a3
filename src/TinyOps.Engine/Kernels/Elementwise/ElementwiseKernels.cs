namespace TinyOps.Engine.Kernels.Elementwise;

internal static class ElementwiseKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Register("Add", (n, o) => new ArithmeticKernel(n, o, ArithmeticKernel.Op.Add));
        r.Register("Sub", (n, o) => new ArithmeticKernel(n, o, ArithmeticKernel.Op.Sub));
        r.Register("Mul", (n, o) => new ArithmeticKernel(n, o, ArithmeticKernel.Op.Mul));
        r.Register("Div", (n, o) => new ArithmeticKernel(n, o, ArithmeticKernel.Op.Div));
        r.Register("Pow", (n, o) => new PowKernel(n, o));
        r.Register("Equal", (n, o) => new EqualKernel(n, o));
        r.Register("Where", (n, o) => new WhereKernel(n, o));
        r.Register("Sum", (n, o) => new VariadicKernel(n, o, VariadicKernel.Op.Sum));
        r.Register("Mean", (n, o) => new VariadicKernel(n, o, VariadicKernel.Op.Mean));
        r.Register("Max", (n, o) => new VariadicKernel(n, o, VariadicKernel.Op.Max));
        r.Register("Min", (n, o) => new VariadicKernel(n, o, VariadicKernel.Op.Min));
        r.Register("Relu", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.Relu));
        r.Register("LeakyRelu", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.LeakyRelu));
        r.Register("Sigmoid", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.Sigmoid));
        r.Register("Tanh", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.Tanh));
        r.Register("HardSigmoid", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.HardSigmoid));
        r.Register("HardSwish", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.HardSwish), 14);
        r.Register("Sqrt", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.Sqrt));
        r.Register("Exp", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.Exp));
        r.Register("Log", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.Log));
        r.Register("Neg", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.Neg));
        r.Register("Abs", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.Abs));
        r.Register("Reciprocal", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.Reciprocal));
        r.Register("Erf", (n, o) => new UnaryKernel(n, o, UnaryKernel.Op.Erf), 9);
        r.Register("Clip", (n, o) => new ClipKernel(n, o));
        r.Register("Cast", (n, o) => new CastKernel(n, o));
        r.Register("Identity", (n, o) => new IdentityKernel(n, o));
        r.Register("Dropout", (n, o) => new DropoutKernel(n, o));
    }
}
