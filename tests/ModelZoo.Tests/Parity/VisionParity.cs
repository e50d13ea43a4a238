using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Parity;

/// <summary>
/// Checks a catalog vision model against a fixture written by scripts/fixtures/make_vision_parity.py (torchvision 0.14):
/// state-dict names and shapes, eval logits at a non-default input size, one train-mode loss and the eval logits
/// after one plain SGD step. Both sides fill weights with the deterministic formula and disable dropout and
/// stochastic depth (p = 0).
/// </summary>
/// <remarks>
/// Where the fixture has float64 results, the numbers are compared in float64 (<see cref="Tolerance64"/>): float64
/// results do not depend on how a CPU's kernels order float32 sums, so the bound holds on any machine. The float32
/// forward (the kernels users run, oneDNN and the zoo's guard included) is then checked against the model's own
/// float64 logits to float32 accuracy (<see cref="Float32Agreement"/>). Fixtures without float64 results (the Heavy
/// variants until they are regenerated) keep the float32 comparison at <see cref="Tolerance"/>. See docs/vision-catalog.md.
/// </remarks>
internal static class VisionParity
{
    /// <summary>Largest allowed absolute difference of float32 logits from a float32 fixture (logits are O(1)).</summary>
    public const double Tolerance = 1e-4;

    /// <summary>Largest allowed difference from the float64 reference, relative to max(1, largest |value|).</summary>
    public const double Tolerance64 = 1e-9;

    /// <summary>Largest allowed difference of our float32 logits from our float64 logits, relative to max(1, largest |logit|).</summary>
    public const double Float32Agreement = 1e-3;

