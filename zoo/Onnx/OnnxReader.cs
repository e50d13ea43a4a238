using System.Text;
using Google.Protobuf;

namespace ModelZoo.Onnx;

// Hand-written reader for the messages of onnx.proto that weight import needs, on Google.Protobuf's CodedInputStream
// (the well-kept wire-format decoder; generating classes from onnx.proto would add a build step and ~10k lines for the
// few fields used here). The whole file is read once; nested messages are parsed in place (a CodedInputStream over
// the same buffer with offset and length), so only tensor payloads are copied. Every length is checked against the
// bytes that remain before anything is allocated; errors are OnnxFormatException naming the file.

internal sealed class OnnxReader
{
    /// <summary>Largest protobuf ONNX file (protobuf's own 2 GiB limit; bigger models use external data).</summary>
    internal const long MaxFileBytes = int.MaxValue;

    /// <summary>Largest element count of one tensor (bounded before allocation).</summary>
    internal const long MaxElements = int.MaxValue / 8;

    private readonly byte[] _buffer;
    private readonly string _file;

    private OnnxReader(byte[] buffer, string file)
    {
        _buffer = buffer;
        _file = file;
    }

    internal static OnnxModel ReadFile(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new FileNotFoundException($"ONNX file '{full}' does not exist.", full);
        var length = new FileInfo(full).Length;
        if (length > MaxFileBytes)
            throw new OnnxFormatException(full, $"{length} bytes is more than a protobuf message can hold (2 GiB); models that big keep weights as external data, which this reader does not support.");
        return Read(File.ReadAllBytes(full), full);
    }

    internal static OnnxModel Read(byte[] bytes, string sourceName)
    {
        var reader = new OnnxReader(bytes, sourceName);
        try
        {
            return reader.ReadModel(0, bytes.Length);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new OnnxFormatException(sourceName, $"not a valid ONNX protobuf ({e.Message}).", e);
        }
        catch (OverflowException e)
        {
            throw new OnnxFormatException(sourceName, $"a size in the file is out of range ({e.Message}).", e);
        }
    }

    private OnnxFormatException Error(string message) => new(_file, message);

    private CodedInputStream Open(int offset, int length) => new(_buffer, offset, length);

    /// <summary>After ReadTag of a length-delimited field: the payload's offset and length; the stream moves past it.</summary>
    private (int Offset, int Length) Payload(CodedInputStream s, uint tag)
    {
        if (WireFormat.GetTagWireType(tag) != WireFormat.WireType.LengthDelimited)
            throw Error($"field {WireFormat.GetTagFieldNumber(tag)} has wire type {WireFormat.GetTagWireType(tag)}; a length-delimited field was expected.");
        int start = checked((int)s.Position);
        s.SkipLastField(); // checks the length against the remaining bytes
        int end = checked((int)s.Position);
        int p = start;
        while (p < end && (_buffer[p] & 0x80) != 0) p++;
        p++;
        if (p > end) throw Error("truncated length prefix.");
        return (p, end - p);
    }

    private string ReadString(CodedInputStream s, uint tag)
    {
        var (o, n) = Payload(s, tag);
        return Encoding.UTF8.GetString(_buffer, o, n);
    }

    private byte[] ReadBytes(CodedInputStream s, uint tag)
    {
        var (o, n) = Payload(s, tag);
        return _buffer.AsSpan(o, n).ToArray();
    }

