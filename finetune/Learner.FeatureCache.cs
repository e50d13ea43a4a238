using ModelZoo.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

// Head-only training on cached pooled features: the switch and the sources the loop reads through.
public sealed partial class Learner
{
    /// <summary>
    /// Switches the learner to head-only training on <paramref name="train"/> (features from <see cref="FeatureCache.Build"/>)
    /// until the returned handle is disposed. Validation uses <paramref name="valid"/> when given, else the full model on
    /// the validation loader. The backbone must be frozen.
    /// </summary>
    public IDisposable UseFeatureCache(FeatureCache train, FeatureCache? valid = null)
    {
        string head = Model.HeadPath;
        var trainable = Model.named_parameters().Where(p => p.parameter.requires_grad && !PathMatch.Covers(head, p.name)).Select(p => p.name).ToList();
        if (trainable.Count > 0)
            throw new InvalidOperationException($"Cached features are only valid for a frozen backbone, but {trainable.Count} backbone parameter(s) are trainable " +
                $"(e.g. '{trainable[0]}'). Call model.FreezeBackbone() first.");
        _head = Model.Get(head) as nn.Module<Tensor, Tensor>
            ?? throw new InvalidOperationException($"The head at '{head}' does not map a tensor to a tensor.");
        (_cacheTrain, _cacheValid) = (train, valid);
        return new Restore(() => (_head, _cacheTrain, _cacheValid) = (null, null, null));
    }

    private sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    private IEnumerable<Batch> TrainSource(int epoch) => _cacheTrain?.Batches(epoch) ?? _train(epoch);

    private Tensor TrainForward(Tensor x) => _head is not null ? _head.call(x) : Model.call(x);
}
