using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo;

/// <summary>A named slice of a model's parameters, for discriminative learning rates and layer-wise decay.</summary>
/// <param name="Name">Group name, e.g. <c>stem</c>, <c>layer3</c>, <c>head</c>.</param>
/// <param name="Depth">0 for the input end; increases towards the head.</param>
/// <param name="Parameters">Parameters in the group, with their full dotted names.</param>
public sealed record ParameterGroup(string Name, int Depth, IReadOnlyList<(string Name, Parameter Parameter)> Parameters);

/// <summary>What to do with BatchNorm layers whose parameters are frozen.</summary>
public enum BatchNormPolicy
{
    /// <summary>Frozen BatchNorm layers stay in eval mode: running statistics are not updated (fastai's and timm's default for frozen backbones).</summary>
    FreezeStats,
    /// <summary>Frozen BatchNorm layers still follow train/eval mode and update running statistics.</summary>
    TrainStats,
}

/// <summary>
/// The contract every zoo model fulfils: features, head, head replacement, parameter groups, surgery by dotted path,
/// freezing and a summary with shapes. A model is a tree of <see cref="ZooModule"/>s whose children run by name, so
/// edits take effect.
/// </summary>
public abstract partial class ZooModel : ZooModule
{
    private readonly HashSet<nn.Module> _frozenNorms = [];
    private BatchNormPolicy _batchNormPolicy = BatchNormPolicy.FreezeStats;

    /// <summary>Creates a model.</summary>
    protected ZooModel(string name, int numClasses, int inChans) : base(name)
    {
        NumClasses = numClasses;
        InChans = inChans;
    }

    /// <summary>The catalog entry this model was built from, when built through <see cref="Zoo"/>.</summary>
    public ModelEntry? Entry { get; internal set; }

    /// <summary>The weight tag whose weights were loaded, if any.</summary>
    public WeightTag? LoadedWeights { get; internal set; }

    /// <summary>Input preparation for this model: from the loaded weights, else the entry's default tag, else ImageNet's.</summary>
    public Preprocessing Preprocessing => LoadedWeights?.Preprocessing ?? Entry?.Default?.Preprocessing ?? Preprocessing.ImageNet;

    /// <summary>Width of the pooled features the head consumes.</summary>
    public abstract int NumFeatures { get; }

    /// <summary>Number of classes the head produces (0 for an identity head).</summary>
    public int NumClasses { get; protected set; }

    /// <summary>Number of input channels the stem takes.</summary>
    public int InChans { get; protected set; }

    /// <summary>Dotted path of the classifier head, e.g. <c>fc</c> or <c>classifier.1</c>.</summary>
    public abstract string HeadPath { get; }

    /// <summary>Dotted path of the first convolution (adapted for <c>in_chans</c> other than 3 when weights load), or null.</summary>
    public virtual string? StemConvPath => null;

    /// <summary>Input shape used for dry-run shape checks after surgery (batch of 1, small spatial size).</summary>
    public virtual long[] DryRunInputShape => [1, InChans, 64, 64];

    /// <summary>Backbone output before pooling (e.g. B×C×H×W for CNNs, B×T×C for transformers).</summary>
    public abstract Tensor ForwardFeatures(Tensor x);

    /// <summary>Pools <paramref name="features"/> and, unless <paramref name="preLogits"/>, applies the classifier.</summary>
    public abstract Tensor ForwardHead(Tensor features, bool preLogits = false);

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => ForwardHead(ForwardFeatures(x));

    /// <summary>Builds a fresh classifier for <paramref name="numClasses"/> classes (0 = identity).</summary>
    protected abstract nn.Module<Tensor, Tensor> CreateHead(int numClasses);

