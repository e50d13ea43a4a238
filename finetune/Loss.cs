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

    /// <summary>Cross-entropy with optional label smoothing, for class-index or soft targets.</summary>
    /// <param name="labelSmoothing">ε in [0, 1): the target becomes (1-ε)·target + ε/K.</param>
    public static Loss CrossEntropy(double labelSmoothing = 0.0) => new CrossEntropyLoss(labelSmoothing);

    /// <summary>Turns class indices or soft targets into hard class indices (argmax of soft targets), int64 N.</summary>
    public static Tensor HardTargets(Tensor target) =>
        target.dim() == 2 && target.dtype.IsFloatingPoint() ? target.argmax(1) : target.to(ScalarType.Int64);

    private sealed class CrossEntropyLoss : Loss
    {
        private readonly double _eps;

        public CrossEntropyLoss(double eps)
        {
            if (eps is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(eps), eps, "Label smoothing must be in [0, 1).");
            _eps = eps;
        }

        public override string Name => "cross_entropy";

        public override Tensor PerItem(Tensor logits, Tensor target)
        {
            if (logits.dim() != 2)
                throw new ArgumentException($"Cross-entropy expects logits of shape N×K, got [{string.Join(", ", logits.shape)}].", nameof(logits));
            if (target.dim() == 1)
                return nn.functional.cross_entropy(logits, target.to(ScalarType.Int64), reduction: nn.Reduction.None, label_smoothing: _eps);
            if (target.dim() != 2 || target.shape[1] != logits.shape[1])
                throw new ArgumentException($"Soft targets must be N×K matching the logits [{string.Join(", ", logits.shape)}], got [{string.Join(", ", target.shape)}].", nameof(target));
            var t = target.to(logits.dtype);
            if (_eps > 0) t = t * (1 - _eps) + _eps / logits.shape[1];
            return -(t * nn.functional.log_softmax(logits, 1)).sum(1);
        }
    }
}

internal static class DTypeExtensions
{
    public static bool IsFloatingPoint(this ScalarType t) =>
        t is ScalarType.Float32 or ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16;
}
