using System.Globalization;
using System.Text.Json;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Parity;

/// <summary>Files we write, read by Python PyTorch 1.13 / torchvision 0.14 (strict), and torchvision files read by us.</summary>
public sealed class PythonRoundTripTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("zoo-py-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Q(string s) => PythonTorch.Quote(s);

    [Fact]
    public void OurPthLoadsStrictlyIntoTorchvisionAndGivesTheSameLogits()
    {
        using var scope = NewDisposeScope();
        var model = global::ModelZoo.Zoo.Create("resnet18");
        string path = Path.Combine(_dir, "resnet18.pth");
        model.Save(path);
        string json = PythonTorch.Run($$"""
            import json, torch, torchvision
            from deterministic import deterministic_input
            m = torchvision.models.resnet18()
            r = m.load_state_dict(torch.load({{Q(path)}}), strict=True)
            m.eval()
            with torch.no_grad():
                y = m(deterministic_input((1, 3, 64, 80)))
            print(json.dumps({"missing": r.missing_keys, "unexpected": r.unexpected_keys, "logits": y.reshape(-1).tolist()}))
            """);
        using var doc = JsonDocument.Parse(json);
        Assert.Empty(doc.RootElement.GetProperty("missing").EnumerateArray());
        Assert.Empty(doc.RootElement.GetProperty("unexpected").EnumerateArray());
        model.eval();
        using var _ = no_grad();
        var ours = model.call(DeterministicWeights.Input(1, 3, 64, 80)).data<float>().ToArray();
        var theirs = doc.RootElement.GetProperty("logits").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(1000, theirs.Length);
        double maxAbs = ours.Zip(theirs, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxAbs <= 1e-4, $"logits differ by {maxAbs}");
    }

    [Fact]
    public void PythonReadsEveryDtypeWeWrite()
    {
        using var scope = NewDisposeScope();
        string path = Path.Combine(_dir, "dtypes.pth");
        StateDictFile.Write(path, new Dictionary<string, Tensor>
        {
            ["f16"] = tensor(new float[] { 1.5f, -2.25f }).to(ScalarType.Float16),
            ["bf16"] = tensor(new float[] { 1f, -3.5f }).to(ScalarType.BFloat16),
            ["f64"] = tensor(new double[] { 0.1, 2.5 }),
            ["i64"] = tensor(new long[] { 1, -2, 1L << 40 }),
            ["mask"] = tensor(new bool[] { true, false }),
            ["t"] = arange(6, dtype: ScalarType.Float32).reshape(2, 3).t(),
            ["scalar"] = tensor(3.25f),
        });
        string json = PythonTorch.Run($$"""
            import json, torch
            sd = torch.load({{Q(path)}})
            print(json.dumps({k: [str(v.dtype), list(v.shape), v.reshape(-1).double().tolist()] for k, v in sd.items()}, separators=(",", ":")))
            """);
        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        string Show(string k) => string.Join(" ", r.GetProperty(k).EnumerateArray().Select(e => e.ToString()));
        Assert.Equal("torch.float16 [2] [1.5,-2.25]", Show("f16"));
        Assert.Equal("torch.bfloat16 [2] [1.0,-3.5]", Show("bf16"));
        Assert.Equal("torch.float64 [2] [0.1,2.5]", Show("f64"));
        Assert.Equal("torch.int64 [3] [1.0,-2.0,1099511627776.0]", Show("i64"));
        Assert.Equal("torch.bool [2] [1.0,0.0]", Show("mask"));
        Assert.Equal("torch.float32 [3,2] [0.0,3.0,1.0,4.0,2.0,5.0]", Show("t"));
        Assert.Equal("torch.float32 [] [3.25]", Show("scalar"));
    }

    /// <summary>The snippet of issue #3, with a torchvision resnet50 .pth written by torch.save.</summary>
    [Fact]
    public void IssueSnippetRunsOnATorchvisionCheckpoint()
    {
        string pth = Path.Combine(_dir, "resnet50-torchvision.pth");
        string[] stats = PythonTorch.Run($$"""
            import torch, torchvision
            torch.manual_seed(0)
            m = torchvision.models.resnet50()
            torch.save(m.state_dict(), {{Q(pth)}})
            print(repr(float(m.conv1.weight.double().sum())), repr(float(m.layer4[1].conv2.weight.double().abs().sum())))
            """).Split(' ', StringSplitOptions.TrimEntries);

        using var scope = NewDisposeScope();
        var model = global::ModelZoo.Zoo.Load("resnet50", weights: pth).ReplaceHead(10);
        Assert.True(model.LastLoadReport!.IsExact, model.LastLoadReport.ToString());
        model.Freeze(except: "fc");
        model.Replace("layer4.2.relu", nn.GELU());
        model.InsertAfter("avgpool", "drop", nn.Dropout(0.2));
        model.Remove("layer4.2");
        string summary = model.Summary(inputShape: [1, 3, 224, 224]);
        string saved = Path.Combine(_dir, "x.safetensors");
        model.Save(saved);

        var sd = model.state_dict();
        Assert.Equal(double.Parse(stats[0], CultureInfo.InvariantCulture), sd["conv1.weight"].to(ScalarType.Float64).sum().item<double>(), 1e-6);
        Assert.Equal(double.Parse(stats[1], CultureInfo.InvariantCulture), sd["layer4.1.conv2.weight"].to(ScalarType.Float64).abs().sum().item<double>(), 1e-4);
        Assert.StartsWith("resnet50 — input [1, 3, 224, 224] → [1, 10]", summary, StringComparison.Ordinal);
        Assert.Contains("layer4.1.conv3", summary, StringComparison.Ordinal);
        Assert.DoesNotContain("layer4.2", summary, StringComparison.Ordinal);
        Assert.Contains("drop", summary, StringComparison.Ordinal);
        Assert.Contains("[1, 2048, 7, 7]", summary, StringComparison.Ordinal);
        Assert.Contains($"Trainable: {20_490:N0}", summary, StringComparison.Ordinal);
        using var back = StateDictFile.Read(saved);
        Assert.Equal(sd.Keys.Order(StringComparer.Ordinal), back.Keys.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(back.Keys, k => k.StartsWith("layer4.2.", StringComparison.Ordinal));
        Assert.Equal([10, 2048], back["fc.weight"].shape);
    }
}
