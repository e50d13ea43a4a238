using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

/// <summary>What a checkpoint records besides tensors (the <c>meta.json</c> entry).</summary>
public sealed record CheckpointInfo
{
    /// <summary>Format tag, <c>modelzoo-checkpoint/1</c>.</summary>
    public string Format { get; init; } = Checkpoint.FormatTag;
    /// <summary>Model type name, checked on resume.</summary>
    public string Model { get; init; } = "";
    /// <summary>Index of the <see cref="Learner.Fit"/> call (0-based, per learner) that resume continues.</summary>
    public int FitIndex { get; init; }
    /// <summary>Epoch to continue at (epochs before it are complete).</summary>
    public int Epoch { get; init; }
    /// <summary>Training batches of <see cref="Epoch"/> already consumed (0 at an epoch boundary).</summary>
    public int Batch { get; init; }
    /// <summary>Optimizer steps taken in the fit.</summary>
    public long StepInFit { get; init; }
    /// <summary>Optimizer steps taken by this learner over all fits.</summary>
    public long GlobalStep { get; init; }
    /// <summary>Seed the learner was created with.</summary>
    public int? Seed { get; init; }
    /// <summary>Running sums of the partial epoch's training loss: sum over items and item count.</summary>
    public double TrainLossSum { get; init; }
    /// <summary>Items behind <see cref="TrainLossSum"/>.</summary>
    public long TrainItems { get; init; }
    /// <summary>Smoothed training loss shown by the progress bar.</summary>
    public double SmoothLoss { get; init; }
    /// <summary>Number of losses behind <see cref="SmoothLoss"/> (for debiasing).</summary>
    public long SmoothCount { get; init; }
    /// <summary>Non-finite steps skipped so far, and in a row.</summary>
    public int NonFiniteTotal { get; init; }
    /// <summary>Non-finite steps in a row at save time.</summary>
    public int NonFiniteInARow { get; init; }
    /// <summary>Schedule state (plateau schedules), if any.</summary>
    public string? ScheduleState { get; init; }
    /// <summary>Callback states by key.</summary>
    public Dictionary<string, string?> Callbacks { get; init; } = [];
    /// <summary>Per-epoch metrics so far.</summary>
    public List<Dictionary<string, double>> History { get; init; } = [];
    /// <summary>The resolved configuration the caller passed (<see cref="LearnerOptions.Config"/>), verbatim.</summary>
    public string? Config { get; init; }
    /// <summary>Whether optimizer state is stored.</summary>
    public bool HasOptimizer { get; init; }
    /// <summary>UTC time of writing.</summary>
    public DateTime SavedAtUtc { get; init; }
}

/// <summary>
/// The checkpoint file: a zip archive (stored, not compressed) holding <c>meta.json</c> (<see cref="CheckpointInfo"/>),
/// <c>tensors.safetensors</c> (model state as <c>model.*</c>, the CPU RNG state as <c>rng.cpu</c>, callback tensors as
/// <c>cb.&lt;key&gt;.*</c>, in the safetensors layout so Python can read them) and <c>optimizer.bin</c> (TorchSharp's own
/// optimizer state format). Files are written to a temporary name in the same folder and renamed over the target, so a
/// crash mid-write leaves the previous checkpoint intact.
/// </summary>
public static class Checkpoint
{
    /// <summary>The format tag in <c>meta.json</c>.</summary>
    public const string FormatTag = "modelzoo-checkpoint/1";

    /// <summary>Reads only the metadata of a checkpoint.</summary>
    public static CheckpointInfo ReadInfo(string path)
    {
        using var zip = OpenZip(path);
        return ReadMeta(zip, path);
    }

