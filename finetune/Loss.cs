using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

/// <summary>
/// A training loss: maps logits (N×K) and targets to a per-item loss (N). Targets are class indices (int64, N) or soft
/// targets (float, N×K, e.g. from Mixup/CutMix); every loss here accepts both.
/// </summary>
public abstract class Loss
{
    /// <summary>Short name used in logs, e.g. <c>cross_entropy</c>.</summary>
    public abstract string Name { get; }

    /// <summary>Loss of every item (N), not reduced.</summary>
    public abstract Tensor PerItem(Tensor logits, Tensor target);

    /// <summary>Mean loss over the batch.</summary>
    public Tensor Mean(Tensor logits, Tensor target) => PerItem(logits, target).mean();

    /// <summary>Cross-entropy with optional label smoothing and class weights, for class-index or soft targets.</summary>
    /// <param name="labelSmoothing">ε in [0, 1): the target becomes (1-ε)·target + ε/K.</param>
    /// <param name="classWeights">
    /// One weight per class (K), as PyTorch's <c>weight=</c>: an item's loss is −Σₖ wₖ·tₖ·log pₖ over its (smoothed)
    /// target t. The batch loss is the plain mean of those, so weights that average 1 over the training items
    /// (<see cref="BalancedClassWeights"/>) keep the loss's scale. Null: every class weighs 1.
    /// </param>
    public static Loss CrossEntropy(double labelSmoothing = 0.0, IReadOnlyList<float>? classWeights = null) => new CrossEntropyLoss(labelSmoothing, classWeights);

    /// <summary>
    /// scikit-learn's <c>class_weight="balanced"</c>: wₖ = N / (K·nₖ) for the <paramref name="counts"/> nₖ of the K
    /// classes among N training items, so every class carries the same total weight and the mean weight per item is 1.
    /// A class without training items gets weight 0 (it has nothing to weigh).
    /// </summary>
    public static float[] BalancedClassWeights(IReadOnlyList<long> counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        long n = counts.Sum();
        if (n <= 0) throw new ArgumentException("Class weights need at least one training item.", nameof(counts));
        return counts.Select(c => c > 0 ? (float)(n / (double)(counts.Count * c)) : 0f).ToArray();
    }

    /// <summary>Turns class indices or soft targets into hard class indices (argmax of soft targets), int64 N.</summary>
    public static Tensor HardTargets(Tensor target) =>
        target.dim() == 2 && target.dtype.IsFloatingPoint() ? target.argmax(1) : target.to(ScalarType.Int64);

    private sealed class CrossEntropyLoss : Loss
    {
        private readonly double _eps;
        private readonly float[]? _weights;
        private Tensor? _weightTensor;

        public CrossEntropyLoss(double eps, IReadOnlyList<float>? weights)
        {
            if (eps is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(eps), eps, "Label smoothing must be in [0, 1).");
            if (weights is not null && weights.Any(w => !float.IsFinite(w) || w < 0))
                throw new ArgumentOutOfRangeException(nameof(weights), "Class weights must be finite and non-negative.");
            _eps = eps;
            _weights = weights?.ToArray();
        }

        public override string Name => _weights is null ? "cross_entropy" : "weighted_cross_entropy";

        /// <summary>The class weights on the logits' device and dtype (kept between batches; null without weights).</summary>
        private Tensor? Weights(Tensor logits)
        {
            if (_weights is null) return null;
            if (_weights.Length != logits.shape[1])
                throw new ArgumentException($"The loss has {_weights.Length} class weights but the logits have {logits.shape[1]} classes.", nameof(logits));
            if (_weightTensor is null || _weightTensor.device != logits.device || _weightTensor.dtype != logits.dtype)
            {
                _weightTensor?.Dispose();
                _weightTensor = tensor(_weights).to(logits.dtype).to(logits.device).DetachFromDisposeScope();
            }
            return _weightTensor;
        }

        public override Tensor PerItem(Tensor logits, Tensor target)
        {
            if (logits.dim() != 2)
                throw new ArgumentException($"Cross-entropy expects logits of shape N×K, got [{string.Join(", ", logits.shape)}].", nameof(logits));
            var weight = Weights(logits);
            if (target.dim() == 1)
                return nn.functional.cross_entropy(logits, target.to(ScalarType.Int64), weight: weight, reduction: nn.Reduction.None, label_smoothing: _eps);
            if (target.dim() != 2 || target.shape[1] != logits.shape[1])
                throw new ArgumentException($"Soft targets must be N×K matching the logits [{string.Join(", ", logits.shape)}], got [{string.Join(", ", target.shape)}].", nameof(target));
            var t = target.to(logits.dtype);
            if (_eps > 0) t = t * (1 - _eps) + _eps / logits.shape[1];
            if (weight is not null) t = t * weight;
            return -(t * nn.functional.log_softmax(logits, 1)).sum(1);
        }
    }
}

internal static class DTypeExtensions
{
    public static bool IsFloatingPoint(this ScalarType t) =>
        t is ScalarType.Float32 or ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16;
}
