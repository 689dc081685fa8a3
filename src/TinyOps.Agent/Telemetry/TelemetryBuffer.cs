using System.Globalization;
using System.Text.Json;
using TinyOps.Agent.State;
using TinyOps.Protocol;
using TinyOps.Protocol.Telemetry;

namespace TinyOps.Agent.Telemetry;

/// <summary>
/// A bounded on-disk buffer of inference records. Records are appended as JSON lines to segment files
/// (seg-N.jsonl); a batch is cut by writing the oldest segments into one batch file atomically
/// (batch-FIRST-LAST-ID.json, the id fixed at that moment) and deleting them, so a retried upload sends the same
/// id. A batch file is deleted only once the server acknowledged it. When the buffer is over its bounds the oldest
/// file is dropped and its records are counted, persisted in counters.json and reported with the next batch.
/// A torn last line (crash while appending) is skipped when read; a restart never appends to an old segment.
/// </summary>
public sealed class TelemetryBuffer : IDisposable
{
    private const string CountersFile = "counters.json";
    private readonly string _dir;
    private readonly TelemetryBufferOptions _options;
    private readonly Lock _lock = new();
    private readonly SortedList<long, Entry> _entries = [];
    private long _next;
    private Entry? _current;
    private FileStream? _currentStream;
    private TelemetryCounters _counters;
    private string? _inFlight;

    private sealed class Entry
    {
        public required string Path;
        public required bool IsBatch;
        public string? BatchId;
        public long First;
        public long Last;
        public int Records;
        public long Bytes;
        public long CarriedDropped;
    }

    public TelemetryBuffer(string directory, TelemetryBufferOptions? options = null)
    {
        _dir = directory;
        _options = options ?? new TelemetryBufferOptions();
        Directory.CreateDirectory(_dir);
        _counters = ReadCounters();
        Recover();
    }

    /// <summary>Records dropped since the last cut batch (reported with the next one).</summary>
    public long Dropped { get { lock (_lock) return _counters.Dropped; } }

    /// <summary>Records dropped since the buffer was created.</summary>
    public long DroppedTotal { get { lock (_lock) return _counters.DroppedTotal; } }

    /// <summary>Records waiting on disk (in segments and cut batches).</summary>
    public int PendingRecords { get { lock (_lock) return _entries.Values.Sum(e => e.Records); } }

    public long PendingBytes { get { lock (_lock) return _entries.Values.Sum(e => e.Bytes); } }

    /// <summary>Cut batches waiting for an acknowledgement.</summary>
    public int PendingBatches { get { lock (_lock) return _entries.Values.Count(e => e.IsBatch); } }

    public void Add(InferenceRecord record)
    {
        byte[] line = JsonSerializer.SerializeToUtf8Bytes(record, ProtocolJson.Default.InferenceRecord);
        lock (_lock)
        {
            if (_current is null || _current.Records >= _options.SegmentRecords) OpenSegment();
            var stream = _currentStream!;
            stream.Write(line);
            stream.WriteByte((byte)'\n');
            _current!.Records++;
            _current.Bytes += line.Length + 1;
            EnforceBounds();
        }
    }

    /// <summary>
    /// The batch to upload next: the oldest batch already cut (a retry keeps its id), or a new one cut from the
    /// oldest segments. Null when there is nothing to send. Call <see cref="Acknowledge"/> after the server's ack.
    /// </summary>
    public TelemetryBatch? NextBatch()
    {
        lock (_lock)
        {
            foreach (var e in _entries.Values)
            {
                if (!e.IsBatch) break;
                var existing = ReadBatch(e);
                if (existing is null) continue;
                _inFlight = existing.BatchId;
                return existing;
            }
            var cut = Cut();
            _inFlight = cut?.BatchId;
            return cut;
        }
    }

    /// <summary>Deletes an acknowledged batch.</summary>
    public void Acknowledge(string batchId)
    {
        lock (_lock)
        {
            if (_inFlight == batchId) _inFlight = null;
            foreach (var (key, e) in _entries)
            {
                if (e.IsBatch && e.BatchId == batchId)
                {
                    File.Delete(e.Path);
                    _entries.Remove(key);
                    return;
                }
            }
        }
    }

    /// <summary>The upload failed; the batch stays (with its id) for the next attempt.</summary>
    public void Release(string batchId)
    {
        lock (_lock) if (_inFlight == batchId) _inFlight = null;
    }

