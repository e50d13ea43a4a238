using ModelZoo.Onnx;

namespace ModelZoo.Models.Vision;

// ONNX → ResNet mapping, kept next to the family (ResNet.cs). It does not rely on initializer names or node order:
// it follows the data flow from the stem convolution through each residual block (main path Conv→BN→Relu chain,
// optional 1×1 projection shortcut, Add, Relu), checking kernel sizes, strides, pads, groups and every tensor shape
// against the configuration. Works for torchvision exports (torch.onnx) and the CNTK 2.6 export in
// Microsoft.ML.DnnImageFeaturizer.ResNet18 (whose projection conv comes before the main path in node order and whose
// stride-2 "same" pads are asymmetric).

public sealed partial class ResNet : IOnnxImportable
{
    /// <inheritdoc />
    public OnnxImportReport ImportOnnx(OnnxModel onnx)
    {
        ArgumentNullException.ThrowIfNull(onnx);
        var g = onnx.Graph;
        var name = Entry?.Name ?? $"ResNet ({Config})";
        var w = new OnnxStateWriter(this, onnx, name);
        var units = g.ConvUnits();
        if (units.Count == 0) throw w.Error("the graph has no Conv nodes.");
        int expected = 1 + Config.Layers.Sum(n => n * (Config.Block == "basic" ? 2 : 3)) + Config.Layers.Length - (Config.Block == "basic" ? 1 : 0);
        if (units.Count != expected)
            throw w.Error($"the graph has {units.Count} convolutions; {Config} needs {expected}. Is the architecture right (e.g. 'resnet18-cntk' has stages [2, 2, 2, 3])?");
        var byInput = units.ToLookup(u => u.Conv.Inputs[0]);

        // Stem: conv 7×7/2 → BN → Relu → MaxPool 3×3/2.
        var stem = units[0];
        MapConv(w, stem, "conv1", "bn1", kernel: 7, stride: 2, pad: 3, groups: 1, relu: true);
        var pool = g.Consumers(stem.Output) is { Count: 1 } pc && pc[0].OpType == "MaxPool" ? pc[0]
            : throw w.Error($"expected a MaxPool after the stem ({stem.Output}), found {string.Join(", ", g.Consumers(stem.Output).Select(n => n.ToString()))}.");
        CheckPool(w, pool);
        string x = pool.Outputs[0];

        for (int s = 0; s < Config.Layers.Length; s++)
        {
            for (int b = 0; b < Config.Layers[s]; b++)
            {
                string prefix = $"layer{s + 1}.{b}";
                int stride = s > 0 && b == 0 ? 2 : 1;
                var starts = byInput[x].ToList();
                bool hasDown = Get(prefix).named_children().Any(c => c.name == "downsample");
                if (starts.Count != (hasDown ? 2 : 1))
                    throw w.Error($"block {prefix}: {starts.Count} convolutions read '{x}', expected {(hasDown ? 2 : 1)} ({(hasDown ? "main path and projection shortcut" : "main path only")}).");
                ConvUnit? down = hasDown ? starts.FirstOrDefault(u => u.Relu is null && g.Consumers(u.Output) is { Count: 1 } c && c[0].OpType == "Add") : null;
                if (hasDown && down is null) throw w.Error($"block {prefix}: no projection shortcut (Conv→BN→Add) reads '{x}'.");
                var main = starts.Single(u => !ReferenceEquals(u, down));
                var chain = new List<ConvUnit> { main };
                while (chain[^1].Relu is not null)
                {
                    var next = byInput[chain[^1].Output].ToList();
                    if (next.Count != 1) throw w.Error($"block {prefix}: after '{chain[^1].Output}' expected one convolution, found {next.Count}.");
                    chain.Add(next[0]);
                }
                int depth = Config.Block == "basic" ? 2 : 3;
                if (chain.Count != depth)
                    throw w.Error($"block {prefix}: the main path has {chain.Count} convolutions; a {Config.Block} block has {depth}.");
                if (Config.Block == "basic")
                {
                    MapConv(w, chain[0], $"{prefix}.conv1", $"{prefix}.bn1", 3, stride, 1, 1, relu: true);
                    MapConv(w, chain[1], $"{prefix}.conv2", $"{prefix}.bn2", 3, 1, 1, 1, relu: false);
                }
                else
                {
                    MapConv(w, chain[0], $"{prefix}.conv1", $"{prefix}.bn1", 1, 1, 0, 1, relu: true);
                    MapConv(w, chain[1], $"{prefix}.conv2", $"{prefix}.bn2", 3, stride, 1, Config.Groups, relu: true);
                    MapConv(w, chain[2], $"{prefix}.conv3", $"{prefix}.bn3", 1, 1, 0, 1, relu: false);
                }
                if (down is not null) MapConv(w, down, $"{prefix}.downsample.0", $"{prefix}.downsample.1", 1, stride, 0, 1, relu: false);

                var add = g.Consumers(chain[^1].Output) is { Count: 1 } ac && ac[0].OpType == "Add" ? ac[0]
                    : throw w.Error($"block {prefix}: the main path ('{chain[^1].Output}') does not end in an Add.");
                string shortcut = down?.Output ?? x;
                if (!add.Inputs.Contains(shortcut))
                    throw w.Error($"block {prefix}: the residual Add '{add.Name}' adds ({string.Join(", ", add.Inputs)}), not the shortcut '{shortcut}'.");
                var relu = g.Consumers(add.Outputs[0]) is { Count: 1 } rc && rc[0].OpType == "Relu" ? rc[0]
                    : throw w.Error($"block {prefix}: no Relu after the residual Add '{add.Name}'.");
                x = relu.Outputs[0];
            }
        }

        // Pooling and (optional) classifier.
        var tail = g.Consumers(x);
        if (tail.Count != 1 || tail[0].OpType is not ("GlobalAveragePool" or "AveragePool" or "ReduceMean"))
            throw w.Error($"expected global average pooling after the last block ('{x}'), found {string.Join(", ", tail.Select(n => n.ToString()))}.");
        if (tail[0].OpType == "AveragePool")
            w.Note($"the graph pools with a fixed {string.Join("×", tail[0].GetInts("kernel_shape") ?? [])} AveragePool (global only at the size it was exported for); the zoo model pools globally at any size");
        string pooled = g.SkipPassthrough(tail[0].Outputs[0]);
        var fc = g.LinearUnits().FirstOrDefault(l => l.Input == pooled);
        if (fc is null)
        {
            if (NumClasses > 0) w.Note($"the graph has no classifier: head '{HeadPath}' keeps its fresh initialisation");
        }
        else if (NumClasses == 0)
        {
            w.Note($"the graph's classifier ({fc.OutFeatures} classes) was not loaded because the model has no head (NumClasses 0)");
            w.MarkUsed(fc.Weight);
            if (fc.Bias is not null) w.MarkUsed(fc.Bias);
        }
        else
        {
            if (fc.OutFeatures != NumClasses || fc.InFeatures != NumFeatures)
                throw w.Error($"the graph's classifier is {fc.InFeatures}→{fc.OutFeatures}, the model's head is {NumFeatures}→{NumClasses}; build the model with NumClasses {fc.OutFeatures} (or 0 for features only).");
            using var weight = fc.LinearWeight();
            w.Set($"{HeadPath}.weight", weight, $"classifier weight {fc.Weight} (transposed to [out, in])");
            w.MarkUsed(fc.Weight);
            if (fc.Bias is not null) w.Set($"{HeadPath}.bias", fc.Bias);
        }
        return w.Report();
    }

