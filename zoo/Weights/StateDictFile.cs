using System.Buffers.Binary;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>
/// Reads and writes state dicts (name → tensor) in PyTorch's <c>.pth</c>/<c>.pt</c>/<c>.bin</c> zip format,
/// safetensors, and TorchSharp's <c>.dat</c> (<c>Module.save</c>) format.
/// </summary>
public static class StateDictFile
{
    /// <summary>Readers for further formats by lower-case extension (e.g. ".onnx"), filled by the parts of the library that handle them.</summary>
    internal static readonly Dictionary<string, Func<string, StateDict>> ExtraReaders = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Extensions <see cref="Write"/> understands.</summary>
    public static IReadOnlyList<string> WritableExtensions { get; } = [".safetensors", ".pth", ".pt", ".bin", ".dat"];

    /// <summary>
    /// Reads every tensor of the state dict in <paramref name="path"/>. The format is recognised by its first bytes
    /// (zip = torch.save, 8-byte length + JSON = safetensors) or, for TorchSharp's <c>.dat</c>, by extension.
    /// Training checkpoints such as <c>{"state_dict": …, "epoch": …}</c> are unwrapped automatically (see
    /// <see cref="StateDict.Notes"/>) or at <paramref name="unwrap"/> (a dotted key path).
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="UnsafePickleException">A .pth pickle wants something other than tensors and dicts.</exception>
    /// <exception cref="InvalidDataException">The file is malformed or not a state dict; the message says why.</exception>
    public static StateDict Read(string path, string? unwrap = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Weight file '{path}' does not exist.", path);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        var magic = new byte[16];
        int got;
        using (var f = File.OpenRead(path)) got = f.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
        if (got >= 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4) return PthFormat.Read(path, unwrap);
        if (got >= 9 && magic[8] == '{' && BinaryPrimitives.ReadUInt64LittleEndian(magic) > 1) return SafeTensorsFormat.Read(path);
        if (ext == ".dat") return TorchSharpDatFormat.Read(path);
        if (ExtraReaders.TryGetValue(ext, out var reader)) return reader(path);
        if (got >= 2 && magic[0] == 0x80 && magic[1] <= 5)
            throw new InvalidDataException($"{path} is in PyTorch's legacy (pre-1.6) serialization format, which is not read. " +
                "Re-save it in Python: torch.save(torch.load(path), new_path) with PyTorch ≥ 1.6, or convert it to .safetensors.");
        throw new InvalidDataException($"{path}: unrecognised weight file format. Supported: PyTorch zip checkpoints (.pth/.pt/.bin from torch.save), " +
            $".safetensors, TorchSharp .dat (Module.save){(ExtraReaders.Count > 0 ? ", " + string.Join(", ", ExtraReaders.Keys) : "")}.");
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> in the format chosen by the extension of <paramref name="path"/>:
    /// <c>.safetensors</c>; <c>.pth</c>/<c>.pt</c>/<c>.bin</c> (torch.save zip layout, loadable with <c>torch.load</c>);
    /// <c>.dat</c> (TorchSharp <c>Module.save</c> layout). The file is written to a temporary name and then moved.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        switch (ext)
        {
            case ".safetensors": SafeTensorsFormat.Write(path, tensors); break;
            case ".pth" or ".pt" or ".bin": PthFormat.Write(path, tensors); break;
            case ".dat": TorchSharpDatFormat.Write(path, tensors); break;
            default:
                throw new ArgumentException($"Cannot tell the weight format from '{path}': use one of {string.Join(", ", WritableExtensions)}.", nameof(path));
        }
    }
}
