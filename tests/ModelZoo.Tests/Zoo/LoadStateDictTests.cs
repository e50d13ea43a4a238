using ModelZoo.Models.Vision;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo;

/// <summary>Loading state dicts into models: strict reports, head skipping, in_chans adaptation, the remap hook, Zoo.Load and Save.</summary>
public sealed class LoadStateDictTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("zoo-load-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A small ResNet (one basic block per stage).</summary>
    internal static ResNet Tiny(int classes = 10, int inChans = 3) => new(new ResNetConfig("basic", [1, 1, 1, 1]), new ModelOptions(classes, inChans));

    private static Dictionary<string, Tensor> Clone(ZooModel m) => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.to(ScalarType.Float64).allclose(b.to(ScalarType.Float64), rtol: 0, atol: 1e-6);

    [Fact]
    public void StrictLoadCopiesEveryTensor()
    {
        using var scope = NewDisposeScope();
        var a = Tiny();
        var b = Tiny();
        var report = b.LoadStateDict(a.state_dict());
        Assert.True(report.IsExact);
        Assert.Equal(a.state_dict().Count, report.Loaded.Count);
        Assert.All(a.state_dict(), kv => Assert.True(Same(kv.Value, b.state_dict()[kv.Key]), kv.Key));
        a.eval(); b.eval();
        var x = randn(1, 3, 64, 64);
        Assert.True(a.call(x).allclose(b.call(x)));
    }

    [Fact]
    public void StrictLoadReportsMissingUnexpectedAndMismatchedAndChangesNothing()
    {
        using var scope = NewDisposeScope();
        var src = Clone(Tiny(classes: 1000));
        src.Remove("layer1.0.conv1.weight");
        src["extra.weight"] = zeros(3);
        var model = Tiny();
        var before = Clone(model);
        var e = Assert.Throws<WeightLoadException>(() => model.LoadStateDict(src));
        Assert.Contains("layer1.0.conv1.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("extra.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("fc.weight: model [10, 512], checkpoint [1000, 512]", e.Message, StringComparison.Ordinal);
        Assert.Contains("skipHead", e.Message, StringComparison.Ordinal);
        Assert.Equal(["layer1.0.conv1.weight"], e.Report.Missing);
        Assert.Equal(["extra.weight"], e.Report.Unexpected);
        Assert.All(before, kv => Assert.True(Same(kv.Value, model.state_dict()[kv.Key]), kv.Key));

        var lax = model.LoadStateDict(src, strict: false);
        Assert.Equal(2, lax.Mismatched.Count);
        Assert.True(Same(src["layer2.0.conv1.weight"], model.state_dict()["layer2.0.conv1.weight"]));
        Assert.True(Same(before["fc.weight"], model.state_dict()["fc.weight"]));
    }

    [Theory]
    [InlineData(1000, 10)]
    [InlineData(10, 1000)]
    public void SkipHeadLoadsABackboneIntoAnotherHeadSize(int from, int to)
    {
        using var scope = NewDisposeScope();
        var src = Tiny(from);
        var model = Tiny(to);
        var fcBefore = model.state_dict()["fc.weight"].clone();
        var report = model.LoadStateDict(src.state_dict(), strict: true, skipHead: true);
        Assert.Equal(["fc.bias", "fc.weight"], report.Skipped.Order());
        Assert.True(report.IsExact);
        Assert.True(Same(src.state_dict()["layer4.0.conv2.weight"], model.state_dict()["layer4.0.conv2.weight"]));
        Assert.True(Same(fcBefore, model.state_dict()["fc.weight"]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void InChansAdaptationFollowsTimm(int inChans)
    {
        using var scope = NewDisposeScope();
        var src = Tiny();
        var model = Tiny(inChans: inChans);
        var report = model.LoadStateDict(src.state_dict());
        Assert.Contains(report.Notes, n => n.Contains("adapt_input_conv", StringComparison.Ordinal));
        var w = src.state_dict()["conv1.weight"];
        var expected = inChans == 1 ? w.sum(1, keepdim: true) : cat([w, w.narrow(1, 0, 1)], 1) * (3.0 / 4);
        Assert.True(Same(expected, model.state_dict()["conv1.weight"]));
        model.eval();
        Assert.Equal([2, 10], model.call(randn(2, inChans, 64, 64)).shape);
    }

    private sealed class RenamedResNet : ZooModel
    {
        public RenamedResNet() : base("Renamed", 10, 3)
        {
            Add("stem", nn.Conv2d(3, 4, 3));
            Add("fc", nn.Linear(4, 10));
        }

        public override int NumFeatures => 4;
        public override string HeadPath => "fc";
        public override Tensor ForwardFeatures(Tensor x) => Run("stem", x);
        public override Tensor ForwardHead(Tensor features, bool preLogits = false) => preLogits ? features.mean([2, 3]) : Run("fc", features.mean([2, 3]));
        protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) => numClasses == 0 ? nn.Identity() : nn.Linear(4, numClasses);

        protected internal override IReadOnlyDictionary<string, Tensor> RemapCheckpoint(IReadOnlyDictionary<string, Tensor> checkpoint) =>
            checkpoint.ToDictionary(kv => kv.Key.Replace("conv_stem.", "stem.", StringComparison.Ordinal), kv => kv.Value);
    }

    [Fact]
    public void RemapCheckpointHookRenamesKeys()
    {
        using var scope = NewDisposeScope();
        var model = new RenamedResNet();
        var src = new Dictionary<string, Tensor>
        {
            ["conv_stem.weight"] = ones(4, 3, 3, 3), ["conv_stem.bias"] = zeros(4), ["fc.weight"] = ones(10, 4), ["fc.bias"] = zeros(10),
        };
        Assert.True(model.LoadStateDict(src).IsExact);
        Assert.Equal(1f, model.state_dict()["stem.weight"].mean().item<float>());
    }

    [Theory]
    [InlineData("m.safetensors")]
    [InlineData("m.pth")]
    [InlineData("m.dat")]
    public void SaveThenZooLoadGivesTheSameModel(string file)
    {
        using var scope = NewDisposeScope();
        var a = global::ModelZoo.Zoo.Create("resnet18", new ModelOptions(NumClasses: 10));
        string path = Path.Combine(_dir, file);
        a.Save(path);
        var b = global::ModelZoo.Zoo.Load("resnet18", weights: path, new ModelOptions(NumClasses: 10));
        Assert.True(b.LastLoadReport!.IsExact);
        a.eval(); b.eval();
        var x = randn(1, 3, 64, 80);
        Assert.True(a.call(x).allclose(b.call(x), rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void ZooLoadSkipsAHeadThatDoesNotFitAndSaysSo()
    {
        using var scope = NewDisposeScope();
        string path = Path.Combine(_dir, "r18.safetensors");
        global::ModelZoo.Zoo.Create("resnet18").Save(path);
        var b = global::ModelZoo.Zoo.Load("resnet18", weights: path, new ModelOptions(NumClasses: 7));
        Assert.Contains(b.LastLoadReport!.Notes, n => n.Contains("skipped", StringComparison.Ordinal));
        Assert.Equal(2, b.LastLoadReport.Skipped.Count);
        Assert.Throws<WeightLoadException>(() => global::ModelZoo.Zoo.Load("resnet18", weights: path, new ModelOptions(NumClasses: 7), skipHead: false));
    }

    [Fact]
    public void ZooLoadExplainsWeightsItCannotFind()
    {
        Assert.Equal(1000, global::ModelZoo.Zoo.Load("resnet18", weights: "none").NumClasses);
        Assert.Throws<FileNotFoundException>(() => global::ModelZoo.Zoo.Load("resnet18", weights: "/nope/r18.pth"));
        // A tag whose file is neither cached nor downloadable (offline, empty cache): the error names tag, file and URL.
        var emptyCache = Path.Combine(Path.GetTempPath(), "zoo-empty-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<global::ModelZoo.Weights.Store.WeightNotAvailableException>(() =>
            global::ModelZoo.Zoo.LoadWithStore("resnet18", "imagenet1k_v1", null, new global::ModelZoo.Weights.Store.WeightStore(emptyCache, offline: true)));
        Assert.Contains("resnet18:imagenet1k_v1", e.Message, StringComparison.Ordinal);
        Assert.Contains("resnet18-f37072fd.pth", e.Message, StringComparison.Ordinal);
    }
}
