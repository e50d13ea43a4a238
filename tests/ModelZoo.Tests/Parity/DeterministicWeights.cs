using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Parity;

/// <summary>
/// C# twin of scripts/fixtures/deterministic.py: fills a model's floating-point state from a closed formula so that
/// parity fixtures hold only expected outputs. Keep both in step.
/// </summary>
public static class DeterministicWeights
{
    /// <summary>Fills every floating-point parameter and buffer of <paramref name="module"/>; returns the sorted key list.</summary>
    public static IReadOnlyList<string> Fill(nn.Module module)
    {
        var state = module.state_dict();
        var keys = state.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        using var noGrad = no_grad();
        for (int k = 0; k < keys.Count; k++)
        {
            string name = keys[k];
            var t = state[name];
            if (!t.is_floating_point()) continue;
            long n = t.numel();
            var v = new double[n];
            for (long j = 0; j < n; j++) v[j] = Math.Sin(0.7 * j + 1.3 * k);
            if (name.EndsWith("running_var", StringComparison.Ordinal)) Map(v, x => 1 + 0.5 * Math.Abs(x));
            else if (name.EndsWith("running_mean", StringComparison.Ordinal)) Map(v, x => 0.1 * x);
            else if (t.dim() == 1 && name.EndsWith("weight", StringComparison.Ordinal)) Map(v, x => 1 + 0.1 * x);
            else if (t.dim() == 1 && name.EndsWith("bias", StringComparison.Ordinal)) Map(v, x => 0.1 * x);
            else if (t.dim() >= 1)
            {
                double scale = 1 / Math.Sqrt((double)n / t.shape[0]);
                Map(v, x => x * scale);
            }
            using var src = tensor(v, dtype: ScalarType.Float64).reshape(t.shape);
            t.copy_(src.to(t.dtype));
        }
        return keys;
    }

    /// <summary>Input v[j] = sin(0.37 j), the same as the Python side.</summary>
    public static Tensor Input(params long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var v = new double[n];
        for (long j = 0; j < n; j++) v[j] = Math.Sin(0.37 * j);
        using var t = tensor(v, dtype: ScalarType.Float64);
        return t.reshape(shape).to(ScalarType.Float32);
    }

    private static void Map(double[] v, Func<double, double> f)
    {
        for (int i = 0; i < v.Length; i++) v[i] = f(v[i]);
    }
}
