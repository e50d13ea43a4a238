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
internal static class VisionParity
{
    /// <summary>Largest allowed absolute difference of logits (the fixtures' logits are O(1), see docs/vision-catalog.md).</summary>
    public const double Tolerance = 1e-4;

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

        net.eval();
        using (no_grad()) Compare(fx.GetProperty("eval"), net.call(x), stride, "eval logits");

        if (fx.TryGetProperty("resized_input", out var resized))
        {
            var rs = resized.EnumerateArray().Select(e => e.GetInt64()).ToArray();
            using (no_grad()) Compare(fx.GetProperty("resized_eval"), net.call(DeterministicWeights.Input(rs)), stride, $"eval logits at {string.Join("x", rs)}");
        }

        // The fixture says whether BatchNorm stayed in eval mode for the step (see make_vision_parity.py: chosen where
        // float32 and float64 torchvision disagree in train mode, i.e. where the check would only measure rounding).
        net.train();
        if (fx.GetProperty("bn_mode").GetString() == "eval")
            foreach (var (_, m) in net.named_modules())
                if (m is TorchSharp.Modules.BatchNorm2d or TorchSharp.Modules.BatchNorm1d) m.eval();
        var logits = net.call(x);
        var target = arange(shape[0], ScalarType.Int64) % 1000;
        var loss = nn.functional.cross_entropy(logits, target);
        loss.backward();
        double expectedLoss = fx.GetProperty("train_loss").GetDouble();
        Assert.True(Math.Abs(loss.item<float>() - expectedLoss) <= Tolerance * Math.Max(1, Math.Abs(expectedLoss)),
            $"train loss {loss.item<float>()} vs torchvision {expectedLoss}");
        double lr = fx.GetProperty("lr").GetDouble();
        using (no_grad())
        {
            foreach (var p in net.parameters())
                if (p.grad is not null) p.sub_(p.grad * lr);
        }
        net.eval();
        using (no_grad()) Compare(fx.GetProperty("after_step_eval"), net.call(x), stride, "eval logits after one SGD step");
    }

    private static void Compare(JsonElement expected, Tensor actual, int stride, string what)
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
        Assert.True(worst <= Tolerance, $"{what}: max |Δ| = {worst:g3} > {Tolerance:g1}");
    }
}
