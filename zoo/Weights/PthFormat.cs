using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>
/// PyTorch's zip checkpoint format (<c>torch.save</c> since 1.6): <c>&lt;dir&gt;/data.pkl</c> (a pickle whose tensors
/// refer to storages by persistent id), <c>&lt;dir&gt;/data/&lt;key&gt;</c> (raw little-endian storage bytes),
/// <c>&lt;dir&gt;/version</c>. Read with <see cref="RestrictedUnpickler"/>; written in the layout torch.save uses.
/// </summary>
internal static class PthFormat
{
    private const long MaxPickleBytes = 256L << 20;
    private const int MaxEntries = 1 << 20;

    /// <summary>Reads the object graph of a .pth file and materialises the tensors of the state dict inside it.</summary>
    public static StateDict Read(string path, string? unwrapKey)
    {
        try { return ReadCore(path, unwrapKey); }
        catch (InvalidDataException e) when (!e.Message.Contains(path, StringComparison.Ordinal))
        {
            // System.IO.Compression's errors (bad central directory, corrupt deflate data, CRC mismatch) do not name the file.
            throw new InvalidDataException($"{path} is a corrupt zip archive: {e.Message}", e);
        }
    }

    private static StateDict ReadCore(string path, string? unwrapKey)
    {
        using var zip = OpenZip(path);
        if (zip.Entries.Count > MaxEntries) throw new InvalidDataException($"{path}: {zip.Entries.Count} archive entries is more than a checkpoint has.");
        foreach (var e in zip.Entries) CheckEntryName(path, e.FullName);
        var pkl = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
        if (pkl.Count != 1)
        {
            if (zip.Entries.Any(e => e.FullName.Contains("/code/", StringComparison.Ordinal) || e.FullName.EndsWith("/constants.pkl", StringComparison.Ordinal)))
                throw new InvalidDataException($"{path} is a TorchScript archive (torch.jit.save), not a state dict. In Python, save the weights with torch.save(model.state_dict(), path).");
            throw new InvalidDataException($"{path} is a zip file but not a torch.save checkpoint: expected exactly one '<dir>/data.pkl', found {pkl.Count}.");
        }
        string prefix = pkl[0].FullName[..^"data.pkl".Length];
        var byteorder = zip.GetEntry(prefix + "byteorder");
        if (byteorder is not null)
        {
            string order = Encoding.ASCII.GetString(ReadEntry(path, byteorder, 16)).Trim();
            if (order != "little") throw new InvalidDataException($"{path} was saved on a {order}-endian machine; only little-endian checkpoints are read. Re-save it on a little-endian machine.");
        }
        if (pkl[0].Length > MaxPickleBytes) throw new InvalidDataException($"{path}: data.pkl is {pkl[0].Length} bytes, more than the {MaxPickleBytes} a state dict needs.");
        var root = new RestrictedUnpickler(ReadEntry(path, pkl[0], MaxPickleBytes), path).Load();
        var notes = new List<string>();
        var dict = StateDict.Unwrap(root, path, unwrapKey, notes);

        var storages = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var result = new StateDict(path, notes);
        try
        {
            foreach (var (name, r) in dict)
            {
                if (!storages.TryGetValue(r.Storage.Key, out var storage))
                {
                    var entry = zip.GetEntry(prefix + "data/" + r.Storage.Key)
                        ?? throw new InvalidDataException($"{path}: tensor '{name}' refers to storage '{r.Storage.Key}', which the archive lacks.");
                    var dtype = r.Storage.Type.DType;
                    long bytes = TensorBytes.ByteSize(r.Storage.NumElements, dtype, $"{path}: storage '{r.Storage.Key}'");
                    if (entry.Length < bytes) throw new InvalidDataException($"{path}: storage '{r.Storage.Key}' should hold {bytes} bytes but the archive entry has {entry.Length}.");
                    var data = ReadEntry(path, entry, bytes);
                    storage = TensorBytes.FromBytes(data.Length == bytes ? data : data[..(int)bytes], dtype, [r.Storage.NumElements]);
                    storages[r.Storage.Key] = storage;
                }
                else if (storage.dtype != r.Storage.Type.DType)
                    throw new InvalidDataException($"{path}: storage '{r.Storage.Key}' is used as both {storage.dtype} and {r.Storage.Type.DType}.");
                result[name] = View(path, name, storage, r);
            }
        }
        catch
        {
            result.Dispose();
            throw;
        }
        finally
        {
            foreach (var s in storages.Values) s.Dispose();
        }
        return result;
    }

