using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Onnx;

/// <summary>
/// An ONNX graph with lookups for walking it: producer and consumers of each value, constants (initializers and
/// Constant nodes, through Identity), and the patterns weight import maps onto layers (<see cref="ConvUnits"/>,
/// <see cref="LinearUnits"/>).
/// </summary>
public sealed class OnnxGraph
{
    private static readonly HashSet<string> PassthroughOps = new(StringComparer.Ordinal) { "Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze" };

    private readonly Dictionary<string, OnnxNode> _producers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<OnnxNode>> _consumers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, OnnxTensor> _initializers = new(StringComparer.Ordinal);

    internal OnnxGraph(string file, string name, IReadOnlyList<OnnxNode> nodes, IReadOnlyList<OnnxTensor> initializers,
        IReadOnlyList<OnnxValueInfo> inputs, IReadOnlyList<OnnxValueInfo> outputs, IReadOnlyList<OnnxValueInfo> valueInfo)
    {
        File = file;
        Name = name;
        Nodes = nodes;
        InitializerList = initializers;
        Inputs = inputs;
        Outputs = outputs;
        ValueInfo = valueInfo;
        foreach (var t in initializers)
        {
            if (t.Name.Length == 0) throw new OnnxFormatException(file, "an initializer has no name.");
            if (!_initializers.TryAdd(t.Name, t)) throw new OnnxFormatException(file, $"initializer '{t.Name}' is defined twice.");
        }
        foreach (var n in nodes)
        {
            foreach (var o in n.Outputs.Where(o => o.Length > 0))
                if (!_producers.TryAdd(o, n)) throw new OnnxFormatException(file, $"value '{o}' is produced by two nodes ('{_producers[o].Name}' and '{n.Name}').");
            foreach (var i in n.Inputs.Where(i => i.Length > 0).Distinct())
            {
                if (!_consumers.TryGetValue(i, out var list)) _consumers[i] = list = [];
                list.Add(n);
            }
        }
    }

    /// <summary>The file this graph was read from.</summary>
    public string File { get; }

    /// <summary>Graph name.</summary>
    public string Name { get; }

    /// <summary>Nodes in file order (topological in valid ONNX).</summary>
    public IReadOnlyList<OnnxNode> Nodes { get; }

    /// <summary>Initializers in file order.</summary>
    public IReadOnlyList<OnnxTensor> InitializerList { get; }

    /// <summary>Initializers by name.</summary>
    public IReadOnlyDictionary<string, OnnxTensor> Initializers => _initializers;

    /// <summary>Graph inputs (in old IR versions these include the initializers).</summary>
    public IReadOnlyList<OnnxValueInfo> Inputs { get; }

    /// <summary>Graph outputs.</summary>
    public IReadOnlyList<OnnxValueInfo> Outputs { get; }

    /// <summary>Shape/type annotations of intermediate values.</summary>
    public IReadOnlyList<OnnxValueInfo> ValueInfo { get; }

    /// <summary>Graph inputs that are not initializers: the values a caller feeds.</summary>
    public IEnumerable<OnnxValueInfo> DataInputs => Inputs.Where(i => !_initializers.ContainsKey(i.Name));

    /// <summary>The node that produces <paramref name="value"/>, or null for graph inputs and initializers.</summary>
    public OnnxNode? Producer(string value) => _producers.GetValueOrDefault(value);

    /// <summary>The nodes that read <paramref name="value"/>, in graph order.</summary>
    public IReadOnlyList<OnnxNode> Consumers(string value) => _consumers.TryGetValue(value, out var l) ? l : [];

    /// <summary>Nodes with the given op type, in graph order.</summary>
    public IEnumerable<OnnxNode> NodesOfType(string opType) => Nodes.Where(n => n.OpType == opType);

    /// <summary>
    /// The constant behind <paramref name="value"/>: an initializer, or the value of a Constant node, looking through
    /// Identity nodes. Named or unnamed, the tensor is the same object the graph holds.
    /// </summary>
    public bool TryGetConstant(string value, out OnnxTensor tensor)
    {
        for (int hops = 0; hops <= Nodes.Count; hops++)
        {
            if (_initializers.TryGetValue(value, out var t)) { tensor = t; return true; }
            var p = Producer(value);
            if (p is null) break;
            if (p.OpType == "Identity" && p.Inputs.Count == 1) { value = p.Inputs[0]; continue; }
            if (p.OpType == "Constant" && ConstantValue(p) is { } c) { tensor = c; return true; }
            break;
        }
        tensor = null!;
        return false;
    }

