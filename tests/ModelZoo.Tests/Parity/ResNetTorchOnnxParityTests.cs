using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ModelZoo.Weights.Store;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Parity;

/// <summary>
/// A torchvision ResNet-50 (bottleneck blocks, Gemm classifier) exported by torch.onnx with random weights and random
/// BatchNorm statistics, imported with Zoo.Load(name, weights: "x.onnx"), must compute ONNX Runtime's logits.
/// </summary>
public sealed class ResNetTorchOnnxParityTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "zoo-tvonnx-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public void Torchvision_resnet50_onnx_export_imports_and_matches_onnxruntime()
    {
        Directory.CreateDirectory(_dir);
        var path = Path.Combine(_dir, "resnet50_10.onnx");
        PythonTorch.Run($$"""
            import torch, torchvision
            torch.manual_seed(0)
            m = torchvision.models.resnet50(num_classes=10)
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 2.0)
                    mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.2, 0.2)
            m.eval()
            torch.onnx.export(m, torch.zeros(1, 3, 64, 64), {{PythonTorch.Quote(path)}}, opset_version=13, input_names=['x'], output_names=['logits'])
            """);
        var model = ModelZoo.Zoo.LoadWithStore("resnet50", path, null, new WeightStore(Path.Combine(_dir, "cache"), offline: true));
        Assert.Equal(10, model.NumClasses);
        var report = model.LastLoadReport!;
        output.WriteLine(string.Join("\n", report.Notes));
        Assert.Empty(report.Missing);    // every model tensor received a value
        Assert.Empty(report.Unexpected); // every initializer was used

        var rng = new Random(5);
        var input = Enumerable.Range(0, 3 * 64 * 64).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        using var session = new InferenceSession(path);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(input, [1, 3, 64, 64]))]);
        var ort = results.First().AsTensor<float>().ToArray();

        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ours = model.call(tensor(input, [1, 3, 64, 64])).data<float>().ToArray();
        float diff = ort.Zip(ours, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine($"resnet50 (torch.onnx export) logits at 64×64: max |ORT - ours| = {diff:E3}, max |logit| = {ort.Max(Math.Abs):F3}");
        Assert.True(diff <= 1e-4f, $"max-abs difference {diff} > 1e-4");
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }
}
