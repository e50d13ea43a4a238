using System.Diagnostics;
using ModelZoo.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Vision;

/// <summary>
/// Runs the frozen first stages of a model (e.g. ResNet's stem, layer1 and layer2) once over a dataset and keeps their
/// outputs in memory (fp16), then detaches those stages from the model with one <see cref="ZooModel.EditTogether"/> so the
/// model trains from the cached outputs — the "cached-feature warm start" that makes partial fine-tuning cheap on a CPU.
/// <see cref="Reattach"/> puts the stages back, giving the full model again for evaluation, prediction and export.
/// </summary>
/// <remarks>Works for models whose top-level children run in registration order in <c>ForwardFeatures</c> (the ResNet family).</remarks>
public sealed class PrefixCache : IDisposable
{
    private readonly ZooModel _model;
    private readonly List<(string Name, nn.Module<Tensor, Tensor> Module)> _prefix;
    private bool _detached;

    private PrefixCache(ZooModel model, List<(string, nn.Module<Tensor, Tensor>)> prefix, long[] featureShape)
    {
        _model = model;
        _prefix = prefix;
        FeatureShape = featureShape;
    }

    /// <summary>Shape of one cached item (C×H×W).</summary>
    public long[] FeatureShape { get; }

    /// <summary>Names of the top-level children that are cached (in order).</summary>
    public IReadOnlyList<string> Stages => _prefix.Select(p => p.Name).ToList();

    /// <summary>Plans a cache of every top-level child of <paramref name="model"/> up to and including <paramref name="lastStage"/>.</summary>
    /// <param name="model">The model (its prefix stages are frozen while cached).</param>
    /// <param name="lastStage">Last cached child, e.g. <c>layer2</c>.</param>
    /// <param name="inputShape">One input item's shape (C×H×W), to compute the cached shape.</param>
    public static PrefixCache Plan(ZooModel model, string lastStage, long[] inputShape)
    {
        var names = model.ChildNames.ToList();
        int last = names.IndexOf(lastStage);
        if (last < 0) throw new ArgumentException($"'{lastStage}' is not a top-level child of {model.Entry?.Name ?? model.GetType().Name}; children: {string.Join(", ", names)}.", nameof(lastStage));
        var prefix = names.Take(last + 1).Select(n => (n, model.GetChild(n) as nn.Module<Tensor, Tensor>
            ?? throw new InvalidOperationException($"Child '{n}' does not map a tensor to a tensor."))).ToList();
        var plan = new PrefixCache(model, prefix, []);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        bool wasTraining = model.training;
        model.eval();
        var device = model.parameters().First().device;
        var y = plan.RunPrefix(zeros([1, .. inputShape], device: device));
        if (wasTraining) model.train();
        return new PrefixCache(model, prefix, y.shape.Skip(1).ToArray());
    }

    /// <summary>Runs the cached stages on <paramref name="x"/>.</summary>
    public Tensor RunPrefix(Tensor x)
    {
        foreach (var (_, m) in _prefix) x = m.call(x);
        return x;
    }

    /// <summary>Computes the prefix outputs of every batch (eval mode, no gradients) into one fp16 tensor on the CPU, in dataset order.</summary>
    /// <param name="batches">Batches in dataset order (indices are honoured).</param>
    /// <param name="count">Number of items.</param>
    /// <param name="progress">Called with (items done, total) after each batch.</param>
    public (Tensor Features, TimeSpan Elapsed) Compute(IEnumerable<Batch> batches, int count, Action<int, int>? progress = null)
    {
        var sw = Stopwatch.StartNew();
        var device = _model.parameters().First().device;
        var store = empty([count, .. FeatureShape], dtype: ScalarType.Float16);
        bool wasTraining = _model.training;
        _model.eval();
        int done = 0;
        try
        {
            using var noGrad = no_grad();
            foreach (var batch in batches)
            {
                using var scope = NewDisposeScope();
                var y = RunPrefix(batch.Input.to(device)).to(ScalarType.Float16).cpu();
                var idx = tensor(batch.Indices.Select(i => (long)i).ToArray());
                store.index_copy_(0, idx, y);
                done += batch.Count;
                progress?.Invoke(done, count);
            }
        }
        finally
        {
            if (wasTraining) _model.train();
        }
        return (store, sw.Elapsed);
    }

    /// <summary>Replaces the cached stages by identities so the model runs from cached outputs (checked by a dry run on <see cref="FeatureShape"/>).</summary>
    public void Detach()
    {
        if (_detached) return;
        _model.EditTogether(m => { foreach (var (n, _) in _prefix) m.Replace(n, nn.Identity()); }, [1, .. FeatureShape]);
        _detached = true;
    }

    /// <summary>Puts the cached stages back: the model takes images again.</summary>
    public void Reattach()
    {
        if (!_detached) return;
        _model.EditTogether(m => { foreach (var (n, module) in _prefix) m.Replace(n, module); });
        _detached = false;
    }

    /// <inheritdoc />
    public void Dispose() => Reattach();
}