    /// <summary>The constant behind <paramref name="value"/> (see <see cref="TryGetConstant"/>).</summary>
    /// <exception cref="OnnxFormatException">The value is computed at run time; the message names the node and <paramref name="what"/>.</exception>
    public OnnxTensor GetConstant(string value, string what) =>
        TryGetConstant(value, out var t) ? t
        : throw new OnnxFormatException(File, $"{what} ('{value}') is not a constant: it is computed by {Producer(value)?.ToString() ?? "a graph input"}.");

    /// <summary>
    /// Follows <paramref name="value"/> forward through data-preserving nodes (Identity, Dropout, Reshape, Flatten,
    /// Squeeze, Unsqueeze) while each has a single consumer; returns the last value reached.
    /// </summary>
    public string SkipPassthrough(string value)
    {
        for (int hops = 0; hops <= Nodes.Count; hops++)
        {
            var c = Consumers(value);
            if (c.Count != 1 || !PassthroughOps.Contains(c[0].OpType) || c[0].Inputs[0] != value || c[0].Outputs.Count == 0) return value;
            value = c[0].Outputs[0];
        }
        return value;
    }

    /// <summary>
    /// Every Conv node with what follows it: a BatchNormalization reading its output (when it is the only reader) and
    /// then a Relu (likewise). Weights and BatchNorm statistics are resolved to constants; graph order.
    /// </summary>
    /// <exception cref="OnnxFormatException">A convolution weight or BatchNorm parameter is not constant.</exception>
    public IReadOnlyList<ConvUnit> ConvUnits()
    {
        var units = new List<ConvUnit>();
        foreach (var conv in NodesOfType("Conv"))
        {
            var weight = GetConstant(conv.Inputs[1], $"weight of Conv '{conv.Name}'");
            OnnxTensor? bias = conv.Inputs.Count > 2 && conv.Inputs[2].Length > 0 ? GetConstant(conv.Inputs[2], $"bias of Conv '{conv.Name}'") : null;
            string output = conv.Outputs[0];
            BatchNormUnit? bn = null;
            OnnxNode? relu = null;
            var next = SingleConsumer(output);
            if (next is { OpType: "BatchNormalization" } && next.Inputs[0] == output)
            {
                bn = new BatchNormUnit(next,
                    GetConstant(next.Inputs[1], $"scale of BatchNormalization '{next.Name}'"),
                    GetConstant(next.Inputs[2], $"bias of BatchNormalization '{next.Name}'"),
                    GetConstant(next.Inputs[3], $"mean of BatchNormalization '{next.Name}'"),
                    GetConstant(next.Inputs[4], $"variance of BatchNormalization '{next.Name}'"),
                    next.GetFloat("epsilon", 1e-5f));
                output = next.Outputs[0];
                next = SingleConsumer(output);
            }
            if (next is { OpType: "Relu" })
            {
                relu = next;
                output = next.Outputs[0];
            }
            units.Add(new ConvUnit(conv, weight, bias, bn, relu, output));
        }
        return units;
    }

    /// <summary>
    /// Every fully connected layer: <c>Gemm</c> with a constant weight, or <c>MatMul</c> with a constant 2-D weight
    /// followed by an <c>Add</c> of a constant 1-D bias (the PyTorch export of <c>nn.Linear</c>). Weights may be unnamed
    /// initializers or Constant nodes; graph order.
    /// </summary>
    /// <exception cref="OnnxFormatException">A Gemm uses alpha/beta other than 1 or transA.</exception>
    public IReadOnlyList<LinearUnit> LinearUnits()
    {
        var units = new List<LinearUnit>();
        foreach (var node in Nodes)
        {
            if (node.OpType == "Gemm")
            {
                if (!TryGetConstant(node.Inputs[1], out var w) || w.Dims.Count != 2) continue;
                if (node.GetInt("transA", 0) != 0 || node.GetFloat("alpha", 1f) != 1f || node.GetFloat("beta", 1f) != 1f)
                    throw new OnnxFormatException(File, $"Gemm '{node.Name}' uses transA/alpha/beta; only y = x·Wᵀ + b (or x·W + b) maps onto a Linear layer.");
                OnnxTensor? b = node.Inputs.Count > 2 && node.Inputs[2].Length > 0 ? GetConstant(node.Inputs[2], $"bias of Gemm '{node.Name}'") : null;
                units.Add(new LinearUnit(node, node.Inputs[0], w, node.GetInt("transB", 0) != 0, b, null, node.Outputs[0]));
            }
            else if (node.OpType == "MatMul")
            {
                string input;
                OnnxTensor w;
                if (TryGetConstant(node.Inputs[1], out var w1) && w1.Dims.Count == 2) { input = node.Inputs[0]; w = w1; }
                else continue;
                OnnxTensor? bias = null;
                OnnxNode? add = null;
                string output = node.Outputs[0];
                if (SingleConsumer(output) is { OpType: "Add" } a)
                {
                    string other = a.Inputs[0] == output ? a.Inputs[1] : a.Inputs[0];
                    if (TryGetConstant(other, out var b) && b.Dims.Count == 1 && b.Dims[0] == w.Dims[1])
                    {
                        bias = b;
                        add = a;
                        output = a.Outputs[0];
                    }
                }
                units.Add(new LinearUnit(node, input, w, false, bias, add, output));
            }
        }
        return units;
    }