    private TelemetryBatch? ReadBatch(Entry e)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(e.Path), ProtocolJson.Default.TelemetryBatch);
        }
        catch (Exception ex) when (ex is JsonException or IOException)
        {
            // An unreadable batch cannot be sent; count its records as dropped rather than block the queue.
            DropEntry(e);
            return null;
        }
    }

    private TelemetryBatch? Cut()
    {
        var segments = new List<Entry>();
        int count = 0;
        foreach (var e in _entries.Values)
        {
            if (e.IsBatch) continue;
            if (e.Records == 0 && e == _current) continue;
            if (segments.Count > 0 && count + e.Records > _options.BatchRecords) break;
            segments.Add(e);
            count += e.Records;
        }
        if (segments.Count == 0 && _counters.Dropped == 0) return null;
        if (segments.Contains(_current!)) CloseSegment();

        var records = new List<InferenceRecord>(count);
        foreach (var s in segments) records.AddRange(ReadSegment(s.Path));
        long first = segments.Count > 0 ? segments[0].First : _next;
        long last = segments.Count > 0 ? segments[^1].Last : _next;
        if (segments.Count == 0) _next++;
        string id = Guid.NewGuid().ToString("N");
        var batch = new TelemetryBatch { BatchId = id, Records = records, Dropped = _counters.Dropped };
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(batch, ProtocolJson.Default.TelemetryBatch);
        string path = Path.Combine(_dir, $"batch-{first.ToString("D10", CultureInfo.InvariantCulture)}-{last.ToString("D10", CultureInfo.InvariantCulture)}-{id}.json");
        AtomicFile.WriteAllBytes(path, bytes);
        foreach (var s in segments)
        {
            File.Delete(s.Path);
            _entries.Remove(s.First);
        }
        _entries[first] = new Entry { Path = path, IsBatch = true, BatchId = id, First = first, Last = last, Records = records.Count, Bytes = bytes.Length, CarriedDropped = batch.Dropped };
        WriteCounters(_counters with { Dropped = 0, CutThrough = last });
        return batch;
    }

    private void EnforceBounds()
    {
        while (true)
        {
            long bytes = 0;
            int records = 0;
            foreach (var e in _entries.Values) { bytes += e.Bytes; records += e.Records; }
            if (bytes <= _options.MaxBytes && records <= _options.MaxRecords) return;
            Entry? victim = null;
            foreach (var e in _entries.Values)
            {
                if (e.IsBatch && e.BatchId == _inFlight) continue;
                victim = e;
                break;
            }
            if (victim is null) return;
            DropEntry(victim);
        }
    }

    private void DropEntry(Entry e)
    {
        if (e == _current) CloseSegment();
        File.Delete(e.Path);
        _entries.Remove(e.First);
        long lost = e.Records + e.CarriedDropped;
        WriteCounters(_counters with { Dropped = _counters.Dropped + lost, DroppedTotal = _counters.DroppedTotal + lost });
    }

    private void OpenSegment()
    {
        CloseSegment();
        long n = _next++;
        string path = Path.Combine(_dir, $"seg-{n.ToString("D10", CultureInfo.InvariantCulture)}.jsonl");
        // Unbuffered: each record reaches the OS when written, so an abrupt exit keeps it.
        _currentStream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0);
        _current = new Entry { Path = path, IsBatch = false, First = n, Last = n };
        _entries[n] = _current;
    }

    private void CloseSegment()
    {
        _currentStream?.Dispose();
        _currentStream = null;
        _current = null;
    }

    private static List<InferenceRecord> ReadSegment(string path)
    {
        var list = new List<InferenceRecord>();
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0) continue;
            try
            {
                if (JsonSerializer.Deserialize(line, ProtocolJson.Default.InferenceRecord) is { } r) list.Add(r);
            }
            catch (JsonException)
            {
                // A torn line from a crash while appending.
            }
        }
        return list;
    }

    private void Recover()
    {
        long maxCut = -1;
        var batches = new List<Entry>();
        foreach (var path in Directory.EnumerateFiles(_dir))
        {
            string name = Path.GetFileName(path);
            if (name.EndsWith(".tmp", StringComparison.Ordinal)) { File.Delete(path); continue; }
            if (name.StartsWith("batch-", StringComparison.Ordinal) && name.EndsWith(".json", StringComparison.Ordinal))
            {
                var parts = name[6..^5].Split('-');
                if (parts.Length != 3 || !long.TryParse(parts[0], CultureInfo.InvariantCulture, out long first) || !long.TryParse(parts[1], CultureInfo.InvariantCulture, out long last))
                    continue;
                var e = new Entry { Path = path, IsBatch = true, BatchId = parts[2], First = first, Last = last, Bytes = new FileInfo(path).Length };
                var b = ReadBatchQuiet(path);
                if (b is null) { File.Delete(path); continue; }
                e.Records = b.Records.Count;
                e.CarriedDropped = b.Dropped;
                batches.Add(e);
                _entries[first] = e;
                maxCut = Math.Max(maxCut, last);
                _next = Math.Max(_next, last + 1);
            }
        }
        foreach (var path in Directory.EnumerateFiles(_dir, "seg-*.jsonl"))
        {
            string name = Path.GetFileName(path);
            if (!long.TryParse(name[4..^6], CultureInfo.InvariantCulture, out long n)) continue;
            // A crash between writing a batch and deleting its segments: the batch has them already.
            if (batches.Any(b => n >= b.First && n <= b.Last)) { File.Delete(path); continue; }
            int records = ReadSegment(path).Count;
            _entries[n] = new Entry { Path = path, IsBatch = false, First = n, Last = n, Records = records, Bytes = new FileInfo(path).Length };
            _next = Math.Max(_next, n + 1);
        }
        // A crash between writing a batch and resetting the dropped counter: the batch reports them already.
        if (maxCut > _counters.CutThrough) WriteCounters(_counters with { Dropped = 0, CutThrough = maxCut });
    }

    private static TelemetryBatch? ReadBatchQuiet(string path)
    {
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(path), ProtocolJson.Default.TelemetryBatch); }
        catch (Exception ex) when (ex is JsonException or IOException) { return null; }
    }

    private TelemetryCounters ReadCounters()
    {
        string path = Path.Combine(_dir, CountersFile);
        try
        {
            if (File.Exists(path)) return JsonSerializer.Deserialize(File.ReadAllBytes(path), AgentJson.Default.TelemetryCounters) ?? new TelemetryCounters();
        }
        catch (JsonException)
        {
        }
        return new TelemetryCounters { CutThrough = -1 };
    }

    private void WriteCounters(TelemetryCounters counters)
    {
        _counters = counters;
        AtomicFile.WriteAllBytes(Path.Combine(_dir, CountersFile), JsonSerializer.SerializeToUtf8Bytes(counters, AgentJson.Default.TelemetryCounters));
    }

    public void Dispose()
    {
        lock (_lock) CloseSegment();
    }
}
