using System.Buffers.Binary;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Onnx;

// The subset of onnx.proto (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto) that weight import needs, as
// plain immutable C# objects. Parsing lives in OnnxReader.cs; graph walking in OnnxGraph.cs.

/// <summary>An ONNX file could not be read: malformed protobuf, unsupported feature, or inconsistent sizes.</summary>
public sealed class OnnxFormatException : Exception
{
    /// <summary>Creates the exception for <paramref name="file"/>.</summary>
    public OnnxFormatException(string file, string message, Exception? inner = null)
        : base($"ONNX file '{file}': {message}", inner) => File = file;

    /// <summary>The file (or source name) being read.</summary>
    public string File { get; }
}

/// <summary>Element types of ONNX tensors (TensorProto.DataType).</summary>
public enum OnnxDataType
{
    /// <summary>Not set.</summary>
    Undefined = 0,
    /// <summary>32-bit float.</summary>
    Float = 1,
    /// <summary>Unsigned byte.</summary>
    UInt8 = 2,
    /// <summary>Signed byte.</summary>
    Int8 = 3,
    /// <summary>Unsigned 16-bit integer.</summary>
    UInt16 = 4,
    /// <summary>Signed 16-bit integer.</summary>
    Int16 = 5,
    /// <summary>Signed 32-bit integer.</summary>
    Int32 = 6,
    /// <summary>Signed 64-bit integer.</summary>
    Int64 = 7,
    /// <summary>String (not supported as weights).</summary>
    String = 8,
    /// <summary>Boolean.</summary>
    Bool = 9,
    /// <summary>IEEE half precision.</summary>
    Float16 = 10,
    /// <summary>64-bit float.</summary>
    Double = 11,
    /// <summary>Unsigned 32-bit integer.</summary>
    UInt32 = 12,
    /// <summary>Unsigned 64-bit integer.</summary>
    UInt64 = 13,
    /// <summary>Complex of two floats (not supported).</summary>
    Complex64 = 14,
    /// <summary>Complex of two doubles (not supported).</summary>
    Complex128 = 15,
    /// <summary>bfloat16.</summary>
    BFloat16 = 16,
}

/// <summary>
/// A tensor stored in an ONNX file (an initializer or a Constant node's value). Data is kept as read (raw little-endian
/// bytes or the typed repeated field) and converted on request.
/// </summary>
public sealed class OnnxTensor
{
    private readonly byte[]? _raw;
    private readonly float[]? _floats;
    private readonly double[]? _doubles;
    private readonly long[]? _longs;
    private readonly int[]? _ints;

    internal OnnxTensor(string name, long[] dims, OnnxDataType dataType, byte[]? raw, float[]? floats, double[]? doubles, long[]? longs, int[]? ints)
    {
        Name = name;
        Dims = dims;
        DataType = dataType;
        _raw = raw;
        _floats = floats;
        _doubles = doubles;
        _longs = longs;
        _ints = ints;
    }

    /// <summary>Tensor name (empty for unnamed Constant values).</summary>
    public string Name { get; }

    /// <summary>Shape (empty for a scalar).</summary>
    public IReadOnlyList<long> Dims { get; }

    /// <summary>Element type.</summary>
    public OnnxDataType DataType { get; }

    /// <summary>Number of elements (product of <see cref="Dims"/>).</summary>
    public long ElementCount => Dims.Aggregate(1L, (a, b) => a * b);

    /// <summary>Shape as text, e.g. <c>[64, 3, 7, 7]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Dims) + "]";

