namespace TinyOps.Engine.Planning;

/// <summary>A buffer to place: its size and the first and last execution steps during which it is live.</summary>
public readonly record struct BufferRequest(long Bytes, int FirstStep, int LastStep);

/// <summary>Offsets for every request, the arena size they need, and the lower bound no placement can beat.</summary>
public sealed record MemoryPlan(long[] Offsets, long ArenaBytes, long LiveLowerBound)
{
    /// <summary>Arena bytes over the lower bound, as a fraction (0.05 = 5% above).</summary>
    public double Overhead => LiveLowerBound == 0 ? 0 : (double)ArenaBytes / LiveLowerBound - 1;
}

/// <summary>
/// Static arena planner: greedy by size (largest first), each buffer placed at the lowest offset that does
/// not overlap any already placed buffer whose lifetime intersects its own.
/// </summary>
public static class MemoryPlanner
{
    /// <summary>Large buffers start on 64-byte boundaries (a cache line, an AVX-512 register).</summary>
    public const int LargeAlignment = 64;
    public const int SmallAlignment = 16;

    public static long Align(long bytes) => bytes >= 4096
        ? (bytes + LargeAlignment - 1) / LargeAlignment * LargeAlignment
        : (bytes + SmallAlignment - 1) / SmallAlignment * SmallAlignment;

    public static MemoryPlan Plan(IReadOnlyList<BufferRequest> requests)
    {
        int n = requests.Count;
        var offsets = new long[n];
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Array.Sort(order, (a, b) =>
        {
            int c = requests[b].Bytes.CompareTo(requests[a].Bytes);
            return c != 0 ? c : requests[a].FirstStep.CompareTo(requests[b].FirstStep);
        });

        var placed = new List<int>(n);
        var conflicts = new List<(long Start, long End)>();
        long arena = 0;
        foreach (int i in order)
        {
            var r = requests[i];
            long size = Align(r.Bytes);
            conflicts.Clear();
            foreach (int j in placed)
            {
                var q = requests[j];
                if (q.FirstStep <= r.LastStep && r.FirstStep <= q.LastStep)
                    conflicts.Add((offsets[j], offsets[j] + Align(q.Bytes)));
            }
            conflicts.Sort((a, b) => a.Start.CompareTo(b.Start));
            // Best fit: the smallest gap that holds the buffer; else the end.
            long best = -1, bestGap = long.MaxValue, cursor = 0;
            foreach (var (start, end) in conflicts)
            {
                long gap = start - cursor;
                if (gap >= size && gap < bestGap) { best = cursor; bestGap = gap; }
                cursor = Math.Max(cursor, end);
            }
            offsets[i] = best >= 0 ? best : cursor;
            arena = Math.Max(arena, offsets[i] + size);
            placed.Add(i);
        }
        return new MemoryPlan(offsets, arena, LiveLowerBound(requests));
    }

    /// <summary>The largest total of buffers live at the same step: no placement can use less memory.</summary>
    public static long LiveLowerBound(IReadOnlyList<BufferRequest> requests)
    {
        if (requests.Count == 0) return 0;
        int steps = 0;
        foreach (var r in requests) steps = Math.Max(steps, r.LastStep + 1);
        var delta = new long[steps + 1];
        foreach (var r in requests)
        {
            delta[r.FirstStep] += r.Bytes;
            delta[r.LastStep + 1] -= r.Bytes;
        }
        long live = 0, max = 0;
        for (int s = 0; s < steps; s++) { live += delta[s]; max = Math.Max(max, live); }
        return max;
    }
}