    /// <summary>Replaces the classifier with a freshly initialised one for <paramref name="numClasses"/> classes; 0 gives an identity head so the model returns pooled features of width <see cref="NumFeatures"/>.</summary>
    public ZooModel ReplaceHead(int numClasses)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numClasses);
        var device = parameters().FirstOrDefault()?.device ?? CPU;
        var head = CreateHead(numClasses);
        // After surgery that changes the backbone's width (e.g. a removed last stage), size a linear head to what the
        // backbone now produces rather than to the architecture's default NumFeatures.
        if (head is TorchSharp.Modules.Linear linear && PreLogitsWidth() is int width && width != linear.in_features)
        {
            head.Dispose();
            head = nn.Linear(width, numClasses);
        }
        head.to(device);
        ReplaceChecked(HeadPath, head, check: false);
        NumClasses = numClasses;
        return this;
    }

    /// <summary>
    /// Width of the pooled features the head receives now, measured with a dry run (it differs from
    /// <see cref="NumFeatures"/> after surgery that changes the backbone); null when the dry run fails.
    /// </summary>
    public int? PreLogitsWidth()
    {
        try
        {
            return InEvalWithoutGrad(device =>
            {
                var pooled = ForwardHead(ForwardFeatures(DryRunInput(device)), preLogits: true);
                return pooled.dim() == 2 ? (int?)pooled.shape[1] : null;
            });
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return null;
        }
    }

    /// <summary>Runs <paramref name="body"/> in eval mode, without gradients, inside a dispose scope, on the model's device; restores the mode after.</summary>
    internal T InEvalWithoutGrad<T>(Func<Device, T> body)
    {
        bool wasTraining = training;
        var device = parameters().FirstOrDefault()?.device ?? CPU;
        try
        {
            eval();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            return body(device);
        }
        finally
        {
            if (wasTraining) train();
        }
    }

    /// <summary>Parameter groups from the input end to the head. The default groups by top-level child; families override it to group stages.</summary>
    public virtual IReadOnlyList<ParameterGroup> ParameterGroups()
    {
        string headRoot = HeadPath.Split('.')[0];
        var groups = new List<ParameterGroup>();
        var names = ChildNames.Where(n => n != headRoot).Append(headRoot).Where(HasChild);
        int depth = 0;
        foreach (var child in names)
        {
            var ps = GetChild(child).named_parameters().Select(p => ($"{child}.{p.name}", p.parameter)).ToList();
            if (ps.Count > 0) groups.Add(new ParameterGroup(child == headRoot ? "head" : child, depth++, ps));
        }
        return groups;
    }

    // ----- paths -----

    /// <summary>The module at a dotted path, e.g. <c>layer4.2.conv1</c>; "" is the model itself.</summary>
    /// <exception cref="KeyNotFoundException">The path does not exist; the message names the first missing part and what exists there.</exception>
    public nn.Module Get(string path)
    {
        nn.Module current = this;
        if (path.Length == 0) return current;
        string walked = "";
        foreach (var part in path.Split('.'))
        {
            var next = current.named_children().FirstOrDefault(c => c.name == part).module;
            if (next is null)
                throw new KeyNotFoundException($"No module at '{path}': '{(walked.Length == 0 ? "<model>" : walked)}' has no child '{part}'. " +
                    $"Children there: {string.Join(", ", current.named_children().Select(c => c.name))}.");
            walked = walked.Length == 0 ? part : walked + "." + part;
            current = next;
        }
        return current;
    }

    private (ZooModule Parent, string Name) ParentOf(string path)
    {
        if (string.IsNullOrEmpty(path)) throw new ArgumentException("A path must name a module inside the model, e.g. 'layer4.2.relu'.", nameof(path));
        int dot = path.LastIndexOf('.');
        string parentPath = dot < 0 ? "" : path[..dot];
        string name = path[(dot + 1)..];
        var parent = Get(parentPath);
        Get(path);
        return parent is ZooModule z ? (z, name)
            : throw new InvalidOperationException($"'{parentPath}' is a {parent.GetType().Name}, a TorchSharp built-in whose children cannot be edited; edit '{parentPath}' itself instead.");
    }

    // ----- surgery -----

    /// <summary>Replaces the module at <paramref name="path"/>. The edit is checked with a dry run and undone, with an error naming the path and shapes, if it breaks the model.</summary>
    public ZooModel Replace(string path, nn.Module<Tensor, Tensor> module) => ReplaceChecked(path, module, check: true);

    private ZooModel ReplaceChecked(string path, nn.Module<Tensor, Tensor> module, bool check)
    {
        var (parent, name) = ParentOf(path);
        var old = parent.GetChild(name);
        MoveLike(module);
        Edit($"Replacing '{path}'", path, old, module, () => parent.SetChild(name, module), () => parent.SetChild(name, old), check);
        return this;
    }

    /// <summary>Inserts <paramref name="module"/>, named <paramref name="name"/>, so it runs right after the module at <paramref name="path"/>.</summary>
    public ZooModel InsertAfter(string path, string name, nn.Module<Tensor, Tensor> module) => Insert(path, name, module, after: true);

    /// <summary>Inserts <paramref name="module"/>, named <paramref name="name"/>, so it runs right before the module at <paramref name="path"/>.</summary>
    public ZooModel InsertBefore(string path, string name, nn.Module<Tensor, Tensor> module) => Insert(path, name, module, after: false);

    private ZooModel Insert(string path, string name, nn.Module<Tensor, Tensor> module, bool after)
    {
        if (name.Contains('.') || name.Length == 0) throw new ArgumentException($"A child name must be non-empty and contain no '.', got '{name}'.", nameof(name));
        var (parent, anchor) = ParentOf(path);
        MoveLike(module);
        string newPath = path[..(path.Length - anchor.Length)] + name;
        Edit($"Inserting '{newPath}' {(after ? "after" : "before")} '{path}'", newPath, null, module,
            () => parent.InsertChild(anchor, name, module, after), () => parent.RemoveChild(name), check: true);
        return this;
    }

    /// <summary>Removes the module at <paramref name="path"/>: allowed inside sequences (e.g. a residual block of a stage) and for modules inserted by surgery.</summary>
    public ZooModel Remove(string path)
    {
        var (parent, name) = ParentOf(path);
        var old = parent.GetChild(name);
        bool inserted = parent.IsInserted(name);
        if (!parent.IsSequence && !inserted)
            throw new InvalidOperationException($"Cannot remove '{path}': it is wired into the forward pass of its parent. Use Replace(\"{path}\", nn.Identity()) instead.");
        var snapshot = parent.Snapshot();
        Edit($"Removing '{path}'", path, old, null, () => parent.RemoveChild(name), () => parent.Restore(snapshot), check: true);
        return this;
    }

    private void MoveLike(nn.Module module)
    {
        var p = parameters().FirstOrDefault();
        if (p is not null) module.to(p.device);
    }

    private void Edit(string what, string path, nn.Module? oldModule, nn.Module? newModule, Action apply, Action revert, bool check)
    {
        if (_transaction is { } pending)
        {
            apply();
            pending.Add(revert);
            return;
        }
        string? oldShapes = check && oldModule is not null ? ProbeShapes(oldModule) : null;
        apply();
        if (!check) return;
        try
        {
            DryRun();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            string? newShapes = newModule is not null ? SafeProbe(newModule) : null;
            revert();
            throw new SurgeryException(
                $"{what} breaks the model, so the edit was undone. " +
                (oldShapes is not null ? $"Before: '{path}' mapped {oldShapes}. " : "") +
                (newShapes is not null ? $"After: it maps {newShapes}. " : "") +
                $"The dry run with input [{string.Join(", ", DryRunInputShape)}] failed: {FirstLine(e.Message)}", e);
        }
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    private string? SafeProbe(nn.Module module)
    {
        try { return ProbeShapes(module); } catch (Exception e) when (e is not OutOfMemoryException) { return null; }
    }

    /// <summary>Runs a dry forward and returns "[in] → [out]" of <paramref name="module"/>, or null if it did not run.</summary>
    private string? ProbeShapes(nn.Module module)
    {
        if (module is not nn.Module<Tensor, Tensor> m) return null;
        string? seen = null;
        var hook = m.register_forward_hook((_, input, output) =>
        {
            seen ??= $"[{string.Join(", ", input.shape)}] → [{string.Join(", ", output.shape)}]";
            return output;
        });
        try
        {
            try { DryRun(); } catch (Exception e) when (e is not OutOfMemoryException) { }
        }
        finally
        {
            hook.remove();
        }
        return seen;
    }

    /// <summary>Runs the model once on <see cref="DryRunInputShape"/> in eval mode without gradients, restoring the mode after.</summary>
    public void DryRun() => InEvalWithoutGrad(device => forward(DryRunInput(device)).shape);

    /// <summary>A dry-run input on <paramref name="device"/>: random pixels for vision models; families with other inputs override it.</summary>
    protected virtual Tensor DryRunInput(Device device) => InputOfShape(DryRunInputShape, device);

    /// <summary>A valid input of <paramref name="shape"/> (random pixels for vision models; token ids for text models).</summary>
    internal virtual Tensor InputOfShape(long[] shape, Device device) => rand(shape, device: device);

    /// <summary>A valid random input of <see cref="DryRunInputShape"/> (pixels for vision, token ids for text), on the model's device; used by the catalog-wide tests.</summary>
    public Tensor SampleInput() => DryRunInput(parameters().FirstOrDefault()?.device ?? CPU);

    // ----- freezing -----

    /// <summary>Freezes parameters whose path matches any of <paramref name="paths"/> (globs with <c>*</c> and <c>?</c>; a module path covers everything below it); all when none is given.</summary>
    /// <param name="paths">Module or parameter paths or globs; empty freezes the whole model.</param>
    /// <param name="except">Paths or globs left trainable, e.g. <c>fc</c>.</param>
    /// <param name="batchNorm">Whether frozen BatchNorm layers keep their running statistics fixed.</param>
    public ZooModel Freeze(string[]? paths = null, string[]? except = null, BatchNormPolicy batchNorm = BatchNormPolicy.FreezeStats)
    {
        SetTrainable(paths, except, trainable: false, batchNorm);
        return this;
    }

    /// <summary>Freezes everything except the paths in <paramref name="except"/> (e.g. <c>Freeze(except: "fc")</c>).</summary>
    public ZooModel Freeze(string except, BatchNormPolicy batchNorm = BatchNormPolicy.FreezeStats) => Freeze(null, [except], batchNorm);

    /// <summary>Makes parameters matching <paramref name="paths"/> trainable again (all when none is given).</summary>
    public ZooModel Unfreeze(params string[] paths)
    {
        SetTrainable(paths.Length == 0 ? null : paths, null, trainable: true, BatchNormPolicy.TrainStats);
        return this;
    }

    /// <summary>Freezes everything but the classifier head.</summary>
    public ZooModel FreezeBackbone(BatchNormPolicy batchNorm = BatchNormPolicy.FreezeStats) => Freeze(null, [HeadPath], batchNorm);

    private void SetTrainable(string[]? paths, string[]? except, bool trainable, BatchNormPolicy policy)
    {
        foreach (var (name, p) in named_parameters())
        {
            bool selected = paths is null || paths.Any(g => PathMatch.Covers(g, name));
            bool excluded = except is not null && except.Any(g => PathMatch.Covers(g, name));
            if (selected && !excluded) p.requires_grad = trainable;
        }
        if (!trainable) _batchNormPolicy = policy;
        _frozenNorms.Clear();
        if (_batchNormPolicy == BatchNormPolicy.FreezeStats)
        {
            foreach (var (_, m) in named_modules())
            {
                if (m is not (BatchNorm1d or BatchNorm2d or BatchNorm3d)) continue;
                var ps = m.parameters().ToList();
                if (ps.Count > 0 && ps.All(p => !p.requires_grad)) _frozenNorms.Add(m);
            }
        }
        if (training) train();
    }

    /// <summary>Sets train/eval mode; BatchNorm layers frozen with <see cref="BatchNormPolicy.FreezeStats"/> stay in eval mode.</summary>
    public override void train(bool on = true)
    {
        base.train(on);
        if (on) foreach (var m in _frozenNorms) m.eval();
    }

    /// <summary>Number of parameters (all, or only trainable ones).</summary>
    public long CountParameters(bool trainableOnly = false) =>
        parameters().Where(p => !trainableOnly || p.requires_grad).Sum(p => p.numel());

    // ----- summary -----

    /// <summary>A table of every module: path, type, output shape for <paramref name="inputShape"/>, parameter count and trainable count.</summary>
    public string Summary(long[]? inputShape = null, int maxDepth = int.MaxValue) => ModelSummary.Build(this, inputShape ?? DryRunInputShape, maxDepth);
}

/// <summary>An edit made by surgery would break the model; the edit has been undone.</summary>
public sealed class SurgeryException(string message, Exception inner) : Exception(message, inner);

/// <summary>Matching dotted paths against globs: <c>*</c> matches within and across dots, <c>?</c> one character; a pattern also covers everything below the path it names.</summary>
public static class PathMatch
{
    /// <summary>True when <paramref name="pattern"/> names <paramref name="path"/> or one of its ancestors.</summary>
    public static bool Covers(string pattern, string path)
    {
        if (Glob(pattern, path)) return true;
        for (int i = path.IndexOf('.'); i >= 0; i = path.IndexOf('.', i + 1))
            if (Glob(pattern, path[..i])) return true;
        return false;
    }

    /// <summary>Whole-string glob match.</summary>
    public static bool Glob(string pattern, string text)
    {
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == text[t])) { p++; t++; }
            else if (p < pattern.Length && pattern[p] == '*') { star = p++; mark = t; }
            else if (star >= 0) { p = star + 1; t = ++mark; }
            else return false;
        }
        while (p < pattern.Length && pattern[p] == '*') p++;
        return p == pattern.Length;
    }
}
