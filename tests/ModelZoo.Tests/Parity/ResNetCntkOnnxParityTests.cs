using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ModelZoo.Models.Vision;
using ModelZoo.Onnx;
using ModelZoo.Tests.Zoo.Onnx;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Parity;

/// <summary>
/// The CNTK ResNet-18 from Microsoft.ML.DnnImageFeaturizer.ResNet18, imported onto the zoo's ResNet, must compute the
/// same features as ONNX Runtime running the very same file.
/// </summary>
public class ResNetCntkOnnxParityTests(ITestOutputHelper output)
{
    private const string InputName = "Input247";
    private const string LastRelu = "ReLU393_Output_0";

    private static string OnnxPath => OnnxRealModelTests.PackageFile("tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx");

    private static readonly Lazy<(ResNet Model, OnnxImportReport Report)> Imported = new(() =>
    {
        var model = (ResNet)ModelZoo.Zoo.Create("resnet18-cntk", new ModelOptions(NumClasses: 0));
        var report = model.ImportOnnx(OnnxModel.Load(OnnxPath));
        model.eval();
        return (model, report);
    });

    /// <summary>Preprocessed-looking input: BGR 0–255 minus ~115, from a fixed seed.</summary>
    private static float[] Input(int size, int seed)
    {
        var rng = new Random(seed);
        var data = new float[3 * size * size];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 255 - 115);
        return data;
    }

    private static float[] RunOrt(byte[] model, float[] input, int size, string outputName, out int[] outShape)
    {
        using var session = new InferenceSession(model);
        var tensor = new DenseTensor<float>(input, [1, 3, size, size]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(InputName, tensor)], [outputName]);
        var t = results.First().AsTensor<float>();
        outShape = t.Dimensions.ToArray();
        return t.ToArray();
    }

    private static byte[] FreeSizeModel(int size) => OnnxTestWriter.RewriteModel(File.ReadAllBytes(OnnxPath),
        [OnnxTestWriter.ValueInfo(InputName, [1, 3, size, size])], [OnnxTestWriter.ValueInfo(LastRelu, null)],
        new HashSet<string> { "AveragePool" });

    private static (float[] Pooled, long[] MapShape) Ours(float[] input, int size)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = tensor(input, [1, 3, size, size]);
        var features = Imported.Value.Model.ForwardFeatures(x);
        var pooled = Imported.Value.Model.ForwardHead(features, preLogits: true);
        return (pooled.data<float>().ToArray(), features.shape);
    }

    private static float[] MeanOverSpace(float[] map, int channels)
    {
        int hw = map.Length / channels;
        var result = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double sum = 0;
            for (int i = 0; i < hw; i++) sum += map[c * hw + i];
            result[c] = (float)(sum / hw);
        }
        return result;
    }

    private static float MaxAbs(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        return a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
    }

    [Fact]
    public void Import_maps_every_initializer_and_reports_the_pads()
    {
        var report = Imported.Value.Report;
        Assert.Equal(22 * 5, report.Loaded.Count); // conv weight + 4 BatchNorm tensors per convolution
        Assert.Empty(report.UnusedInitializers);
        Assert.Empty(report.NotLoaded); // NumClasses 0: no head parameters
        Assert.Contains(report.Notes, n => n.Contains("asymmetric", StringComparison.Ordinal));
        Assert.Contains(report.Notes, n => n.Contains("7×7 AveragePool", StringComparison.Ordinal));
    }

    [Fact]
    public void Pooled_features_match_onnxruntime_at_224()
    {
        var input = Input(224, 1);
        var ort = RunOrt(File.ReadAllBytes(OnnxPath), input, 224, "Pooling395_Output_0", out var shape);
        Assert.Equal([1, 512, 1, 1], shape);
        var (ours, map) = Ours(input, 224);
        Assert.Equal(new long[] { 1, 512, 7, 7 }, map);
        float diff = MaxAbs(ort, ours);
        output.WriteLine($"224: max |ORT - ours| = {diff:E3}, max |feature| = {ort.Max(Math.Abs):F3}");
        Assert.True(diff <= 1e-4f, $"max-abs difference {diff} > 1e-4");
        Assert.True(ort.Max(Math.Abs) > 0.1f); // not a degenerate all-zero output
    }

    [Theory]
    [InlineData(160)]
    [InlineData(96)]
    public void Feature_maps_and_pooled_features_match_onnxruntime_at_other_multiples_of_32(int size)
    {
        var input = Input(size, size);
        var ortMap = RunOrt(FreeSizeModel(size), input, size, LastRelu, out var shape);
        int side = size / 32;
        Assert.Equal([1, 512, side, side], shape);
        var (ours, map) = Ours(input, size);
        Assert.Equal(new long[] { 1, 512, side, side }, map);
        float diff = MaxAbs(MeanOverSpace(ortMap, 512), ours);
        output.WriteLine($"{size}: max |ORT - ours| (pooled) = {diff:E3}");
        Assert.True(diff <= 1e-4f, $"max-abs difference {diff} > 1e-4");
    }

    [Fact]
    public void At_sizes_not_multiple_of_32_the_original_graph_cannot_run_but_the_zoo_model_can()
    {
        // 200 → layer3 sees 25 rows: the asymmetric "same" pads of the 3×3/2 conv yield 12 rows while the 1×1/2
        // shortcut yields 13, so the graph's own residual Add fails. No reference exists there; the zoo model uses
        // symmetric pads (torchvision's convention) and runs.
        var input = Input(200, 200);
        var e = Assert.Throws<OnnxRuntimeException>(() => RunOrt(FreeSizeModel(200), input, 200, LastRelu, out _));
        Assert.Contains("Incompatible dimensions", e.Message);
        var (pooled, map) = Ours(input, 200);
        Assert.Equal(new long[] { 1, 512, 7, 7 }, map);
        Assert.All(pooled, v => Assert.True(float.IsFinite(v)));
    }
}
