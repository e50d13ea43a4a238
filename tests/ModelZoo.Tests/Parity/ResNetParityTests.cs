using System.Diagnostics;
using Xunit.Abstractions;
using System.IO.Compression;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Parity;

/// <summary>
/// Every ResNet variant against torchvision 0.14 (fixtures from scripts/fixtures/make_resnet_parity.py): strict key
/// names and shapes, eval logits at 2×3×72×104 within 1e-4 max-abs, train-mode loss (BatchNorm batch statistics), the
/// sum and norm of every parameter's gradient, and eval logits after one SGD step (running-statistics updates). Computed in float64 on both sides.
/// resnet18/34/50 and resnext50 run by default; the larger ones under Category=Heavy.
/// </summary>
public class ResNetParityTests(ITestOutputHelper output)
{
    private static readonly string[] DefaultNames = ["resnet18", "resnet34", "resnet50", "resnext50_32x4d"];
    private static readonly string[] HeavyNames = ["resnet101", "resnet152", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"];
    public static TheoryData<string> Default() => new(DefaultNames);
    public static TheoryData<string> Heavy() => new(HeavyNames);

    [Fact]
    public void EveryResNetEntryHasAFixture()
    {
        var covered = DefaultNames.Concat(HeavyNames).ToHashSet();
        // resnet18-cntk has no torchvision counterpart: its numerics are checked against ONNX Runtime (ResNetCntkOnnxParityTests).
        foreach (var e in global::ModelZoo.Zoo.Catalog.Entries.Where(e => e.Family == "resnet" && e.Name != "resnet18-cntk"))
            Assert.Contains(e.Name, covered);
        foreach (var name in DefaultNames)
            Assert.True(File.Exists(FixturePath(name)), $"missing fixture for {name}; run /usr/bin/python3 scripts/fixtures/make_resnet_parity.py {name}");
    }

    [Theory]
    [MemberData(nameof(Default))]
    public void MatchesTorchvision(string name) => Check(name);

    [Theory]
    [Trait("Category", "Heavy")]
    [MemberData(nameof(Heavy))]
    public void HeavyMatchesTorchvision(string name) => Check(name);

    private static string FixturePath(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "parity", name + ".json.gz");

    private static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();

    private static double MaxAbs(Tensor t, double[] expected)
    {
        var a = t.to(ScalarType.Float64).data<double>().ToArray();
        Assert.Equal(expected.Length, a.Length);
        return a.Zip(expected, (x, y) => Math.Abs(x - y)).Max();
    }

    private void Check(string name)
    {
        var sw = Stopwatch.StartNew();
        Assert.True(File.Exists(FixturePath(name)), $"missing fixture for {name}; run /usr/bin/python3 scripts/fixtures/make_resnet_parity.py {name}");
        JsonDocument fx;
        using (var gz = new GZipStream(File.OpenRead(FixturePath(name)), CompressionMode.Decompress))
            fx = JsonDocument.Parse(gz);
        using var _ = fx;
        var root = fx.RootElement;
        using var scope = NewDisposeScope();
        using var model = global::ModelZoo.Zoo.Create(name);
        model.to(ScalarType.Float64);

        var expectedKeys = root.GetProperty("keys").EnumerateArray().Select(k => $"{k[0].GetString()} [{string.Join(", ", k[1].EnumerateArray().Select(d => d.GetInt64()))}]").ToList();
        var ourKeys = model.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} [{string.Join(", ", kv.Value.shape)}]").ToList();
        Assert.Equal(expectedKeys, ourKeys);

        DeterministicWeights.Fill(model);
        var shape = Doubles(root.GetProperty("input")).Select(d => (long)d).ToArray();
        var x = DeterministicWeights.Input(shape).to(ScalarType.Float64);

        model.eval();
        using (no_grad())
        {
            double d = MaxAbs(model.call(x), Doubles(root.GetProperty("eval_logits")));
            output.WriteLine($"{name}: eval logits max-abs diff {d:g3}");
            Assert.True(d <= 1e-4, $"{name}: eval logits differ by {d:g3} (> 1e-4)");
        }

        model.train();
        var targets = tensor(Doubles(root.GetProperty("targets")).Select(v => (long)v).ToArray());
        var opt = optim.SGD(model.parameters(), root.GetProperty("lr").GetDouble());
        opt.zero_grad();
        var loss = nn.functional.cross_entropy(model.call(x), targets);
        loss.backward();
        var grads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        double worst = 0;
        string worstName = "";
        foreach (var g in root.GetProperty("grad_stats").EnumerateArray())
        {
            string key = g[0].GetString()!;
            Assert.True(grads.ContainsKey(key), $"{name}: no gradient for {key}");
            double sum = grads[key].sum().item<double>(), norm = grads[key].norm().item<double>();
            double rel = Math.Max(Math.Abs(sum - g[1].GetDouble()), Math.Abs(norm - g[2].GetDouble())) / (1 + Math.Abs(g[2].GetDouble()));
            if (rel > worst) (worst, worstName) = (rel, key);
        }
        output.WriteLine($"{name}: gradient sum/norm worst relative diff {worst:g3} ({worstName})");
        Assert.True(worst <= 1e-6, $"{name}: gradient of {worstName} differs by {worst:g3} (relative to its norm)");
        opt.step();
        double lossDiff = Math.Abs(loss.item<double>() - root.GetProperty("train_loss").GetDouble());
        output.WriteLine($"{name}: train loss diff {lossDiff:g3}");
        Assert.True(lossDiff <= 1e-6, $"{name}: train-mode loss differs by {lossDiff:g3}");

        model.eval();
        using (no_grad())
        {
            double d = MaxAbs(model.call(x), Doubles(root.GetProperty("post_step_logits")));
            output.WriteLine($"{name}: post-step eval logits max-abs diff {d:g3}; {sw.Elapsed.TotalSeconds:0.0} s");
            Assert.True(d <= 1e-4, $"{name}: logits after one SGD step differ by {d:g3} (> 1e-4)");
        }
    }
}
