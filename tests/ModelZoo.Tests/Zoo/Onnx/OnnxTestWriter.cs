using Google.Protobuf;

namespace ModelZoo.Tests.Zoo.Onnx;

/// <summary>
/// Test-only writer of small ONNX protobuf messages (field numbers from onnx.proto), to build graphs the reader must
/// handle or reject, and to rewrite a real model's inputs/outputs for ONNX Runtime parity runs.
/// </summary>
internal static class OnnxTestWriter
{
    internal static byte[] Message(Action<CodedOutputStream> write)
    {
        using var ms = new MemoryStream();
        var o = new CodedOutputStream(ms);
        write(o);
        o.Flush();
        return ms.ToArray();
    }

    internal static void Bytes(CodedOutputStream o, int field, byte[] payload)
    {
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(payload));
    }

    internal static void Str(CodedOutputStream o, int field, string value)
    {
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteString(value);
    }

    internal static void Int(CodedOutputStream o, int field, long value)
    {
        o.WriteTag(field, WireFormat.WireType.Varint);
        o.WriteInt64(value);
    }

    /// <summary>TensorProto with float values as raw_data (or float_data when <paramref name="typed"/>).</summary>
    internal static byte[] FloatTensor(string name, long[] dims, float[] values, bool typed = false) => Message(o =>
    {
        foreach (var d in dims) Int(o, 1, d);
        Int(o, 2, 1);
        if (name.Length > 0) Str(o, 8, name);
        if (typed)
        {
            Bytes(o, 4, values.SelectMany(BitConverter.GetBytes).ToArray()); // packed float_data
        }
        else Bytes(o, 9, values.SelectMany(BitConverter.GetBytes).ToArray());
    });

    internal static byte[] Node(string opType, string[] inputs, string[] outputs, string name = "", params byte[][] attributes) => Message(o =>
    {
        foreach (var i in inputs) Str(o, 1, i);
        foreach (var x in outputs) Str(o, 2, x);
        if (name.Length > 0) Str(o, 3, name);
        Str(o, 4, opType);
        foreach (var a in attributes) Bytes(o, 5, a);
    });

    internal static byte[] TensorAttribute(string name, byte[] tensor) => Message(o => { Str(o, 1, name); Bytes(o, 5, tensor); Int(o, 20, 4); });

    internal static byte[] IntsAttribute(string name, long[] values) => Message(o => { Str(o, 1, name); foreach (var v in values) Int(o, 8, v); Int(o, 20, 7); });

    /// <summary>ValueInfoProto of a float tensor; dims &lt; 0 become symbolic dimensions named N0, N1, ...</summary>
    internal static byte[] ValueInfo(string name, long[]? dims) => Message(o =>
    {
        Str(o, 1, name);
        Bytes(o, 2, Message(type => Bytes(type, 1, Message(tensor =>
        {
            Int(tensor, 1, 1);
            if (dims is not null)
                Bytes(tensor, 2, Message(shape =>
                {
                    for (int i = 0; i < dims.Length; i++)
                        Bytes(shape, 1, Message(d => { if (dims[i] >= 0) Int(d, 1, dims[i]); else Str(d, 2, "N" + i); }));
                }));
        }))));
    });

    internal static byte[] Graph(byte[][] nodes, byte[][] initializers, byte[][] inputs, byte[][] outputs, string name = "g") => Message(o =>
    {
        foreach (var n in nodes) Bytes(o, 1, n);
        Str(o, 2, name);
        foreach (var t in initializers) Bytes(o, 5, t);
        foreach (var i in inputs) Bytes(o, 11, i);
        foreach (var x in outputs) Bytes(o, 12, x);
    });

    internal static byte[] Model(byte[] graph, long opset = 13) => Message(o =>
    {
        Int(o, 1, 7);
        Str(o, 2, "test");
        Bytes(o, 7, graph);
        Bytes(o, 8, Message(op => { Str(op, 1, ""); Int(op, 2, opset); }));
    });

    /// <summary>
    /// Copies a model, replacing the graph's inputs and outputs and dropping value_info (so ONNX Runtime accepts other
    /// input sizes) and nodes whose op type is in <paramref name="dropOps"/>. Every other field is copied unchanged.
    /// </summary>
    internal static byte[] RewriteModel(byte[] model, byte[][] newInputs, byte[][] newOutputs, ISet<string> dropOps)
    {
        return Message(o =>
        {
            foreach (var f in Fields(model))
            {
                if (f.Field == 7) Bytes(o, 7, RewriteGraph(f.Payload!, newInputs, newOutputs, dropOps));
                else Copy(o, f);
            }
        });
    }

    private static byte[] RewriteGraph(byte[] graph, byte[][] newInputs, byte[][] newOutputs, ISet<string> dropOps) => Message(o =>
    {
        foreach (var f in Fields(graph))
        {
            if (f.Field is 11 or 12 or 13) continue;
            if (f.Field == 1 && dropOps.Contains(OnnxModelOpType(f.Payload!))) continue;
            Copy(o, f);
        }
        foreach (var i in newInputs) Bytes(o, 11, i);
        foreach (var x in newOutputs) Bytes(o, 12, x);
    });

    private static string OnnxModelOpType(byte[] node)
    {
        foreach (var f in Fields(node))
            if (f.Field == 4) return System.Text.Encoding.UTF8.GetString(f.Payload!);
        return "";
    }

    private static void Copy(CodedOutputStream o, (int Field, WireFormat.WireType Wire, byte[]? Payload, ulong Value) f)
    {
        o.WriteTag(f.Field, f.Wire);
        switch (f.Wire)
        {
            case WireFormat.WireType.LengthDelimited: o.WriteBytes(ByteString.CopyFrom(f.Payload!)); break;
            case WireFormat.WireType.Varint: o.WriteUInt64(f.Value); break;
            case WireFormat.WireType.Fixed32: o.WriteFixed32((uint)f.Value); break;
            case WireFormat.WireType.Fixed64: o.WriteFixed64(f.Value); break;
            default: throw new NotSupportedException(f.Wire.ToString());
        }
    }

    /// <summary>Splits a message into its fields: number, wire type, payload (length-delimited) or value.</summary>
    private static List<(int Field, WireFormat.WireType Wire, byte[]? Payload, ulong Value)> Fields(byte[] message)
    {
        var s = new CodedInputStream(message);
        var list = new List<(int, WireFormat.WireType, byte[]?, ulong)>();
        uint tag;
        while ((tag = s.ReadTag()) != 0)
        {
            var wire = WireFormat.GetTagWireType(tag);
            switch (wire)
            {
                case WireFormat.WireType.LengthDelimited: list.Add((WireFormat.GetTagFieldNumber(tag), wire, s.ReadBytes().ToByteArray(), 0)); break;
                case WireFormat.WireType.Varint: list.Add((WireFormat.GetTagFieldNumber(tag), wire, null, s.ReadUInt64())); break;
                case WireFormat.WireType.Fixed32: list.Add((WireFormat.GetTagFieldNumber(tag), wire, null, s.ReadFixed32())); break;
                case WireFormat.WireType.Fixed64: list.Add((WireFormat.GetTagFieldNumber(tag), wire, null, s.ReadFixed64())); break;
                default: throw new NotSupportedException(wire.ToString());
            }
        }
        return list;
    }
}
