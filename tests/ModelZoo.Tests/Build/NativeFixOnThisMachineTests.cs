using ModelZoo.Native;

namespace ModelZoo.Tests.Build;

/// <summary>Checks the real libraries: the test output's copy is fixed where needed, the NuGet cache's copy is untouched.</summary>
public class NativeFixOnThisMachineTests
{
    [Fact]
    public void TestOutputCopyLoadsOnThisMachine()
    {
        var report = NativeStatus.Report();
        Assert.True(report.State is NativeFixState.Applied or NativeFixState.NotNeeded, report.Message);
        var system = LibStdCxxCompat.FindSystemLibStdCxx();
        Assert.NotNull(system);
        bool systemHasIt = ElfVersionNeeds.ReadDefinitions(system).Contains("GLIBCXX_3.4.32");
        Assert.Equal(systemHasIt ? NativeFixState.NotNeeded : NativeFixState.Applied, report.State);
    }

    [Fact]
    public void NuGetGlobalPackagesCopyIsNeverModified()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var lib = Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", LibStdCxxCompat.TorchSharpLibrary);
        Assert.True(File.Exists(lib), $"expected the restored TorchSharp package at {lib}");
        Assert.False(ElfVersionNeeds.ReadNeeds(lib).Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak);
    }
}