    // Repeated scalars may be packed (one length-delimited field) or not (one field per value); both are accepted.
    private void ReadInt64s(CodedInputStream s, uint tag, List<long> into)
    {
        if (WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
        {
            var (o, n) = Payload(s, tag);
            var inner = Open(o, n);
            while (!inner.IsAtEnd) into.Add(inner.ReadInt64());
        }
        else into.Add(s.ReadInt64());
    }

    private void ReadInt32s(CodedInputStream s, uint tag, List<int> into)
    {
        if (WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
        {
            var (o, n) = Payload(s, tag);
            var inner = Open(o, n);
            while (!inner.IsAtEnd) into.Add(inner.ReadInt32());
        }
        else into.Add(s.ReadInt32());
    }

    private void ReadFloats(CodedInputStream s, uint tag, List<float> into)
    {
        if (WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
        {
            var (o, n) = Payload(s, tag);
            if (n % 4 != 0) throw Error($"packed float field of {n} bytes is not a multiple of 4.");
            into.Capacity = Math.Max(into.Capacity, into.Count + n / 4);
            var inner = Open(o, n);
            while (!inner.IsAtEnd) into.Add(inner.ReadFloat());
        }
        else into.Add(s.ReadFloat());
    }

    private void ReadDoubles(CodedInputStream s, uint tag, List<double> into)
    {
        if (WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
        {
            var (o, n) = Payload(s, tag);
            if (n % 8 != 0) throw Error($"packed double field of {n} bytes is not a multiple of 8.");
            var inner = Open(o, n);
            while (!inner.IsAtEnd) into.Add(inner.ReadDouble());
        }
        else into.Add(s.ReadDouble());
    }

    private OnnxModel ReadModel(int offset, int length)
    {
        var s = Open(offset, length);
        long irVersion = 0, modelVersion = 0;
        string producer = "", producerVersion = "", domain = "";
        var opsets = new Dictionary<string, long>();
        OnnxGraph? graph = null;
        uint tag;
        while ((tag = s.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: irVersion = s.ReadInt64(); break;
                case 2: producer = ReadString(s, tag); break;
                case 3: producerVersion = ReadString(s, tag); break;
                case 4: domain = ReadString(s, tag); break;
                case 5: modelVersion = s.ReadInt64(); break;
                case 7: { var (o, n) = Payload(s, tag); graph = ReadGraph(o, n); break; }
                case 8:
                    {
                        var (o, n) = Payload(s, tag);
                        var (d, v) = ReadOpset(o, n);
                        opsets[d] = v;
                        break;
                    }
                default: s.SkipLastField(); break;
            }
        }
        if (graph is null)
            throw Error(length == 0 ? "the file is empty." : "no graph found; this is not an ONNX model (or it is truncated).");
        return new OnnxModel(_file, irVersion, producer, producerVersion, domain, modelVersion, opsets, graph);
    }

    private (string Domain, long Version) ReadOpset(int offset, int length)
    {
        var s = Open(offset, length);
        string domain = "";
        long version = 0;
        uint tag;
        while ((tag = s.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: domain = ReadString(s, tag); break;
                case 2: version = s.ReadInt64(); break;
                default: s.SkipLastField(); break;
            }
        }
        return (domain, version);
    }

    private OnnxGraph ReadGraph(int offset, int length)
    {
        var s = Open(offset, length);
        string name = "";
        var nodes = new List<OnnxNode>();
        var initializers = new List<OnnxTensor>();
        var inputs = new List<OnnxValueInfo>();
        var outputs = new List<OnnxValueInfo>();
        var valueInfo = new List<OnnxValueInfo>();
        uint tag;
        while ((tag = s.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: { var (o, n) = Payload(s, tag); nodes.Add(ReadNode(o, n, nodes.Count)); break; }
                case 2: name = ReadString(s, tag); break;
                case 5: { var (o, n) = Payload(s, tag); initializers.Add(ReadTensor(o, n)); break; }
                case 11: { var (o, n) = Payload(s, tag); inputs.Add(ReadValueInfo(o, n)); break; }
                case 12: { var (o, n) = Payload(s, tag); outputs.Add(ReadValueInfo(o, n)); break; }
                case 13: { var (o, n) = Payload(s, tag); valueInfo.Add(ReadValueInfo(o, n)); break; }
                case 15: throw Error($"graph '{name}' has sparse initializers, which this reader does not support.");
                default: s.SkipLastField(); break;
            }
        }
        return new OnnxGraph(_file, name, nodes, initializers, inputs, outputs, valueInfo);
    }

    private OnnxNode ReadNode(int offset, int length, int index)
    {
        var s = Open(offset, length);
        string name = "", opType = "", domain = "";
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attributes = new Dictionary<string, OnnxAttribute>(StringComparer.Ordinal);
        uint tag;
        while ((tag = s.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: inputs.Add(ReadString(s, tag)); break;
                case 2: outputs.Add(ReadString(s, tag)); break;
                case 3: name = ReadString(s, tag); break;
                case 4: opType = ReadString(s, tag); break;
                case 5:
                    {
                        var (o, n) = Payload(s, tag);
                        var a = ReadAttribute(o, n);
                        attributes[a.Name] = a;
                        break;
                    }
                case 7: domain = ReadString(s, tag); break;
                default: s.SkipLastField(); break;
            }
        }
        if (opType.Length == 0) throw Error($"node #{index} ('{name}') has no op_type.");
        return new OnnxNode(index, name, opType, domain, [.. inputs], [.. outputs], attributes);
    }

    private OnnxAttribute ReadAttribute(int offset, int length)
    {
        var s = Open(offset, length);
        string name = "";
        var type = OnnxAttributeType.Undefined;
        float f = 0;
        long i = 0;
        byte[] bytes = [];
        var floats = new List<float>();
        var ints = new List<long>();
        OnnxTensor? t = null;
        uint tag;
        while ((tag = s.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: name = ReadString(s, tag); break;
                case 2: f = s.ReadFloat(); break;
                case 3: i = s.ReadInt64(); break;
                case 4: bytes = ReadBytes(s, tag); break;
                case 5: { var (o, n) = Payload(s, tag); t = ReadTensor(o, n); break; }
                case 7: ReadFloats(s, tag, floats); break;
                case 8: ReadInt64s(s, tag, ints); break;
                case 20: type = (OnnxAttributeType)s.ReadInt32(); break;
                default: s.SkipLastField(); break;
            }
        }
        return new OnnxAttribute(name, type, f, i, bytes, [.. floats], [.. ints], t);
    }

    private OnnxValueInfo ReadValueInfo(int offset, int length)
    {
        var s = Open(offset, length);
        string name = "";
        var elem = OnnxDataType.Undefined;
        long?[]? shape = null;
        string?[]? dimParams = null;
        uint tag;
        while ((tag = s.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: name = ReadString(s, tag); break;
                case 2:
                    {
                        // TypeProto: tensor_type = 1 → TypeProto.Tensor { elem_type = 1; shape = 2 }.
                        var (o, n) = Payload(s, tag);
                        var type = Open(o, n);
                        uint t2;
                        while ((t2 = type.ReadTag()) != 0)
                        {
                            if (WireFormat.GetTagFieldNumber(t2) != 1) { type.SkipLastField(); continue; }
                            var (to, tn) = Payload(type, t2);
                            var tensor = Open(to, tn);
                            uint t3;
                            while ((t3 = tensor.ReadTag()) != 0)
                            {
                                switch (WireFormat.GetTagFieldNumber(t3))
                                {
                                    case 1: elem = (OnnxDataType)tensor.ReadInt32(); break;
                                    case 2: { var (so, sn) = Payload(tensor, t3); (shape, dimParams) = ReadShape(so, sn); break; }
                                    default: tensor.SkipLastField(); break;
                                }
                            }
                        }
                        break;
                    }
                default: s.SkipLastField(); break;
            }
        }
        return new OnnxValueInfo(name, elem, shape, dimParams);
    }

    private (long?[] Shape, string?[] Params) ReadShape(int offset, int length)
    {
        var s = Open(offset, length);
        var dims = new List<long?>();
        var names = new List<string?>();
        uint tag;
        while ((tag = s.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) != 1) { s.SkipLastField(); continue; }
            var (o, n) = Payload(s, tag);
            var d = Open(o, n);
            long? value = null;
            string? param = null;
            uint t2;
            while ((t2 = d.ReadTag()) != 0)
            {
                switch (WireFormat.GetTagFieldNumber(t2))
                {
                    case 1: value = d.ReadInt64(); break;
                    case 2: param = ReadString(d, t2); break;
                    default: d.SkipLastField(); break;
                }
            }
            dims.Add(value);
            names.Add(param);
        }
        return ([.. dims], [.. names]);
    }

    private OnnxTensor ReadTensor(int offset, int length)
    {
        var s = Open(offset, length);
        string name = "";
        var dims = new List<long>();
        var dataType = OnnxDataType.Undefined;
        (int Offset, int Length)? raw = null;
        var floats = new List<float>();
        var doubles = new List<double>();
        var longs = new List<long>();
        var ints = new List<int>();
        bool external = false, hasStrings = false, hasSegment = false;
        uint tag;
        while ((tag = s.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: ReadInt64s(s, tag, dims); break;
                case 2: dataType = (OnnxDataType)s.ReadInt32(); break;
                case 3: hasSegment = true; s.SkipLastField(); break;
                case 4: ReadFloats(s, tag, floats); break;
                case 5: ReadInt32s(s, tag, ints); break;
                case 6: hasStrings = true; s.SkipLastField(); break;
                case 7: ReadInt64s(s, tag, longs); break;
                case 8: name = ReadString(s, tag); break;
                case 9: raw = Payload(s, tag); break;
                case 10: ReadDoubles(s, tag, doubles); break;
                case 11: ReadInt64s(s, tag, longs); break; // uint64_data: values above long.MaxValue wrap (not used by weights)
                case 13: external = true; s.SkipLastField(); break;
                case 14: external |= s.ReadInt32() == 1; break;
                default: s.SkipLastField(); break;
            }
        }
        string label = name.Length == 0 ? "(unnamed tensor)" : $"tensor '{name}'";
        if (external)
            throw Error($"{label} keeps its data in an external file (data_location = EXTERNAL). External data is not supported: re-save the model with all tensors inside the .onnx file (onnx.save_model(model, path, save_as_external_data=False)).");
        if (hasSegment) throw Error($"{label} is segmented, which this reader does not support.");
        if (hasStrings || dataType == OnnxDataType.String) throw Error($"{label} holds strings; only numeric tensors can be weights.");
        if (dataType is OnnxDataType.Undefined or OnnxDataType.Complex64 or OnnxDataType.Complex128 || !Enum.IsDefined(dataType))
            throw Error($"{label} has unsupported data type {(int)dataType} ({dataType}).");
        long count = 1;
        foreach (var d in dims)
        {
            if (d < 0) throw Error($"{label} has a negative dimension {d} in [{string.Join(", ", dims)}].");
            if (d > 0 && count > MaxElements / d)
                throw Error($"{label} has shape [{string.Join(", ", dims)}], more than {MaxElements} elements.");
            count *= d;
        }
        if (raw is { } r)
        {
            int size = OnnxTensor.ElementSize(dataType);
            if ((long)r.Length != count * size)
                throw Error($"{label} of type {dataType} and shape [{string.Join(", ", dims)}] needs {count * size} bytes of raw_data but has {r.Length}.");
            return new OnnxTensor(name, [.. dims], dataType, _buffer.AsSpan(r.Offset, r.Length).ToArray(), null, null, null, null);
        }
        // Typed fields: float_data (float, complex64), double_data, int64_data, int32_data (int32 and all smaller types,
        // float16/bfloat16 as bit patterns).
        int got = dataType switch
        {
            OnnxDataType.Float => floats.Count,
            OnnxDataType.Double => doubles.Count,
            OnnxDataType.Int64 or OnnxDataType.UInt64 or OnnxDataType.UInt32 => longs.Count,
            _ => ints.Count,
        };
        if (got != count)
            throw Error($"{label} of type {dataType} and shape [{string.Join(", ", dims)}] has {got} values instead of {count}.");
        return dataType switch
        {
            OnnxDataType.Float => new OnnxTensor(name, [.. dims], dataType, null, [.. floats], null, null, null),
            OnnxDataType.Double => new OnnxTensor(name, [.. dims], dataType, null, null, [.. doubles], null, null),
            OnnxDataType.Int64 or OnnxDataType.UInt64 or OnnxDataType.UInt32 => new OnnxTensor(name, [.. dims], dataType, null, null, null, [.. longs], null),
            _ => new OnnxTensor(name, [.. dims], dataType, null, null, null, null, [.. ints]),
        };
    }
}
