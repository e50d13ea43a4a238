using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>
/// TorchSharp's <c>Module.save</c> format: LEB128 entry count, then per entry a .NET length-prefixed UTF-8 name,
/// LEB128 dtype code (TorchSharp's <c>ScalarType</c>), LEB128 rank, LEB128 sizes, and the raw tensor bytes.
/// There is no magic number, so it is recognised by the <c>.dat</c> extension. Every field is bounded by the file size.
/// </summary>
internal static class TorchSharpDatFormat
{
    private const long MaxEntries = 1 << 20;
    private const int MaxNameBytes = 4096;

    public static StateDict Read(string path)
    {
        using var file = File.OpenRead(path);
        using var reader = new BinaryReader(file, Encoding.UTF8);
        var result = new StateDict(path);
        try
        {
            long count = Leb(reader, path);
            if (count > MaxEntries) throw new InvalidDataException($"{path}: {count} entries is not a TorchSharp state dict (is this really a Module.save .dat file?).");
            for (long i = 0; i < count; i++)
            {
                string name = Name(reader, path);
                string where = $"{path}: tensor '{name}'";
                long code = Leb(reader, path);
                var dtype = (ScalarType)code;
                if (code > 64 || !TensorBytes.IsSupported(dtype)) throw new InvalidDataException($"{where} has element type code {code}, which is not supported.");
                long rank = Leb(reader, path);
                if (rank > TensorBytes.MaxDims) throw new InvalidDataException($"{where} has {rank} dimensions.");
                var shape = new long[rank];
                for (int d = 0; d < rank; d++) shape[d] = Leb(reader, path);
                long bytes = TensorBytes.ByteSize(TensorBytes.NumElements(shape, where), dtype, where);
                if (bytes > file.Length - file.Position) throw new InvalidDataException($"{where} needs {bytes} bytes but only {file.Length - file.Position} remain in the file.");
                if (result.ContainsKey(name)) throw new InvalidDataException($"{where} appears twice.");
                result[name] = TensorBytes.FromBytes(reader.ReadBytes((int)bytes), dtype, shape);
            }
            if (file.Position != file.Length) result.Notes.Add($"{file.Length - file.Position} bytes after the last tensor were ignored");
        }
        catch (EndOfStreamException)
        {
            result.Dispose();
            throw new InvalidDataException($"{path} ends in the middle of an entry; it is truncated or not a TorchSharp .dat state dict.");
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    private static long Leb(BinaryReader r, string path)
    {
        long result = 0;
        for (int i = 0; ; i++)
        {
            if (i >= 9) throw new InvalidDataException($"{path}: malformed LEB128 number at byte {r.BaseStream.Position}.");
            long b = r.ReadByte();
            result |= (b & 0x7f) << (i * 7);
            if ((b & 0x80) == 0)
                return result >= 0 ? result : throw new InvalidDataException($"{path}: a size or count field at byte {r.BaseStream.Position} is negative.");
        }
    }

    private static string Name(BinaryReader r, string path)
    {
        int len = 0;
        for (int shift = 0; ; shift += 7)
        {
            if (shift > 28) throw new InvalidDataException($"{path}: malformed name length.");
            byte b = r.ReadByte();
            len |= (b & 0x7f) << shift;
            if ((b & 0x80) == 0) break;
        }
        if (len < 0 || len > MaxNameBytes) throw new InvalidDataException($"{path}: a name of {len} bytes is not a parameter name.");
        var bytes = r.ReadBytes(len);
        if (bytes.Length != len) throw new EndOfStreamException();
        return Encoding.UTF8.GetString(bytes);
    }

    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var list = tensors.ToList();
        string tmp = path + ".tmp";
        using (var file = File.Create(tmp))
        using (var w = new BinaryWriter(file, Encoding.UTF8))
        {
            Leb(w, list.Count);
            foreach (var (name, t) in list)
            {
                TensorBytes.ElementSize(t.dtype);
                w.Write(name);
                Leb(w, (long)t.dtype);
                Leb(w, t.shape.Length);
                foreach (var s in t.shape) Leb(w, s);
                w.Write(TensorBytes.ToBytes(t));
            }
        }
        File.Move(tmp, path, overwrite: true);
    }

    private static void Leb(BinaryWriter w, long v)
    {
        do
        {
            byte b = (byte)(v & 0x7f);
            v >>= 7;
            w.Write(v == 0 ? b : (byte)(b | 0x80));
        } while (v != 0);
    }
}
