using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Data;

/// <summary>
/// Batch-level Mixup and CutMix (as torchvision.transforms.v2): each item is mixed with its neighbour in the batch
/// (the batch rolled by one) with a weight λ ~ Beta(α, α); targets become N×K soft labels.
/// </summary>
/// <param name="NumClasses">Number of classes (width of the soft targets).</param>
/// <param name="MixupAlpha">Mixup α (0 = off).</param>
/// <param name="CutMixAlpha">CutMix α (0 = off).</param>
/// <param name="SwitchProbability">When both are on: probability of CutMix for a batch.</param>
/// <param name="LabelSmoothing">Label smoothing applied to the one-hot targets before mixing.</param>
public sealed record MixupCutMix(int NumClasses, double MixupAlpha = 0.2, double CutMixAlpha = 1.0, double SwitchProbability = 0.5, double LabelSmoothing = 0)
    : IBatchTransform
{
    /// <inheritdoc />
    public Batch Apply(Batch batch, Random rng)
    {
        var useCut = CutMixAlpha > 0 && (MixupAlpha <= 0 || rng.NextDouble() < SwitchProbability);
        var alpha = useCut ? CutMixAlpha : MixupAlpha;
        if (alpha <= 0 || batch.Count < 2) return batch;
        var lam = SampleBeta(rng, alpha);
        using var scope = NewDisposeScope();
        var x = batch.Input;
        var y = OneHot(batch.Target);
        var xr = x.roll(1, 0);
        var yr = y.roll(1, 0);
        Tensor mixed;
        if (!useCut)
        {
            using var own = lam.ToScalar();
            using var other = (1 - lam).ToScalar();
            mixed = x.mul(own).add_(xr.mul(other));
        }
        else
        {
            int h = (int)x.shape[2], w = (int)x.shape[3];
            var cx = rng.Next(w);
            var cy = rng.Next(h);
            var r = Math.Sqrt(1 - lam);
            var rw = (int)(w * r / 2);
            var rh = (int)(h * r / 2);
            int x1 = Math.Clamp(cx - rw, 0, w), x2 = Math.Clamp(cx + rw, 0, w), y1 = Math.Clamp(cy - rh, 0, h), y2 = Math.Clamp(cy + rh, 0, h);
            mixed = x.clone();
            if (x2 > x1 && y2 > y1)
            {
                var region = mixed[.., .., y1..y2, x1..x2];
                region.copy_(xr[.., .., y1..y2, x1..x2]);
            }
            lam = 1 - (double)(x2 - x1) * (y2 - y1) / (w * h);
        }
        using var ownTarget = lam.ToScalar();
        using var otherTarget = (1 - lam).ToScalar();
        var target = y.mul(ownTarget).add_(yr.mul(otherTarget));
        return new Batch(mixed.MoveToOuterDisposeScope(), target.MoveToOuterDisposeScope(), batch.Indices) { Mask = batch.Mask };
    }

    private Tensor OneHot(Tensor target)
    {
        if (target.dtype != ScalarType.Int64) return target.to_type(ScalarType.Float32);
        var y = nn.functional.one_hot(target, NumClasses).to_type(ScalarType.Float32);
        if (LabelSmoothing > 0)
        {
            using var keep = (1 - LabelSmoothing).ToScalar();
            using var spread = (LabelSmoothing / NumClasses).ToScalar();
            y = y.mul(keep).add_(spread);
        }
        return y;
    }

    /// <summary>Beta(α, α) from two Gamma(α) draws (Marsaglia–Tsang), using <paramref name="rng"/> only.</summary>
    internal static double SampleBeta(Random rng, double alpha)
    {
        var a = SampleGamma(rng, alpha);
        var b = SampleGamma(rng, alpha);
        return a + b == 0 ? 0.5 : a / (a + b);
    }

    private static double SampleGamma(Random rng, double k)
    {
        if (k < 1) return SampleGamma(rng, k + 1) * Math.Pow(rng.NextDouble(), 1 / k);
        var d = k - 1.0 / 3;
        var c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                var u1 = 1 - rng.NextDouble();
                var u2 = rng.NextDouble();
                x = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                v = 1 + c * x;
            } while (v <= 0);
            v = v * v * v;
            var u = rng.NextDouble();
            if (u < 1 - 0.0331 * x * x * x * x || Math.Log(u) < 0.5 * x * x + d * (1 - v + Math.Log(v))) return d * v;
        }
    }
}
