using ModelZoo.Models.Vision;
using ModelZoo.Onnx;
using ModelZoo.Tests.Zoo.Onnx;
using ModelZoo.Weights.Store;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo.Weights;

/// <summary>Zoo.Load resolution with an empty cache and no network (offline store in a temporary folder).</summary>
public sealed class ZooLoadTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "zoo-load-" + Guid.NewGuid().ToString("N"));

    private WeightStore Offline() => new(_root, offline: true);

    private static string CntkOnnx => OnnxRealModelTests.PackageFile("tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx");

    [Fact]
    public void Resnet18_cntk_loads_offline_from_the_nuget_package_with_an_empty_cache()
    {
        var model = ModelZoo.Zoo.LoadWithStore("resnet18-cntk", null, null, Offline());
        Assert.Equal("imagenet1k_cntk", model.LoadedWeights!.Tag);
        Assert.Equal(0, model.NumClasses);
        Assert.Equal(ChannelOrder.Bgr, model.Preprocessing.ChannelOrder);
        Assert.Equal(255f, model.Preprocessing.ValueRange);
        Assert.Equal(103.06f, model.Preprocessing.Mean[0], 0.01f);
        // The first convolution holds the package's first kernel.
        var stem = OnnxModel.Load(CntkOnnx).Graph.ConvUnits()[0].Weight.ToFloatArray();
        using var w = model.state_dict()["conv1.weight"].flatten();
        Assert.Equal(stem, w.data<float>().ToArray());
        Assert.False(Directory.Exists(Path.Combine(_root, "weights"))); // used in place, not copied
    }

    [Fact]
    public void Name_colon_tag_and_a_new_head_size()
    {
        var model = ModelZoo.Zoo.LoadWithStore("resnet18-cntk:imagenet1k_cntk", null, new ModelOptions(NumClasses: 10), Offline());
        Assert.Equal(10, model.NumClasses);
        using var x = torch.zeros(2, 3, 64, 64);
        model.eval();
        using var y = model.call(x);
        Assert.Equal(new long[] { 2, 10 }, y.shape);
    }

    [Fact]
    public void A_local_onnx_file_is_imported_onto_the_family()
    {
        var model = ModelZoo.Zoo.LoadWithStore("resnet18-cntk", CntkOnnx, null, Offline());
        Assert.Equal("file", model.LoadedWeights!.Tag);
        Assert.Equal(0, model.NumClasses);
    }

    [Fact]
    public void An_onnx_graph_of_another_architecture_is_reported_clearly()
    {
        var e = Assert.Throws<OnnxImportException>(() => ModelZoo.Zoo.LoadWithStore("resnet18", CntkOnnx, null, Offline()));
        Assert.Contains("22 convolutions", e.Message);
        Assert.Contains("needs 20", e.Message);
        Assert.Contains("resnet18-cntk", e.Message);
    }

    [Fact]
    public void Torchvision_tags_offline_with_empty_cache_say_what_to_download_and_where()
    {
        var e = Assert.Throws<WeightNotAvailableException>(() => ModelZoo.Zoo.LoadWithStore("resnet18", null, null, Offline()));
        Assert.Contains("https://download.pytorch.org/models/resnet18-f37072fd.pth", e.Message);
        Assert.Contains(Path.Combine(_root, "weights", "resnet18", "resnet18-f37072fd.pth"), e.Message);
        var url = Assert.Throws<WeightNotAvailableException>(() => ModelZoo.Zoo.LoadWithStore("resnet18", "https://example.invalid/x/resnet18-f37072fd.pth", null, Offline()));
        Assert.Contains(Path.Combine(_root, "weights", "_url", "resnet18-f37072fd.pth"), url.Message);
    }

    [Fact]
    public void Unknown_tags_and_files_are_named()
    {
        Assert.Contains("imagenet1k_cntk", Assert.Throws<KeyNotFoundException>(() => ModelZoo.Zoo.LoadWithStore("resnet18-cntk", "nope", null, Offline())).Message);
        var missing = Path.Combine(_root, "missing.onnx");
        Assert.Contains(missing, Assert.Throws<FileNotFoundException>(() => ModelZoo.Zoo.LoadWithStore("resnet18-cntk", missing, null, Offline())).Message);
    }

    [Fact]
    public void Asymmetric_same_pads_match_symmetric_pads_for_even_sizes_with_plain_convolutions()
    {
        // The claim behind the mapping, checked directly: pads (1,1,0,0) via F.pad equal padding 1 when the input is even.
        using var scope = torch.NewDisposeScope();
        var w = torch.randn(4, 3, 3, 3, generator: new torch.Generator(1));
        foreach (var (size, equal) in new[] { (16, true), (15, false) })
        {
            var x = torch.randn(1, 3, size, size, generator: new torch.Generator(2));
            var sym = torch.nn.functional.conv2d(x, w, strides: [2, 2], padding: [1, 1]);
            var asym = torch.nn.functional.conv2d(torch.nn.functional.pad(x, [1, 0, 1, 0]), w, strides: [2, 2]);
            Assert.Equal(equal, sym.shape.SequenceEqual(asym.shape) && sym.allclose(asym, atol: 1e-6));
        }
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}