    private static void CheckPool(OnnxStateWriter w, Onnx.OnnxNode pool)
    {
        var k = pool.GetInts("kernel_shape") ?? [];
        var s = pool.GetInts("strides") ?? [1, 1];
        var p = pool.GetInts("pads") ?? [0, 0, 0, 0];
        if (!k.SequenceEqual([3L, 3L]) || !s.SequenceEqual([2L, 2L]) || p[0] != 1 || p[1] != 1)
            throw w.Error($"stem MaxPool '{pool.Name}' has kernel [{string.Join(", ", k)}], strides [{string.Join(", ", s)}], pads [{string.Join(", ", p)}]; expected 3×3, stride 2, pad 1.");
        CheckPads(w, pool.Name, p, 1, 2);
    }

    private static void MapConv(OnnxStateWriter w, ConvUnit u, string conv, string bn, int kernel, int stride, int pad, int groups, bool relu)
    {
        string where = $"Conv '{u.Conv.Name}' → {conv}";
        if (!u.KernelShape.SequenceEqual([(long)kernel, kernel]))
            throw w.Error($"{where}: kernel [{string.Join(", ", u.KernelShape)}], expected {kernel}×{kernel}.");
        if (!u.Strides.SequenceEqual([(long)stride, stride]))
            throw w.Error($"{where}: strides [{string.Join(", ", u.Strides)}], expected {stride}.");
        if (u.Groups != groups) throw w.Error($"{where}: group {u.Groups}, expected {groups}.");
        if (u.Conv.GetInts("dilations") is { } d && d.Any(v => v != 1)) throw w.Error($"{where}: dilations [{string.Join(", ", d)}] are not supported.");
        var autoPad = u.Conv.GetString("auto_pad", "NOTSET");
        if (autoPad is not ("NOTSET" or ""))
            throw w.Error($"{where}: auto_pad {autoPad} is not supported; export with explicit pads.");
        CheckPads(w, u.Conv.Name, u.Pads, pad, stride);
        if (relu != (u.Relu is not null)) throw w.Error($"{where}: {(relu ? "expected" : "did not expect")} a Relu after it.");
        w.Set($"{conv}.weight", u.Weight);
        if (u.BatchNorm is null)
        {
            // Exporters in eval mode (torch.onnx's eval peephole, onnx optimizers) fold BatchNorm into the conv as a
            // bias. Represent that exactly: BN with weight 1, bias = conv bias, mean 0, var 1 − ε, so BN(x) = x + b.
            if (u.Bias is null) throw w.Error($"{where}: neither a BatchNormalization nor a bias follows the convolution.");
            int c = checked((int)u.Weight.Dims[0]);
            using var ones = TorchSharp.torch.ones(c);
            using var zeros = TorchSharp.torch.zeros(c);
            using var var = TorchSharp.torch.full(c, 1.0 - 1e-5);
            w.Set($"{bn}.weight", ones, "folded BatchNorm (1)");
            w.Set($"{bn}.bias", u.Bias);
            w.Set($"{bn}.running_mean", zeros, "folded BatchNorm (0)");
            w.Set($"{bn}.running_var", var, "folded BatchNorm (1 − ε)");
            w.Note("BatchNorm was folded into the convolutions by the exporter: the model's BatchNorms are set to identity plus the conv bias (exact in eval mode; their statistics restart from there when fine-tuned)");
            return;
        }
        if (Math.Abs(u.BatchNorm.Epsilon - 1e-5f) > 1e-7f)
            throw w.Error($"{where}: BatchNormalization epsilon {u.BatchNorm.Epsilon} differs from the model's 1e-5.");
        if (u.Bias is not null) throw w.Error($"{where}: the convolution has a bias before its BatchNormalization; ResNet convolutions have none.");
        w.Set($"{bn}.weight", u.BatchNorm.Scale);
        w.Set($"{bn}.bias", u.BatchNorm.Bias);
        w.Set($"{bn}.running_mean", u.BatchNorm.Mean);
        w.Set($"{bn}.running_var", u.BatchNorm.Var);
    }

