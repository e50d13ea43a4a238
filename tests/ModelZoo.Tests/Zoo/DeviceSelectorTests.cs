namespace ModelZoo.Tests.Zoo;

public class DeviceSelectorTests
{
    [Theory]
    [InlineData("auto", DeviceRequestKind.Auto, null)]
    [InlineData(null, DeviceRequestKind.Auto, null)]
    [InlineData("", DeviceRequestKind.Auto, null)]
    [InlineData(" CPU ", DeviceRequestKind.Cpu, null)]
    [InlineData("cuda", DeviceRequestKind.Cuda, null)]
    [InlineData("cuda:0", DeviceRequestKind.Cuda, 0)]
    [InlineData("CUDA:3", DeviceRequestKind.Cuda, 3)]
    public void ParsesTheDocumentedForms(string? text, DeviceRequestKind kind, int? index)
    {
        var r = DeviceSelector.Parse(text);
        Assert.Equal(kind, r.Kind);
        Assert.Equal(index, r.Index);
    }

    [Theory]
    [InlineData("tpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:x")]
    [InlineData("cpu:0")]
    public void RejectsOtherFormsWithTheAllowedOnes(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => DeviceSelector.Parse(text));
        Assert.Contains("auto, cpu, cuda or cuda:N", e.Message);
    }

    [Fact]
    public void AutoPicksCpuWithoutCudaAndCudaWithIt()
    {
        Assert.Equal(TorchSharp.DeviceType.CPU, DeviceSelector.Resolve(DeviceRequest.Auto, cudaAvailable: false).Device.type);
        var gpu = DeviceSelector.Resolve(DeviceRequest.Auto, cudaAvailable: true, cudaDeviceCount: 1);
        Assert.True(gpu.IsCuda);
        Assert.Contains("auto", gpu.Reason);
    }

    [Fact]
    public void CudaWithoutCudaIsAClearError()
    {
        var e = Assert.Throws<InvalidOperationException>(() => DeviceSelector.Resolve(DeviceSelector.Parse("cuda"), cudaAvailable: false));
        Assert.Contains("CUDA is not available", e.Message);
        Assert.Contains("--device cpu", e.Message);
    }

    [Fact]
    public void MissingOrdinalIsAClearError()
    {
        var e = Assert.Throws<InvalidOperationException>(() => DeviceSelector.Resolve(DeviceSelector.Parse("cuda:2"), cudaAvailable: true, cudaDeviceCount: 1));
        Assert.Contains("only 1 CUDA device", e.Message);
    }

    [Fact]
    public void ThisMachineResolvesAutoToCpu() => Assert.Equal(TorchSharp.DeviceType.CPU, DeviceSelector.Resolve("auto").Device.type);
}