    /// <summary>The values converted to float (float, double, float16, bfloat16 and integer types).</summary>
    /// <exception cref="NotSupportedException">Strings or complex numbers.</exception>
    public float[] ToFloatArray()
    {
        int n = checked((int)ElementCount);
        if (_floats is not null) return (float[])_floats.Clone();
        if (_doubles is not null) return _doubles.Select(v => (float)v).ToArray();
        if (_longs is not null) return _longs.Select(v => (float)v).ToArray();
        if (_ints is not null) return DataType switch
        {
            OnnxDataType.Float16 => _ints.Select(v => (float)BitConverter.UInt16BitsToHalf((ushort)v)).ToArray(),
            OnnxDataType.BFloat16 => _ints.Select(v => BitConverter.Int32BitsToSingle(v << 16)).ToArray(),
            _ => _ints.Select(v => (float)v).ToArray(),
        };
        var raw = _raw ?? [];
        var result = new float[n];
        switch (DataType)
        {
            case OnnxDataType.Float:
                for (int i = 0; i < n; i++) result[i] = BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan(i * 4));
                break;
            case OnnxDataType.Double:
                for (int i = 0; i < n; i++) result[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(raw.AsSpan(i * 8));
                break;
            case OnnxDataType.Float16:
                for (int i = 0; i < n; i++) result[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(raw.AsSpan(i * 2));
                break;
            case OnnxDataType.BFloat16:
                for (int i = 0; i < n; i++) result[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(i * 2)) << 16);
                break;
            default:
                var longs = ToInt64Array();
                for (int i = 0; i < n; i++) result[i] = longs[i];
                break;
        }
        return result;
    }

    /// <summary>The values converted to 64-bit integers (integer and bool types).</summary>
    /// <exception cref="NotSupportedException">Floating point, string or complex tensors.</exception>
    public long[] ToInt64Array()
    {
        int n = checked((int)ElementCount);
        if (_longs is not null) return (long[])_longs.Clone();
        if (_ints is not null && !IsFloating(DataType)) return _ints.Select(v => (long)v).ToArray();
        if (_raw is null || IsFloating(DataType))
            throw new NotSupportedException($"ONNX tensor '{Name}' has type {DataType}; integer values were expected.");
        var raw = _raw;
        var result = new long[n];
        for (int i = 0; i < n; i++)
        {
            result[i] = DataType switch
            {
                OnnxDataType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(raw.AsSpan(i * 8)),
                OnnxDataType.UInt64 => (long)BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(i * 8)),
                OnnxDataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan(i * 4)),
                OnnxDataType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * 4)),
                OnnxDataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(raw.AsSpan(i * 2)),
                OnnxDataType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(i * 2)),
                OnnxDataType.Int8 => (sbyte)raw[i],
                OnnxDataType.UInt8 or OnnxDataType.Bool => raw[i],
                _ => throw new NotSupportedException($"ONNX tensor '{Name}' has unsupported type {DataType}."),
            };
        }
        return result;
    }

    /// <summary>
    /// A new TorchSharp tensor with these values: float32 for floating types, int64 for integer and bool types.
    /// </summary>
    public Tensor ToTensor()
    {
        var shape = Dims.ToArray();
        return IsFloating(DataType) ? torch.tensor(ToFloatArray(), shape) : torch.tensor(ToInt64Array(), shape);
    }

    /// <inheritdoc />
    public override string ToString() => $"{(Name.Length == 0 ? "(unnamed)" : Name)} {DataType} {ShapeText}";

    internal static bool IsFloating(OnnxDataType t) => t is OnnxDataType.Float or OnnxDataType.Double or OnnxDataType.Float16 or OnnxDataType.BFloat16;

    /// <summary>Bytes per element in raw_data, or 0 where raw storage is not supported.</summary>
    internal static int ElementSize(OnnxDataType t) => t switch
    {
        OnnxDataType.Float or OnnxDataType.Int32 or OnnxDataType.UInt32 => 4,
        OnnxDataType.Double or OnnxDataType.Int64 or OnnxDataType.UInt64 => 8,
        OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Int16 or OnnxDataType.UInt16 => 2,
        OnnxDataType.Int8 or OnnxDataType.UInt8 or OnnxDataType.Bool => 1,
        _ => 0,
    };
}

/// <summary>Kinds of node attribute (AttributeProto.AttributeType).</summary>
public enum OnnxAttributeType
{
    /// <summary>Not set.</summary>
    Undefined = 0,
    /// <summary>One float.</summary>
    Float = 1,
    /// <summary>One integer.</summary>
    Int = 2,
    /// <summary>Bytes / string.</summary>
    String = 3,
    /// <summary>A tensor.</summary>
    Tensor = 4,
    /// <summary>A subgraph (kept unparsed).</summary>
    Graph = 5,
    /// <summary>Floats.</summary>
    Floats = 6,
    /// <summary>Integers.</summary>
    Ints = 7,
    /// <summary>Strings.</summary>
    Strings = 8,
    /// <summary>Tensors.</summary>
    Tensors = 9,
    /// <summary>Subgraphs (kept unparsed).</summary>
    Graphs = 10,
    /// <summary>Sparse tensor (not read).</summary>
    SparseTensor = 11,
    /// <summary>Sparse tensors (not read).</summary>
    SparseTensors = 12,
    /// <summary>Type proto (not read).</summary>
    TypeProto = 13,
    /// <summary>Type protos (not read).</summary>
    TypeProtos = 14,
}

