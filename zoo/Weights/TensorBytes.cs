using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>Element types the weight formats share, and raw-byte conversion between tensors and files.</summary>
internal static class TensorBytes
{
    /// <summary>Largest single tensor or storage read or written (TorchSharp moves raw bytes through a span).</summary>
    public const long MaxTensorBytes = int.MaxValue;

    /// <summary>Most dimensions a tensor in a weight file may have.</summary>
    public const int MaxDims = 16;

    public static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new NotSupportedException($"Tensors of type {t} cannot be stored in weight files by this library."),
    };

    public static bool IsSupported(ScalarType t) => t is ScalarType.Float64 or ScalarType.Int64 or ScalarType.Float32 or ScalarType.Int32
        or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool;

    private static readonly (string Storage, string SafeTensors, ScalarType Type)[] Names =
    [
        ("FloatStorage", "F32", ScalarType.Float32),
        ("DoubleStorage", "F64", ScalarType.Float64),
        ("HalfStorage", "F16", ScalarType.Float16),
        ("BFloat16Storage", "BF16", ScalarType.BFloat16),
        ("LongStorage", "I64", ScalarType.Int64),
        ("IntStorage", "I32", ScalarType.Int32),
        ("ShortStorage", "I16", ScalarType.Int16),
        ("CharStorage", "I8", ScalarType.Int8),
        ("ByteStorage", "U8", ScalarType.Byte),
        ("BoolStorage", "BOOL", ScalarType.Bool),
    ];

    public static ScalarType? FromStorageName(string name) => Names.Where(n => n.Storage == name).Select(n => (ScalarType?)n.Type).FirstOrDefault();

    public static string ToStorageName(ScalarType t) => Names.Where(n => n.Type == t).Select(n => n.Storage).FirstOrDefault()
        ?? throw new NotSupportedException($"Tensors of type {t} cannot be written to .pth by this library.");

    public static ScalarType? FromSafeTensorsName(string name) => Names.Where(n => n.SafeTensors == name).Select(n => (ScalarType?)n.Type).FirstOrDefault();

    public static string ToSafeTensorsName(ScalarType t) => Names.Where(n => n.Type == t).Select(n => n.SafeTensors).FirstOrDefault()
        ?? throw new NotSupportedException($"Tensors of type {t} cannot be written to safetensors by this library.");

    /// <summary>
    /// Product of <paramref name="shape"/>, throwing on negative sizes or a shape too large for one tensor. The product
    /// of the non-zero sizes is bounded too (by <see cref="MaxTensorBytes"/> elements): a zero next to huge sizes has no
    /// elements, but libtorch still computes strides from the other sizes and fails with "Stride calculation overflowed".
    /// </summary>
    public static long NumElements(IReadOnlyList<long> shape, string where)
    {
        if (shape.Count > MaxDims) throw new InvalidDataException($"{where}: {shape.Count} dimensions (at most {MaxDims} are accepted).");
        long nonZero = 1;
        bool anyZero = false;
        foreach (var s in shape)
        {
            if (s < 0) throw new InvalidDataException($"{where}: negative size {s} in shape [{string.Join(", ", shape)}].");
            if (s == 0) { anyZero = true; continue; }
            // nonZero ≤ MaxTensorBytes < 2^31 and s < 2^63 can still overflow, hence the division.
            if (s > MaxTensorBytes / nonZero)
                throw new InvalidDataException($"{where}: shape [{string.Join(", ", shape)}] is too large (more than {MaxTensorBytes} elements{(shape.Contains(0) ? " in its non-zero dimensions" : "")}).");
            nonZero *= s;
        }
        return anyZero ? 0 : nonZero;
    }

    /// <summary>Byte size of <paramref name="numel"/> elements, bounded by <see cref="MaxTensorBytes"/>.</summary>
    public static long ByteSize(long numel, ScalarType t, string where)
    {
        long bytes;
        try { bytes = checked(numel * ElementSize(t)); }
        catch (OverflowException) { throw new InvalidDataException($"{where}: {numel} elements of {t} is too large."); }
        if (bytes > MaxTensorBytes) throw new InvalidDataException($"{where}: {bytes} bytes is more than the {MaxTensorBytes} bytes one tensor may have here.");
        return bytes;
    }

    /// <summary>A new CPU tensor of <paramref name="shape"/> and <paramref name="dtype"/> holding <paramref name="data"/> (little-endian).</summary>
    public static Tensor FromBytes(byte[] data, ScalarType dtype, long[] shape)
    {
        var t = empty(shape, dtype: dtype);
        if (data.Length > 0) t.bytes = data;
        return t;
    }

    /// <summary>The raw little-endian bytes of <paramref name="t"/> (copied to a contiguous CPU tensor first).</summary>
    public static byte[] ToBytes(Tensor t)
    {
        if (!IsSupported(t.dtype)) ElementSize(t.dtype);
        if (t.numel() == 0) return [];
        using var scope = NewDisposeScope();
        var c = t.detach().cpu().contiguous();
        return c.bytes.ToArray();
    }
}
