namespace ModelZoo.FineTune;

/// <summary>Result of <see cref="Learner.FindLr"/>: the curve (for plotting) and suggested rates.</summary>
public sealed record LrFinderResult
{
    /// <summary>Learning rate of each iteration.</summary>
    public required IReadOnlyList<double> Lrs { get; init; }
    /// <summary>Smoothed (β = 0.98, debiased) loss of each iteration.</summary>
    public required IReadOnlyList<double> Losses { get; init; }
    /// <summary>Raw batch loss of each iteration.</summary>
    public required IReadOnlyList<double> RawLosses { get; init; }
    /// <summary>True when the test stopped early because the loss blew up.</summary>
    public bool Diverged { get; init; }
    /// <summary>Rate where the smoothed loss falls fastest with respect to log(lr).</summary>
    public double Steepest { get; init; }
    /// <summary>Rate in the middle of the longest stretch over which the loss keeps falling (fastai's "valley").</summary>
    public double Valley { get; init; }
    /// <summary>Rate where the smoothed loss is lowest.</summary>
    public double Minimum { get; init; }
    /// <summary>The suggested rate (<see cref="Valley"/>).</summary>
    public double Suggested => Valley;

    internal static LrFinderResult From(List<double> lrs, List<double> smooth, List<double> raw, bool diverged)
    {
        // Drop the points after divergence is detected so suggestions come from the useful part of the curve.
        int n = smooth.Count;
        int end = n;
        while (end > 0 && !double.IsFinite(smooth[end - 1])) end--;
        if (diverged && end > 3) end = Math.Max(3, end - 1);
        double steepest = double.NaN, valley = double.NaN, minimum = double.NaN;
        if (end >= 3)
        {
            // Steepest: most negative central difference of loss over log(lr), ends excluded.
            double bestSlope = double.PositiveInfinity;
            for (int i = 1; i < end - 1; i++)
            {
                double slope = (smooth[i + 1] - smooth[i - 1]) / (Math.Log(lrs[i + 1]) - Math.Log(lrs[i - 1]));
                if (slope < bestSlope) { bestSlope = slope; steepest = lrs[i]; }
            }
            int argmin = 0;
            for (int i = 1; i < end; i++) if (smooth[i] < smooth[argmin]) argmin = i;
            minimum = lrs[argmin];
            // Valley: longest decreasing subsequence of the loss (O(n²) DP); pick the middle of its span.
            var len = new int[end];
            var start = new int[end];
            int bestEnd = 0;
            for (int i = 0; i < end; i++)
            {
                len[i] = 1;
                start[i] = i;
                for (int j = 0; j < i; j++)
                    if (smooth[i] < smooth[j] && len[j] + 1 > len[i]) { len[i] = len[j] + 1; start[i] = start[j]; }
                if (len[i] > len[bestEnd]) bestEnd = i;
            }
            valley = lrs[(start[bestEnd] + bestEnd) / 2];
        }
        return new LrFinderResult { Lrs = lrs, Losses = smooth, RawLosses = raw, Diverged = diverged, Steepest = steepest, Valley = valley, Minimum = minimum };
    }
}