    /// <summary>Reads the model state stored in a checkpoint (names without the <c>model.</c> prefix).</summary>
    public static Dictionary<string, Tensor> ReadModelState(string path)
    {
        using var zip = OpenZip(path);
        return ReadTensors(zip, path).Where(kv => kv.Key.StartsWith("model.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key["model.".Length..], kv => kv.Value);
    }

    internal static ZipArchive OpenZip(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Checkpoint '{path}' does not exist.", path);
        try
        {
            return new ZipArchive(File.OpenRead(path), ZipArchiveMode.Read);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}' is not a ModelZoo checkpoint (not a zip archive): {e.Message}", e);
        }
    }

    internal static CheckpointInfo ReadMeta(ZipArchive zip, string path)
    {
        var entry = zip.GetEntry("meta.json") ?? throw new InvalidDataException($"Checkpoint '{path}' has no meta.json; it was not written by ModelZoo.FineTune.");
        using var s = entry.Open();
        var info = JsonSerializer.Deserialize<CheckpointInfo>(s, Json.Options) ?? throw new InvalidDataException($"Checkpoint '{path}': meta.json is empty.");
        if (info.Format != FormatTag) throw new InvalidDataException($"Checkpoint '{path}' has format '{info.Format}'; this version reads '{FormatTag}'.");
        return info;
    }

    internal static Dictionary<string, Tensor> ReadTensors(ZipArchive zip, string path)
    {
        var entry = zip.GetEntry("tensors.safetensors") ?? throw new InvalidDataException($"Checkpoint '{path}' has no tensors.safetensors entry.");
        using var s = entry.Open();
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        ms.Position = 0;
        return TensorBlob.Read(ms, path);
    }

    internal static byte[]? ReadBytes(ZipArchive zip, string name)
    {
        var entry = zip.GetEntry(name);
        if (entry is null) return null;
        using var s = entry.Open();
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    /// <summary>Prefix and suffix of the temporary files <see cref="Write"/> renames into place (never checkpoints themselves).</summary>
    internal const string TempPrefix = ".", TempSuffix = ".tmp";

    /// <summary>
    /// Test hook for the crash harness: with <c>ZOO_TEST_CHECKPOINT_PAUSE_MS=N</c> each write prints a line to stderr
    /// (<c>zoo-test: checkpoint mid-write|complete|renamed …</c>) half-way through the temporary file, once it is complete
    /// and flushed, and after the rename, and sleeps N ms after the first two, so a kill can land inside the write.
    /// Unset in normal use (-1).
    /// </summary>
    internal static int TestPauseMs =>
        int.TryParse(Environment.GetEnvironmentVariable("ZOO_TEST_CHECKPOINT_PAUSE_MS"), out int ms) && ms >= 0 ? ms : -1;

    private static void TestMarker(string what, string tmp, string full, int pause)
    {
        Console.Error.WriteLine($"zoo-test: checkpoint {what} {tmp} -> {full}");
        Console.Error.Flush();
        if (pause > 0) Thread.Sleep(pause);
    }

    /// <summary>
    /// Writes a checkpoint that holds only model weights and <paramref name="config"/> (no optimizer, no training
    /// position): what <c>zoo import</c> makes of weights trained elsewhere. <c>zoo eval</c>, <c>zoo predict</c> and
    /// <see cref="Learner.LoadWeights"/> read it; <see cref="Learner.Resume"/> does not (there is no run to resume).
    /// </summary>
    /// <param name="path">The <c>.ckpt</c> file to write (atomically).</param>
    /// <param name="modelType">The model's type name (<c>model.GetType().Name</c>).</param>
    /// <param name="state">The model's state dict.</param>
    /// <param name="config">The description the caller stores with it (e.g. a trained-model spec as JSON).</param>
    public static void WriteWeights(string path, string modelType, IEnumerable<KeyValuePair<string, Tensor>> state, string? config)
    {
        var info = new CheckpointInfo { Model = modelType, Config = config, SavedAtUtc = DateTime.UtcNow };
        Write(path, info, state.Select(kv => ("model." + kv.Key, kv.Value)), null);
    }

    /// <summary>Writes a checkpoint atomically: to a temporary file in the target folder, then renamed over <paramref name="path"/>.</summary>
    /// <exception cref="IOException">The folder cannot be created or written (read-only, a file in the way, disk full); the message names the path.
    /// The previous file at <paramref name="path"/> is left as it was and the temporary file is removed.</exception>
    internal static void Write(string path, CheckpointInfo info, IEnumerable<(string Name, Tensor Tensor)> tensors, Action<BinaryWriter>? optimizer,
        Func<string, Stream>? open = null)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        try
        {
            Directory.CreateDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Cannot write checkpoint '{full}': the folder '{dir}' cannot be created ({e.Message}). " +
                "Check that the run folder's path is a writable folder (not a file) on a mounted, writable file system.", e);
        }
        string tmp = Path.Combine(dir, $"{TempPrefix}{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}");
        try
        {
            using (var fs = (open ?? (p => new FileStream(p, FileMode.CreateNew, FileAccess.Write, FileShare.None)))(tmp))
            {
                using (var zip = new ZipArchive(fs, ZipArchiveMode.Create, leaveOpen: true))
                {
                    using (var s = zip.CreateEntry("meta.json", CompressionLevel.NoCompression).Open())
                        JsonSerializer.Serialize(s, info, Json.Indented);
                    if (TestPauseMs is int midPause and >= 0)
                    {
                        fs.Flush();
                        TestMarker("mid-write", tmp, full, midPause);
                    }
                    using (var s = zip.CreateEntry("tensors.safetensors", CompressionLevel.NoCompression).Open())
                        TensorBlob.Write(s, tensors);
                    if (optimizer is not null)
                    {
                        using var s = zip.CreateEntry("optimizer.bin", CompressionLevel.NoCompression).Open();
                        using var w = new BinaryWriter(s, Encoding.UTF8, leaveOpen: true);
                        optimizer(w);
                        w.Flush();
                    }
                }
                if (fs is FileStream f) f.Flush(flushToDisk: true);
                else fs.Flush();
            }
            int pause = TestPauseMs;
            if (pause >= 0) TestMarker("complete", tmp, full, pause);
            File.Move(tmp, full, overwrite: true);
            if (pause >= 0) TestMarker("renamed", tmp, full, 0);
        }
        catch (Exception e)
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            if (e is IOException or UnauthorizedAccessException && !e.Message.Contains(full, StringComparison.Ordinal))
                throw new IOException($"Cannot write checkpoint '{full}': {e.Message}{(IsDiskFull(e) ? " The disk is full: free space or point the run folder elsewhere." : "")} " +
                    "The previous checkpoint at that path, if any, is unchanged.", e) { HResult = e.HResult };
            throw;
        }
    }

    /// <summary>ENOSPC (28) or EDQUOT (122) from the OS, or the Windows disk-full codes.</summary>
    internal static bool IsDiskFull(Exception e) =>
        e is IOException && ((e.HResult & 0xFFFF) is 28 or 122 or 0x70 or 0x27 || e.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase));

    /// <summary>Deletes temporary checkpoint files left in <paramref name="folder"/> by processes that died mid-write; returns their names.</summary>
    public static IReadOnlyList<string> DeleteStaleTemporaryFiles(string folder)
    {
        var removed = new List<string>();
        if (!Directory.Exists(folder)) return removed;
        foreach (var f in Directory.EnumerateFiles(folder, $"{TempPrefix}*.ckpt.*{TempSuffix}"))
        {
            // .<name>.ckpt.<pid>.<guid>.tmp: skip files of a live process other than this one
            var parts = Path.GetFileName(f).Split('.');
            if (parts.Length >= 4 && int.TryParse(parts[^3], out int pid) && pid != Environment.ProcessId && IsAlive(pid)) continue;
            try
            {
                File.Delete(f);
                removed.Add(Path.GetFileName(f));
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return removed;
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }
}

/// <summary>Tensors in the safetensors layout: 8-byte little-endian header length, JSON header, raw little-endian data.</summary>
internal static class TensorBlob
{
    private static readonly Dictionary<ScalarType, string> Names = new()
    {
        [ScalarType.Float32] = "F32", [ScalarType.Float64] = "F64", [ScalarType.Float16] = "F16", [ScalarType.BFloat16] = "BF16",
        [ScalarType.Int64] = "I64", [ScalarType.Int32] = "I32", [ScalarType.Int16] = "I16", [ScalarType.Int8] = "I8",
        [ScalarType.Byte] = "U8", [ScalarType.Bool] = "BOOL",
    };

    public static void Write(Stream s, IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        using var scope = NewDisposeScope();
        var list = tensors.Select(t => (t.Name, T: t.Tensor.detach().cpu().contiguous())).ToList();
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, t) in list)
        {
            if (!Names.TryGetValue(t.dtype, out var dt)) throw new NotSupportedException($"Tensor '{name}' has dtype {t.dtype}, which checkpoints do not store.");
            long n = t.NumberOfElements * t.ElementSize;
            header[name] = new { dtype = dt, shape = t.shape, data_offsets = new[] { offset, offset + n } };
            offset += n;
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        int pad = (8 - json.Length % 8) % 8;
        var head = new byte[json.Length + pad];
        json.CopyTo(head, 0);
        for (int i = json.Length; i < head.Length; i++) head[i] = (byte)' ';
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)head.Length);
        s.Write(len);
        s.Write(head);
        foreach (var (_, t) in list) if (t.NumberOfElements > 0) s.Write(t.bytes);
    }

    public static Dictionary<string, Tensor> Read(Stream s, string source)
    {
        Span<byte> len = stackalloc byte[8];
        s.ReadExactly(len);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (n > 100_000_000) throw new InvalidDataException($"'{source}': tensor header of {n} bytes is not plausible; the file is damaged.");
        var head = new byte[n];
        s.ReadExactly(head);
        long dataStart = 8 + (long)n;
        using var doc = JsonDocument.Parse(head);
        var result = new Dictionary<string, Tensor>();
        var byName = Names.ToDictionary(kv => kv.Value, kv => kv.Key);
        var entries = doc.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__")
            .Select(p => (p.Name, DType: p.Value.GetProperty("dtype").GetString()!,
                Shape: p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                Begin: p.Value.GetProperty("data_offsets")[0].GetInt64(), End: p.Value.GetProperty("data_offsets")[1].GetInt64()))
            .OrderBy(e => e.Begin).ToList();
        foreach (var e in entries)
        {
            if (!byName.TryGetValue(e.DType, out var dtype)) throw new InvalidDataException($"'{source}': tensor '{e.Name}' has unknown dtype '{e.DType}'.");
            var t = empty(e.Shape, dtype);
            long size = t.NumberOfElements * t.ElementSize;
            if (size != e.End - e.Begin) throw new InvalidDataException($"'{source}': tensor '{e.Name}' has {e.End - e.Begin} bytes for shape [{string.Join(", ", e.Shape)}] {e.DType}.");
            s.Position = dataStart + e.Begin;
            if (size > 0) s.ReadExactly(t.bytes);
            result[e.Name] = t;
        }
        return result;
    }
}