/// <summary>One attribute of a node.</summary>
/// <param name="Name">Attribute name, e.g. <c>pads</c>.</param>
/// <param name="Type">Declared type (may be Undefined in old exporters; then the filled field decides).</param>
/// <param name="F">Float value.</param>
/// <param name="I">Integer value.</param>
/// <param name="S">Bytes value.</param>
/// <param name="Floats">Float list.</param>
/// <param name="Ints">Integer list.</param>
/// <param name="T">Tensor value.</param>
public sealed record OnnxAttribute(string Name, OnnxAttributeType Type, float F, long I, byte[] S, float[] Floats, long[] Ints, OnnxTensor? T)
{
    /// <summary>The bytes value decoded as UTF-8.</summary>
    public string StringValue => Encoding.UTF8.GetString(S);
}

/// <summary>One operator node of a graph.</summary>
public sealed class OnnxNode
{
    internal OnnxNode(int index, string name, string opType, string domain, string[] inputs, string[] outputs, IReadOnlyDictionary<string, OnnxAttribute> attributes)
    {
        Index = index;
        Name = name;
        OpType = opType;
        Domain = domain;
        Inputs = inputs;
        Outputs = outputs;
        Attributes = attributes;
    }

    /// <summary>Position in the graph's node list (topological in valid ONNX).</summary>
    public int Index { get; }

    /// <summary>Node name (may be empty).</summary>
    public string Name { get; }

    /// <summary>Operator, e.g. <c>Conv</c>.</summary>
    public string OpType { get; }

    /// <summary>Operator domain (empty = default ONNX domain).</summary>
    public string Domain { get; }

    /// <summary>Input value names (an empty string marks an omitted optional input).</summary>
    public IReadOnlyList<string> Inputs { get; }

    /// <summary>Output value names.</summary>
    public IReadOnlyList<string> Outputs { get; }

    /// <summary>Attributes by name.</summary>
    public IReadOnlyDictionary<string, OnnxAttribute> Attributes { get; }

    /// <summary>Integer attribute, or <paramref name="fallback"/> when absent.</summary>
    public long GetInt(string name, long fallback) => Attributes.TryGetValue(name, out var a) ? a.I : fallback;

    /// <summary>Float attribute, or <paramref name="fallback"/> when absent.</summary>
    public float GetFloat(string name, float fallback) => Attributes.TryGetValue(name, out var a) ? a.F : fallback;

    /// <summary>Integer list attribute, or null when absent.</summary>
    public long[]? GetInts(string name) => Attributes.TryGetValue(name, out var a) ? a.Ints : null;

    /// <summary>String attribute, or <paramref name="fallback"/> when absent.</summary>
    public string GetString(string name, string fallback) => Attributes.TryGetValue(name, out var a) ? a.StringValue : fallback;

    /// <summary>Short description: op type, name, inputs → outputs.</summary>
    public override string ToString() => $"{OpType} '{Name}' ({string.Join(", ", Inputs)}) -> ({string.Join(", ", Outputs)})";
}

/// <summary>A graph input, output or value_info entry: name, element type and shape.</summary>
/// <param name="Name">Value name.</param>
/// <param name="ElementType">Element type, Undefined when the entry is not a tensor or carries no type.</param>
/// <param name="Shape">Dimensions: a number, or null for a symbolic/unknown dimension; null when no shape is given.</param>
/// <param name="DimParams">Symbolic names of the dimensions (null entries for numeric ones); null when no shape.</param>
public sealed record OnnxValueInfo(string Name, OnnxDataType ElementType, long?[]? Shape, string?[]? DimParams);