    /// <summary>A fresh contiguous copy of the view <paramref name="r"/> of <paramref name="storage"/>, after bounds checks.</summary>
    private static Tensor View(string path, string name, Tensor storage, TensorRef r)
    {
        string where = $"{path}: tensor '{name}'";
        if (r.Size.Length != r.Stride.Length) throw new InvalidDataException($"{where}: size has {r.Size.Length} dimensions but stride {r.Stride.Length}.");
        long numel = TensorBytes.NumElements(r.Size, where);
        if (r.Offset < 0 || r.Stride.Any(s => s < 0)) throw new InvalidDataException($"{where}: negative offset or stride.");
        if (numel > 0)
        {
            long last = r.Offset;
            try
            {
                for (int i = 0; i < r.Size.Length; i++) last = checked(last + (r.Size[i] - 1) * r.Stride[i]);
            }
            catch (OverflowException) { throw new InvalidDataException($"{where}: view extent overflows."); }
            if (last >= r.Storage.NumElements)
                throw new InvalidDataException($"{where}: the view (offset {r.Offset}, size [{string.Join(", ", r.Size)}], stride [{string.Join(", ", r.Stride)}]) reaches element {last} of a storage of {r.Storage.NumElements}.");
        }
        using var view = storage.as_strided(r.Size, r.Stride, r.Offset);
        using var dense = view.contiguous();
        return dense.clone();
    }

    private static ZipArchive OpenZip(string path)
    {
        try { return ZipFile.OpenRead(path); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path} is not a readable zip archive ({e.Message}).", e); }
    }

    private static void CheckEntryName(string path, string name)
    {
        if (name.StartsWith('/') || name.Contains('\\') || name.Contains(':') || name.Split('/').Any(p => p == ".."))
            throw new InvalidDataException($"{path}: archive entry '{name}' has an unsafe path; refusing the file.");
    }

    private static byte[] ReadEntry(string path, ZipArchiveEntry entry, long maxBytes)
    {
        long n = Math.Min(entry.Length, maxBytes);
        var buffer = new byte[n];
        using var s = entry.Open();
        try { s.ReadExactly(buffer); }
        catch (EndOfStreamException) { throw new InvalidDataException($"{path}: archive entry '{entry.FullName}' is shorter than its header says."); }
        return buffer;
    }

    // ----- writing -----

    /// <summary>Writes <paramref name="tensors"/> as torch.save would write an OrderedDict state dict (loads with torch.load in PyTorch ≥ 1.6).</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var list = tensors.ToList();
        const string dir = "archive/";
        string tmp = path + ".tmp";
        using (var file = File.Create(tmp))
        using (var zip = new ZipArchive(file, ZipArchiveMode.Create))
        {
            Add(zip, dir + "data.pkl", Pickle(list));
            Add(zip, dir + "byteorder", Encoding.ASCII.GetBytes("little"));
            for (int i = 0; i < list.Count; i++) Add(zip, dir + "data/" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), TensorBytes.ToBytes(list[i].Value));
            Add(zip, dir + "version", Encoding.ASCII.GetBytes("3\n"));
        }
        File.Move(tmp, path, overwrite: true);
    }

    private static void Add(ZipArchive zip, string name, byte[] data)
    {
        var e = zip.CreateEntry(name, CompressionLevel.NoCompression);
        using var s = e.Open();
        s.Write(data);
    }

    private static byte[] Pickle(List<KeyValuePair<string, Tensor>> list)
    {
        var w = new MemoryStream();
        w.Write([0x80, 2]);
        void Op(char c) => w.WriteByte((byte)c);
        void Global(string module, string name) { Op('c'); w.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n")); }
        void Str(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            Op('X');
            Span<byte> n = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(n, b.Length);
            w.Write(n);
            w.Write(b);
        }
        void Int(long v)
        {
            if (v is >= 0 and < 256) { Op('K'); w.WriteByte((byte)v); }
            else if (v is >= int.MinValue and <= int.MaxValue)
            {
                Op('J');
                Span<byte> n = stackalloc byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(n, (int)v);
                w.Write(n);
            }
            else
            {
                w.WriteByte(0x8a); w.WriteByte(8);
                Span<byte> n = stackalloc byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(n, v);
                w.Write(n);
            }
        }
        void Tuple(IEnumerable<long> values) { Op('('); foreach (var v in values) Int(v); Op('t'); }
        void EmptyOrderedDict() { Global("collections", "OrderedDict"); Op(')'); Op('R'); }

        EmptyOrderedDict();
        Op('(');
        for (int i = 0; i < list.Count; i++)
        {
            var (name, t) = (list[i].Key, list[i].Value);
            long[] shape = t.shape;
            var stride = new long[shape.Length];
            long acc = 1;
            for (int d = shape.Length - 1; d >= 0; d--) { stride[d] = acc; acc *= Math.Max(1, shape[d]); }
            Str(name);
            Global("torch._utils", "_rebuild_tensor_v2");
            Op('(');
            Op('('); Str("storage"); Global("torch", TensorBytes.ToStorageName(t.dtype)); Str(i.ToString(System.Globalization.CultureInfo.InvariantCulture)); Str("cpu"); Int(t.numel()); Op('t');
            Op('Q');
            Int(0);
            Tuple(shape);
            Tuple(stride);
            w.WriteByte(0x89);
            EmptyOrderedDict();
            Op('t');
            Op('R');
        }
        Op('u');
        Op('.');
        return w.ToArray();
    }
}
