using System.Runtime.InteropServices;

namespace TinyOps.Engine.Runtime;

/// <summary>
/// Grow-only scratch buffers owned by a session; after warm-up no run allocates. Buffers are pinned and every span
/// starts on a 64-byte boundary, so Vector512 loads and stores of kernels never split a cache line.
/// </summary>
internal sealed class ScratchPool
{
    private const int Alignment = 64;
    private readonly byte[][] _slots = [[], [], [], [], [], [], [], []];
    private readonly int[] _start = new int[8];

    public long TotalBytes
    {
        get { long n = 0; foreach (var s in _slots) n += s.Length; return n; }
    }

    /// <summary>The first index of a pinned array whose address is a multiple of 64.</summary>
    public static unsafe int AlignedStart(byte[] pinned)
    {
        if (pinned.Length == 0) return 0;
        long address = (long)System.Runtime.CompilerServices.Unsafe.AsPointer(ref pinned[0]);
        return (int)((Alignment - address % Alignment) % Alignment);
    }

    public Span<T> Get<T>(int count, int slot) where T : unmanaged
    {
        long bytes = (long)count * Marshal.SizeOf<T>();
        if (bytes > Array.MaxLength) throw new ResourceLimitException($"a kernel asked for {bytes} bytes of scratch memory");
        ref byte[] buf = ref _slots[slot];
        if (buf.Length - _start[slot] < bytes)
        {
            buf = GC.AllocateUninitializedArray<byte>((int)Math.Min(Array.MaxLength, Math.Max(bytes, (buf.Length - _start[slot]) * 3L / 2) + Alignment), pinned: true);
            _start[slot] = AlignedStart(buf);
        }
        return MemoryMarshal.Cast<byte, T>(buf.AsSpan(_start[slot], (int)bytes));
    }
}
