using System.Runtime.InteropServices;

namespace TinyOps.Engine.Runtime;

/// <summary>Grow-only scratch buffers owned by a session; after warm-up no run allocates.</summary>
internal sealed class ScratchPool
{
    private readonly byte[][] _slots = [[], [], [], [], [], [], [], []];

    public long TotalBytes
    {
        get { long n = 0; foreach (var s in _slots) n += s.Length; return n; }
    }

    public Span<T> Get<T>(int count, int slot) where T : unmanaged
    {
        long bytes = (long)count * Marshal.SizeOf<T>();
        if (bytes > Array.MaxLength) throw new ResourceLimitException($"a kernel asked for {bytes} bytes of scratch memory");
        ref byte[] buf = ref _slots[slot];
        if (buf.Length < bytes) buf = new byte[Math.Max(bytes, buf.Length * 3L / 2)];
        return MemoryMarshal.Cast<byte, T>(buf.AsSpan(0, (int)bytes));
    }
}
