using System.Diagnostics;
using TinyOps.Engine.Kernels.Nn;

// usage: dotnet run -c Release --project bench/TinyOps.Bench.Kernels [-- gemm M N K ...]
// Without arguments: the GEMM shapes of the convolutions that dominate ResNet-18, MobileNetV2 and SqueezeNet.
var shapes = new List<(string Name, int M, int N, int K)>();
if (args.Length >= 4 && args[0] == "gemm")
    for (int i = 1; i + 2 < args.Length; i += 3) shapes.Add(("arg", int.Parse(args[i]), int.Parse(args[i + 1]), int.Parse(args[i + 2])));
else
{
    shapes.Add(("resnet layer1 3x3", 64, 3136, 576));
    shapes.Add(("resnet layer2 3x3", 128, 784, 1152));
    shapes.Add(("resnet layer4 3x3", 512, 49, 4608));
    shapes.Add(("resnet conv1 7x7", 64, 12544, 147));
    shapes.Add(("mnv2 1x1 16->96", 96, 12544, 16));
    shapes.Add(("mnv2 1x1 96->24", 24, 3136, 96));
    shapes.Add(("mnv2 1x1 144->24", 24, 3136, 144));
    shapes.Add(("mnv2 1x1 576->96", 96, 196, 576));
    shapes.Add(("mnv2 1x1 320->1280", 1280, 49, 320));
    shapes.Add(("sqz classifier 512->1000", 1000, 169, 512));
    shapes.Add(("sqz expand3x3 16->64", 64, 3025, 144));
}
var rng = new Random(1);
foreach (var (name, M, N, K) in shapes)
{
    var a = new float[M * K]; var b = new float[K * N]; var c = new float[M * N]; var bias = new float[M];
    for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble() - 0.5f;
    for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble() - 0.5f;
    var packed = SGemm.PackA(false, M, K, a, K);
    var act = new FusedActivation(ActivationKind.Relu);
    void Once() => SGemm.Multiply(false, false, M, N, K, 1f, a, K, b, N, 0f, c, N, bias, default, in act, 1, packed);
    var sw = Stopwatch.StartNew();
    while (sw.ElapsedMilliseconds < 300) Once();
    double flops = 2.0 * M * N * K;
    int reps = Math.Max(3, (int)(2e8 / flops));
    var times = new double[15];
    for (int t = 0; t < times.Length; t++)
    {
        long s = Stopwatch.GetTimestamp();
        for (int r = 0; r < reps; r++) Once();
        times[t] = Stopwatch.GetElapsedTime(s).TotalSeconds / reps;
    }
    Array.Sort(times);
    double med = times[times.Length / 2];
    Console.WriteLine($"{name,-26} M={M,5} N={N,6} K={K,5}  {med * 1e6,10:F1} us  {flops / med / 1e9,6:F1} GFLOP/s");
}