    public static JsonElement Load(string model)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "parity", $"vision_{model}.json");
        Assert.True(File.Exists(path), $"Missing fixture {path}; run /usr/bin/python3 scripts/fixtures/make_vision_parity.py {model}");
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement;
    }

    /// <summary>Runs every parity check of <paramref name="model"/>.</summary>
    public static void Check(string model)
    {
        var fx = Load(model);
        using var scope = NewDisposeScope();
        var net = global::ModelZoo.Zoo.Create(model, new ModelOptions(DropRate: 0, DropPathRate: 0));
        var keys = DeterministicWeights.Fill(net);

        // Strict-name parity: sorted "name:shape" lines hash to the same digest as torchvision's state dict.
        var state = net.state_dict();
        var lines = keys.Select(k => $"{k}:{string.Join("x", state[k].shape)}").ToList();
        if (fx.TryGetProperty("keys", out var expectedKeys))
        {
            var expected = expectedKeys.EnumerateArray().Select(e => e.GetString()!).ToList();
            Assert.Equal(expected.Except(lines).Take(10).ToList(), Array.Empty<string>());
            Assert.Equal(lines.Except(expected).Take(10).ToList(), Array.Empty<string>());
        }
        Assert.Equal(fx.GetProperty("num_keys").GetInt32(), lines.Count);
        Assert.Equal(fx.GetProperty("keys_sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", lines)))));
        Assert.Equal(fx.GetProperty("num_params").GetInt64(), net.CountParameters());

        int stride = fx.GetProperty("stride").GetInt32();
        var shape = fx.GetProperty("input").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var x = DeterministicWeights.Input(shape);
        if (fx.TryGetProperty("eval64", out _))
        {
            CheckInFloat64(fx, net, x, stride);
            return;
        }

        net.eval();
        using (no_grad()) Compare(fx.GetProperty("eval"), net.call(x), stride, "eval logits");

        if (fx.TryGetProperty("resized_input", out var resized))
        {
            var rs = resized.EnumerateArray().Select(e => e.GetInt64()).ToArray();
            using (no_grad()) Compare(fx.GetProperty("resized_eval"), net.call(DeterministicWeights.Input(rs)), stride, $"eval logits at {string.Join("x", rs)}");
        }

        CheckStep(fx, net, x, stride, "", Tolerance, relative: false);
    }

    /// <summary>The float64 checks, then our float32 forward against our float64 forward.</summary>
    private static void CheckInFloat64(JsonElement fx, ZooModel net, Tensor x, int stride)
    {
        net.eval();
        Tensor logits32;
        using (no_grad()) logits32 = net.call(x);
        Assert.True(logits32.isfinite().all().item<bool>(), "float32 eval logits are not finite");

        net.to(ScalarType.Float64);
        var x64 = x.to(ScalarType.Float64);
        Tensor logits64;
        using (no_grad()) logits64 = net.call(x64);
        Compare(fx.GetProperty("eval64"), logits64, stride, "float64 eval logits", Tolerance64, relative: true);
        double scale = Math.Max(1, logits64.abs().max().item<double>());
        double gap = (logits32.to(ScalarType.Float64) - logits64).abs().max().item<double>();
        Assert.True(gap <= Float32Agreement * scale, $"float32 eval logits differ from float64 by {gap:g3} (> {Float32Agreement:g1} × {scale:g3})");

        if (fx.TryGetProperty("resized_input", out var resized))
        {
            var rs = resized.EnumerateArray().Select(e => e.GetInt64()).ToArray();
            using (no_grad()) Compare(fx.GetProperty("resized_eval64"), net.call(DeterministicWeights.Input(rs).to(ScalarType.Float64)), stride, $"float64 eval logits at {string.Join("x", rs)}", Tolerance64, relative: true);
        }

        CheckStep(fx, net, x64, stride, "64", Tolerance64, relative: true);
    }

    /// <summary>
    /// One train-mode loss and plain SGD step, then the eval logits, against the fixture's <c>train_loss</c>, <c>lr</c>
    /// and <c>after_step_eval</c> (with <paramref name="suffix"/>: "" for float32, "64" for float64). The fixture says
    /// whether BatchNorm stayed in eval mode for the step (make_vision_parity.py: chosen where float32 and float64
    /// torchvision disagree in train mode, i.e. where a check would only measure rounding).
    /// </summary>
    private static void CheckStep(JsonElement fx, ZooModel net, Tensor x, int stride, string suffix, double tolerance, bool relative)
    {
        net.train();
        if (fx.GetProperty("bn_mode").GetString() == "eval")
            foreach (var (_, m) in net.named_modules())
                if (m is TorchSharp.Modules.BatchNorm2d or TorchSharp.Modules.BatchNorm1d) m.eval();
        var loss = nn.functional.cross_entropy(net.call(x), arange(x.shape[0], ScalarType.Int64) % 1000);
        loss.backward();
        double actualLoss = loss.to(ScalarType.Float64).item<double>();
        double expectedLoss = fx.GetProperty("train_loss" + suffix).GetDouble();
        Assert.True(Math.Abs(actualLoss - expectedLoss) <= tolerance * Math.Max(1, Math.Abs(expectedLoss)),
            $"train loss{suffix} {actualLoss:R} vs torchvision {expectedLoss:R}");
        double lr = fx.GetProperty("lr" + suffix).GetDouble();
        using (no_grad())
        {
            foreach (var p in net.parameters())
                if (p.grad is not null) p.sub_(p.grad * lr);
        }
        net.eval();
        using (no_grad()) Compare(fx.GetProperty("after_step_eval" + suffix), net.call(x), stride, $"eval logits{suffix} after one SGD step", tolerance, relative);
    }

    private static void Compare(JsonElement expected, Tensor actual, int stride, string what, double tolerance = Tolerance, bool relative = false)
    {
        var rows = expected.EnumerateArray().ToList();
        Assert.Equal(rows.Count, (int)actual.shape[0]);
        double worst = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            var exp = rows[i].EnumerateArray().Select(e => e.GetDouble()).ToArray();
            var act = actual[i].slice(0, 0, actual.shape[1], stride).to(ScalarType.Float64).data<double>().ToArray();
            Assert.Equal(exp.Length, act.Length);
            for (int j = 0; j < exp.Length; j++) worst = Math.Max(worst, Math.Abs(exp[j] - act[j]));
        }
        double bound = tolerance * (relative ? Math.Max(1, rows.Max(r => r.EnumerateArray().Max(e => Math.Abs(e.GetDouble())))) : 1);
        Assert.True(worst <= bound, $"{what}: max |Δ| = {worst:g3} > {bound:g3}");
    }
}
