using ModelZoo.Onnx;
using static ModelZoo.Tests.Zoo.Onnx.OnnxTestWriter;

namespace ModelZoo.Tests.Zoo.Onnx;

public class OnnxReaderTests
{
    private static byte[] LinearGraph(bool typedWeights = false) => Model(Graph(
        nodes:
        [
            Node("Constant", [], ["w_const"], "const_w", TensorAttribute("value", FloatTensor("", [3, 2], [1, 2, 3, 4, 5, 6]))),
            Node("Identity", ["w_const"], ["w_id"]),
            Node("MatMul", ["x", "w_id"], ["mm"], "matmul"),
            Node("Add", ["b", "mm"], ["y"], "add"),
            Node("Relu", ["y"], ["z"]),
        ],
        initializers: [FloatTensor("b", [2], [0.5f, -0.5f], typedWeights)],
        inputs: [ValueInfo("x", [-1, 3])],
        outputs: [ValueInfo("z", [-1, 2])]));

    [Fact]
    public void Reads_header_nodes_attributes_and_value_infos()
    {
        var m = OnnxModel.Parse(LinearGraph(), "linear.onnx");
        Assert.Equal(7, m.IrVersion);
        Assert.Equal("test", m.ProducerName);
        Assert.Equal(13, m.Opset);
        Assert.Equal(5, m.Graph.Nodes.Count);
        Assert.Equal("MatMul", m.Graph.Nodes[2].OpType);
        Assert.Equal(["x", "w_id"], m.Graph.Nodes[2].Inputs);
        var x = Assert.Single(m.Graph.DataInputs);
        Assert.Equal("x", x.Name);
        Assert.Equal(new long?[] { null, 3 }, x.Shape);
        Assert.Equal("N0", x.DimParams![0]);
        Assert.Equal([0.5f, -0.5f], m.Initializers["b"].ToFloatArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Finds_MatMul_Add_as_linear_with_transposed_weight_through_Constant_and_Identity(bool typed)
    {
        var g = OnnxModel.Parse(LinearGraph(typed), "linear.onnx").Graph;
        var unit = Assert.Single(g.LinearUnits());
        Assert.Equal("x", unit.Input);
        Assert.Equal("y", unit.Output);
        Assert.Equal(2, unit.OutFeatures);
        Assert.Equal(3, unit.InFeatures);
        Assert.Equal("b", unit.Bias!.Name);
        using var w = unit.LinearWeight();
        Assert.Equal(new long[] { 2, 3 }, w.shape);
        Assert.Equal([1f, 3, 5, 2, 4, 6], w.data<float>().ToArray());
        Assert.Equal("add", g.Consumers("mm").Single().Name);
        Assert.Equal("matmul", g.Producer("mm")!.Name);
        Assert.Equal("y", g.SkipPassthrough("y"));
        Assert.True(g.TryGetConstant("w_id", out var c));
        Assert.Equal(new long[] { 3, 2 }, c.Dims);
        Assert.False(g.TryGetConstant("mm", out _));
    }

    [Fact]
    public void Follows_conv_batchnorm_relu_chain_and_reads_attributes()
    {
        var bn = new[] { 1f, 1f };
        var bytes = Model(Graph(
            nodes:
            [
                Node("Conv", ["x", "w"], ["c"], "conv", IntsAttribute("pads", [1, 1, 0, 0]), IntsAttribute("strides", [2, 2])),
                Node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], "bn"),
                Node("Relu", ["n"], ["r"], "relu"),
            ],
            initializers: [FloatTensor("w", [2, 1, 3, 3], new float[18]), FloatTensor("s", [2], bn), FloatTensor("bb", [2], bn), FloatTensor("m", [2], bn), FloatTensor("v", [2], bn)],
            inputs: [ValueInfo("x", [1, 1, 8, 8])], outputs: [ValueInfo("r", null)]));
        var unit = Assert.Single(OnnxModel.Parse(bytes, "conv.onnx").Graph.ConvUnits());
        Assert.Equal("bn", unit.BatchNorm!.Node.Name);
        Assert.Equal("relu", unit.Relu!.Name);
        Assert.Equal("r", unit.Output);
        Assert.Equal([1L, 1, 0, 0], unit.Pads);
        Assert.Equal([2L, 2], unit.Strides);
        Assert.Equal([3L, 3], unit.KernelShape);
        Assert.Equal(1e-5f, unit.BatchNorm.Epsilon);
    }

    [Fact]
    public void External_data_is_refused_with_the_file_name_and_the_fix()
    {
        var tensor = Message(o => { Int(o, 1, 4); Int(o, 2, 1); Str(o, 8, "big"); Int(o, 14, 1); });
        var bytes = Model(Graph([], [tensor], [], []));
        var e = Assert.Throws<OnnxFormatException>(() => OnnxModel.Parse(bytes, "ext.onnx"));
        Assert.Contains("ext.onnx", e.Message);
        Assert.Contains("external", e.Message);
        Assert.Contains("save_as_external_data=False", e.Message);
    }

    [Fact]
    public void Raw_data_size_must_match_the_shape()
    {
        var tensor = Message(o => { Int(o, 1, 4); Int(o, 2, 1); Str(o, 8, "t"); Bytes(o, 9, new byte[12]); });
        var e = Assert.Throws<OnnxFormatException>(() => OnnxModel.Parse(Model(Graph([], [tensor], [], [])), "bad.onnx"));
        Assert.Contains("needs 16 bytes of raw_data but has 12", e.Message);
    }

    [Fact]
    public void Huge_declared_shapes_are_refused_before_allocation()
    {
        var tensor = Message(o => { Int(o, 1, 1L << 40); Int(o, 1, 1L << 40); Int(o, 2, 1); Str(o, 8, "huge"); });
        var e = Assert.Throws<OnnxFormatException>(() => OnnxModel.Parse(Model(Graph([], [tensor], [], [])), "huge.onnx"));
        Assert.Contains("huge.onnx", e.Message);
        Assert.Contains("elements", e.Message);
    }

    [Fact]
    public void Truncated_and_garbage_files_raise_OnnxFormatException_naming_the_file()
    {
        var good = LinearGraph();
        var truncated = good.AsSpan(0, good.Length - 7).ToArray();
        Assert.Contains("cut.onnx", Assert.Throws<OnnxFormatException>(() => OnnxModel.Parse(truncated, "cut.onnx")).Message);
        var garbage = "this is not a protobuf file at all"u8.ToArray();
        Assert.Contains("junk.onnx", Assert.Throws<OnnxFormatException>(() => OnnxModel.Parse(garbage, "junk.onnx")).Message);
        Assert.Contains("empty", Assert.Throws<OnnxFormatException>(() => OnnxModel.Parse([], "empty.onnx")).Message);
    }

    [Fact]
    public void Missing_file_is_FileNotFoundException()
    {
        var path = Path.Combine(Path.GetTempPath(), "zoo-missing-" + Guid.NewGuid() + ".onnx");
        Assert.Contains(path, Assert.Throws<FileNotFoundException>(() => OnnxModel.Load(path)).Message);
    }
}
