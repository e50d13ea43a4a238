using ModelZoo.Onnx;
using ModelZoo.Weights.Store;

namespace ModelZoo.Tests.Zoo.Onnx;

/// <summary>Reads the real CNTK ResNet-18 export restored with the solution (Microsoft.ML.DnnImageFeaturizer.ResNet18).</summary>
public class OnnxRealModelTests
{
    internal const string PackageId = "Microsoft.ML.DnnImageFeaturizer.ResNet18";
    internal const string PackageVersion = "0.23.1";

    internal static string PackageFile(string relative) =>
        NuGetPackageFiles.TryFind(PackageId, PackageVersion, relative)
        ?? throw new FileNotFoundException("Missing " + NuGetPackageFiles.Describe(PackageId, PackageVersion, relative));

    [Fact]
    public void Cntk_resnet18_graph_has_22_conv_bn_units_and_asymmetric_same_pads()
    {
        var m = OnnxModel.Load(PackageFile("tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx"));
        Assert.Equal("CNTK", m.ProducerName);
        Assert.Equal(8, m.Opset);
        Assert.Equal(110, m.Initializers.Count);
        var input = Assert.Single(m.Graph.DataInputs);
        Assert.Equal(new long?[] { 1, 3, 224, 224 }, input.Shape);
        var units = m.Graph.ConvUnits();
        Assert.Equal(22, units.Count);
        Assert.All(units, u => Assert.NotNull(u.BatchNorm));
        Assert.Equal(new long[] { 64, 3, 7, 7 }, units[0].Weight.Dims);
        Assert.Equal([3L, 3, 2, 2], units[0].Pads);
        Assert.Equal(64 * 3 * 7 * 7, units[0].Weight.ToFloatArray().Length);
        Assert.Equal(3, units.Count(u => u.KernelShape.SequenceEqual([1L, 1L]))); // three projection shortcuts
        Assert.Empty(m.Graph.LinearUnits()); // backbone only, no classifier
    }
}
