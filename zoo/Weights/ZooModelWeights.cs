using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo;

public abstract partial class ZooModel
{
    /// <summary>The report of the last <see cref="LoadStateDict"/> (or <c>Zoo.Load</c>), if any.</summary>
    public LoadReport? LastLoadReport { get; internal set; }

    /// <summary>
    /// Hook for families whose checkpoints use other key names (older releases, timm vs. torchvision, HF prefixes):
    /// returns the checkpoint with keys renamed to this model's. The default returns it unchanged. Overrides live in
    /// the family's file, in its "checkpoint remap" section.
    /// </summary>
    protected internal virtual IReadOnlyDictionary<string, Tensor> RemapCheckpoint(IReadOnlyDictionary<string, Tensor> checkpoint) => checkpoint;

    /// <summary>
    /// Copies the tensors of <paramref name="checkpoint"/> into this model's parameters and buffers (converting dtype
    /// and device). The checkpoint is compared with the model first; in strict mode any missing, unexpected or
    /// shape-mismatched key throws <see cref="WeightLoadException"/> and nothing is changed. Otherwise what fits is
    /// loaded and the rest reported.
    /// </summary>
    /// <param name="checkpoint">Tensors by state-dict key (e.g. from <see cref="StateDictFile.Read"/>).</param>
    /// <param name="strict">Require an exact match (after <paramref name="skipHead"/>).</param>
    /// <param name="skipHead">Leave the classifier (<see cref="HeadPath"/>) out on both sides: load a 1000-class checkpoint into a 10-class model or the reverse.</param>
    /// <param name="source">Name used in messages, e.g. the file path.</param>
    /// <remarks>
    /// A checkpoint whose stem convolution (<see cref="StemConvPath"/>) takes 3 channels is adapted to
    /// <see cref="InChans"/> as timm's <c>adapt_input_conv</c> does: 1 channel = sum over RGB; N channels = RGB
    /// repeated and scaled by 3/N. BatchNorm <c>num_batches_tracked</c> buffers missing from old checkpoints are
    /// tolerated (PyTorch does the same).
    /// </remarks>
    public LoadReport LoadStateDict(IReadOnlyDictionary<string, Tensor> checkpoint, bool strict = true, bool skipHead = false, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        source ??= checkpoint is StateDict sd ? sd.Source : "state dict";
        var notes = checkpoint is StateDict s2 ? new List<string>(s2.Notes) : [];
        var ckpt = RemapCheckpoint(checkpoint);
        var own = state_dict();
        bool IsHead(string key) => key == HeadPath || key.StartsWith(HeadPath + ".", StringComparison.Ordinal);

        var skipped = skipHead ? ckpt.Keys.Where(IsHead).ToList() : [];
        var loaded = new List<string>();
        var missing = new List<string>();
        var mismatched = new List<ShapeMismatch>();
        var plan = new List<(Tensor Target, Tensor Source, bool Adapt)>();
        foreach (var (key, target) in own)
        {
            if (skipHead && IsHead(key)) continue;
            if (!ckpt.TryGetValue(key, out var src))
            {
                if (key.EndsWith(".num_batches_tracked", StringComparison.Ordinal)) notes.Add($"'{key}' is not in the checkpoint; kept at its current value");
                else missing.Add(key);
                continue;
            }
            bool adapt = false;
            if (!src.shape.SequenceEqual(target.shape))
            {
                if (StemConvPath is { } stem && key == stem + ".weight" && src.dim() == 4 && target.dim() == 4 && src.shape[1] == 3 && target.shape[1] != 3
                    && src.shape[0] == target.shape[0] && src.shape[2] == target.shape[2] && src.shape[3] == target.shape[3])
                {
                    adapt = true;
                    notes.Add($"adapted '{key}' from 3 input channels to {target.shape[1]} ({(target.shape[1] == 1 ? "sum over RGB" : $"RGB repeated, scaled by 3/{target.shape[1]}")}, as timm's adapt_input_conv)");
                }
                else
                {
                    mismatched.Add(new ShapeMismatch(key, target.shape, src.shape));
                    continue;
                }
            }
            if (!src.is_floating_point() && target.is_floating_point() || src.is_floating_point() && !target.is_floating_point())
            {
                mismatched.Add(new ShapeMismatch(key, target.shape, src.shape));
                notes.Add($"'{key}' is {src.dtype} in the checkpoint but {target.dtype} in the model");
                continue;
            }
            plan.Add((target, src, adapt));
            loaded.Add(key);
        }
        var unexpected = ckpt.Keys.Where(k => !own.ContainsKey(k) && !(skipHead && IsHead(k))).ToList();
        var report = new LoadReport(source, loaded, missing, unexpected, mismatched, skipped, notes.Distinct().ToList());
        if (strict && !report.IsExact)
            throw new WeightLoadException($"The weights do not fit '{Entry?.Name ?? GetType().Name}' (strict loading; nothing was changed).\n{report}\n" +
                "Pass strict: false to load what fits" + (skipHead ? "." : ", or skipHead: true when only the classifier differs (e.g. another number of classes)."), report);

        using (no_grad())
        {
            foreach (var (target, src, adapt) in plan)
            {
                if (adapt)
                {
                    using var a = AdaptInputConv(src, (int)target.shape[1]);
                    target.copy_(a);
                }
                else target.copy_(src);
            }
        }
        LastLoadReport = report;
        return report;
    }

    /// <summary>timm's <c>adapt_input_conv</c> for a 3-channel weight O×3×kh×kw: 1 channel = sum over RGB, N channels = RGB tiled to N and scaled by 3/N.</summary>
    internal static Tensor AdaptInputConv(Tensor weight, int inChans)
    {
        using var scope = NewDisposeScope();
        var w = weight.to(ScalarType.Float32);
        Tensor result;
        if (inChans == 1) result = w.sum(1, keepdim: true);
        else
        {
            int repeat = (inChans + 2) / 3;
            result = w.repeat(1, repeat, 1, 1).narrow(1, 0, inChans) * (3.0 / inChans);
        }
        return result.to(weight.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Writes this model's state dict to <paramref name="path"/>; the format follows the extension (.safetensors, .pth/.pt/.bin, .dat).</summary>
    public void Save(string path) => StateDictFile.Write(path, state_dict());
}