    // ONNX pads are [begin_h, begin_w, end_h, end_w]. Symmetric pads equal the model's. CNTK's "same" padding for
    // stride 2 puts one pixel less at the end. When the layer's input size is even, that last padding pixel is never
    // read by any window (window positions are identical), so outputs are equal; with an odd size the ONNX layer
    // yields one row/column less. All five stride-2 layers see even sizes iff the input side is a multiple of 32;
    // at other sizes the CNTK graph itself fails (its 1×1/2 shortcut keeps the extra row, the residual Add mismatches).
    private static void CheckPads(OnnxStateWriter w, string node, long[] pads, int pad, int stride)
    {
        if (pads.Length != 4) throw w.Error($"'{node}': pads [{string.Join(", ", pads)}] are not 2-D.");
        bool symmetric = pads.All(p => p == pad);
        bool sameLower = stride == 2 && pads[0] == pad && pads[1] == pad && pads[2] == pad - 1 && pads[3] == pad - 1;
        if (symmetric) return;
        if (sameLower)
        {
            w.Note("stride-2 layers use asymmetric \"same\" pads (one less at the end): identical to the model's symmetric pads when every stride-2 layer sees an even size, i.e. input sides that are multiples of 32 (224, 160, 96); at other sizes the original graph cannot run (its residual Add sees mismatched sizes), the zoo model can");
            return;
        }
        throw w.Error($"'{node}': pads [{string.Join(", ", pads)}], expected {pad} on every side.");
    }
}