    private OnnxNode? SingleConsumer(string value) => Consumers(value) is { Count: 1 } c ? c[0] : null;

    private OnnxTensor? ConstantValue(OnnxNode constant)
    {
        foreach (var a in constant.Attributes.Values)
        {
            var name = constant.Outputs.Count > 0 ? constant.Outputs[0] : "";
            switch (a.Name)
            {
                case "value" when a.T is not null: return a.T;
                case "value_float": return new OnnxTensor(name, [], OnnxDataType.Float, null, [a.F], null, null, null);
                case "value_floats": return new OnnxTensor(name, [a.Floats.Length], OnnxDataType.Float, null, a.Floats, null, null, null);
                case "value_int": return new OnnxTensor(name, [], OnnxDataType.Int64, null, null, null, [a.I], null);
                case "value_ints": return new OnnxTensor(name, [a.Ints.Length], OnnxDataType.Int64, null, null, null, a.Ints, null);
            }
        }
        return null;
    }
}

/// <summary>The parameters of one BatchNormalization node.</summary>
/// <param name="Node">The node.</param>
/// <param name="Scale">γ (weight).</param>
/// <param name="Bias">β (bias).</param>
/// <param name="Mean">Running mean.</param>
/// <param name="Var">Running variance.</param>
/// <param name="Epsilon">ε.</param>
public sealed record BatchNormUnit(OnnxNode Node, OnnxTensor Scale, OnnxTensor Bias, OnnxTensor Mean, OnnxTensor Var, float Epsilon);

/// <summary>A convolution with the BatchNormalization and Relu that follow it, if any.</summary>
/// <param name="Conv">The Conv node.</param>
/// <param name="Weight">Kernel [out, in/groups, kH, kW].</param>
/// <param name="Bias">Conv bias, if any.</param>
/// <param name="BatchNorm">The BatchNormalization reading the conv output, if any.</param>
/// <param name="Relu">The Relu after the chain, if any.</param>
/// <param name="Output">The value the chain ends in.</param>
public sealed record ConvUnit(OnnxNode Conv, OnnxTensor Weight, OnnxTensor? Bias, BatchNormUnit? BatchNorm, OnnxNode? Relu, string Output)
{
    /// <summary>Strides (default 1).</summary>
    public long[] Strides => Conv.GetInts("strides") ?? [1, 1];

    /// <summary>Pads as ONNX states them: [begin_h, begin_w, end_h, end_w] (default zeros).</summary>
    public long[] Pads => Conv.GetInts("pads") ?? new long[2 * (Weight.Dims.Count - 2)];

    /// <summary>Groups (default 1).</summary>
    public long Groups => Conv.GetInt("group", 1);

    /// <summary>Kernel shape from the weight.</summary>
    public long[] KernelShape => Weight.Dims.Skip(2).ToArray();
}

/// <summary>A fully connected layer found in the graph: MatMul (+ Add) or Gemm.</summary>
/// <param name="Node">The MatMul or Gemm node.</param>
/// <param name="Input">The activation input.</param>
/// <param name="Weight">The weight as stored.</param>
/// <param name="WeightIsOutIn">True when <paramref name="Weight"/> is stored [out, in] (Gemm with transB=1); false for [in, out].</param>
/// <param name="Bias">Bias [out], if any.</param>
/// <param name="BiasAdd">The Add node carrying the bias for MatMul, if any.</param>
/// <param name="Output">The value the layer ends in.</param>
public sealed record LinearUnit(OnnxNode Node, string Input, OnnxTensor Weight, bool WeightIsOutIn, OnnxTensor? Bias, OnnxNode? BiasAdd, string Output)
{
    /// <summary>Output features.</summary>
    public long OutFeatures => WeightIsOutIn ? Weight.Dims[0] : Weight.Dims[1];

    /// <summary>Input features.</summary>
    public long InFeatures => WeightIsOutIn ? Weight.Dims[1] : Weight.Dims[0];

    /// <summary>The weight as <c>nn.Linear</c> holds it: [out, in] (transposed from MatMul's [in, out]).</summary>
    public Tensor LinearWeight()
    {
        using var w = Weight.ToTensor();
        return WeightIsOutIn ? w.clone() : w.t().contiguous();
    }
}
