using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>
/// Hugging Face safetensors: an 8-byte little-endian header length N, N bytes of JSON
/// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}), then the tensor bytes.
/// The header is validated before anything is allocated: bounded length, known dtypes, offsets inside the data,
/// byte counts equal to shape × element size, no overlapping tensors.
/// </summary>
internal static class SafeTensorsFormat
{
    /// <summary>Largest header accepted (the reference implementation's limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private sealed record Info(string Name, ScalarType DType, long[] Shape, long Begin, long End);

    public static StateDict Read(string path)
    {
        using var file = File.OpenRead(path);
        long length = file.Length;
        if (length < 8) throw new InvalidDataException($"{path} is too short to be a safetensors file ({length} bytes).");
        Span<byte> head = stackalloc byte[8];
        file.ReadExactly(head);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(head);
        if (n > MaxHeaderBytes || (long)n > length - 8)
            throw new InvalidDataException($"{path}: safetensors header length {n} is larger than {(n > MaxHeaderBytes ? $"the {MaxHeaderBytes} bytes allowed" : $"the file ({length} bytes)")}.");
        var json = new byte[n];
        file.ReadExactly(json);
        if (!System.Text.Unicode.Utf8.IsValid(json))
            throw new InvalidDataException($"{path}: safetensors header is not valid UTF-8 text.");
        List<Info> infos;
        Dictionary<string, string> metadata;
        try { infos = ParseHeader(path, json, length - 8 - (long)n, out metadata); }
        catch (InvalidOperationException e)
        {
            // System.Text.Json reports a value of another kind than expected (or bad text) this way.
            throw new InvalidDataException($"{path}: safetensors header has a value of the wrong kind ({e.Message}).", e);
        }
        var result = new StateDict(path, metadata.Count > 0 ? [$"metadata: {string.Join(", ", metadata.Select(kv => $"{kv.Key}={kv.Value}"))}"] : null);
        long dataStart = 8 + (long)n;
        try
        {
            foreach (var info in infos)
            {
                var bytes = new byte[info.End - info.Begin];
                file.Seek(dataStart + info.Begin, SeekOrigin.Begin);
                file.ReadExactly(bytes);
                result[info.Name] = TensorBytes.FromBytes(bytes, info.DType, info.Shape);
            }
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    private static List<Info> ParseHeader(string path, byte[] json, long dataLength, out Dictionary<string, string> metadata)
    {
        metadata = [];
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: safetensors header is not valid JSON ({e.Message}).", e); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: safetensors header is not a JSON object.");
        var infos = new List<Info>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (!names.Add(prop.Name)) throw new InvalidDataException($"{path}: tensor '{prop.Name}' appears twice in the safetensors header.");
            if (prop.Name == "__metadata__")
            {
                if (prop.Value.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: __metadata__ is not an object.");
                foreach (var m in prop.Value.EnumerateObject())
                    metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw new InvalidDataException($"{path}: __metadata__ value '{m.Name}' is not a string.");
                continue;
            }
            string where = $"{path}: tensor '{prop.Name}'";
            var v = prop.Value;
            if (v.ValueKind != JsonValueKind.Object || !v.TryGetProperty("dtype", out var dt) || !v.TryGetProperty("shape", out var sh) || !v.TryGetProperty("data_offsets", out var off))
                throw new InvalidDataException($"{where} lacks dtype, shape or data_offsets.");
            var dtype = dt.ValueKind == JsonValueKind.String && TensorBytes.FromSafeTensorsName(dt.GetString()!) is { } d ? d
                : throw new InvalidDataException($"{where} has dtype {dt}, which is not one of F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL.");
            long[] shape = Longs(sh, where, "shape");
            long[] offsets = Longs(off, where, "data_offsets");
            if (offsets.Length != 2) throw new InvalidDataException($"{where}: data_offsets must be [begin, end].");
            long numel = TensorBytes.NumElements(shape, where);
            long bytes = TensorBytes.ByteSize(numel, dtype, where);
            if (offsets[0] > offsets[1] || offsets[1] > dataLength)
                throw new InvalidDataException($"{where}: data_offsets [{offsets[0]}, {offsets[1]}] lie outside the {dataLength} data bytes.");
            if (offsets[1] - offsets[0] != bytes)
                throw new InvalidDataException($"{where}: shape [{string.Join(", ", shape)}] of {dtype} needs {bytes} bytes but data_offsets span {offsets[1] - offsets[0]}.");
            infos.Add(new Info(prop.Name, dtype, shape, offsets[0], offsets[1]));
        }
        Info? prev = null;
        foreach (var i in infos.OrderBy(i => i.Begin).ThenBy(i => i.End))
        {
            if (prev is not null && i.Begin < prev.End && i.End > i.Begin)
                throw new InvalidDataException($"{path}: tensors '{prev.Name}' and '{i.Name}' overlap in the data section.");
            if (i.End > i.Begin) prev = i;
        }
        return infos;
    }

    private static long[] Longs(JsonElement e, string where, string what)
    {
        if (e.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{where}: {what} is not an array.");
        var list = new List<long>();
        foreach (var x in e.EnumerateArray())
        {
            if (x.ValueKind != JsonValueKind.Number || !x.TryGetInt64(out long v) || v < 0)
                throw new InvalidDataException($"{where}: {what} holds {x}, not a non-negative integer.");
            list.Add(v);
            if (list.Count > TensorBytes.MaxDims + 1) throw new InvalidDataException($"{where}: {what} is too long.");
        }
        return list.ToArray();
    }

    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var header = new Dictionary<string, object>(StringComparer.Ordinal);
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        var blobs = new List<byte[]>();
        foreach (var (name, t) in list)
        {
            var bytes = TensorBytes.ToBytes(t);
            header[name] = new Dictionary<string, object>
            {
                ["dtype"] = TensorBytes.ToSafeTensorsName(t.dtype),
                ["shape"] = t.shape,
                ["data_offsets"] = new[] { offset, offset + bytes.Length },
            };
            offset += bytes.Length;
            blobs.Add(bytes);
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        int pad = (8 - json.Length % 8) % 8;
        string tmp = path + ".tmp";
        using (var file = File.Create(tmp))
        {
            Span<byte> n = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(n, (ulong)(json.Length + pad));
            file.Write(n);
            file.Write(json);
            file.Write(Encoding.ASCII.GetBytes(new string(' ', pad)));
            foreach (var b in blobs) file.Write(b);
        }
        File.Move(tmp, path, overwrite: true);
    }
}
