using ModelZoo.Native;

namespace ModelZoo.Tests.Build;

public sealed class ElfVersionNeedsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("zoo-elf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] TorchSharpLike() => SyntheticElf.Build(
    [
        new("libc.so.6", ("GLIBC_2.2.5", false), ("GLIBC_2.34", false)),
        new("libstdc++.so.6", ("GLIBCXX_3.4", false), ("GLIBCXX_3.4.30", false), ("GLIBCXX_3.4.32", false)),
    ]);

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void ReadsEveryVersionNeedWithItsLibrary()
    {
        var needs = ElfVersionNeeds.ReadNeeds(TorchSharpLike());
        Assert.Equal(5, needs.Count);
        Assert.Equal(["GLIBC_2.2.5", "GLIBC_2.34"], needs.Where(n => n.File == "libc.so.6").Select(n => n.Version));
        Assert.Contains(needs, n => n.File == "libstdc++.so.6" && n.Version == "GLIBCXX_3.4.32" && !n.IsWeak);
    }

    [Fact]
    public void MarkWeakSetsOnlyTheNamedNeedsFlag()
    {
        var bytes = TorchSharpLike();
        var before = (byte[])bytes.Clone();
        Assert.True(ElfVersionNeeds.MarkWeak(bytes, "GLIBCXX_3.4.32"));
        var needs = ElfVersionNeeds.ReadNeeds(bytes);
        Assert.True(needs.Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak);
        Assert.All(needs.Where(n => n.Version != "GLIBCXX_3.4.32"), n => Assert.False(n.IsWeak));
        // exactly one byte changed: the low byte of vna_flags
        var diff = Enumerable.Range(0, bytes.Length).Where(i => bytes[i] != before[i]).ToList();
        Assert.Single(diff);
        Assert.Equal(ElfVersionNeeds.WeakFlag, bytes[diff[0]]);
    }

    [Fact]
    public void MarkWeakIsIdempotentAndANoOpForAbsentVersions()
    {
        var bytes = TorchSharpLike();
        Assert.True(ElfVersionNeeds.MarkWeak(bytes, "GLIBCXX_3.4.32"));
        Assert.False(ElfVersionNeeds.MarkWeak(bytes, "GLIBCXX_3.4.32"));
        Assert.False(ElfVersionNeeds.MarkWeak(bytes, "GLIBCXX_9.9"));
    }

    [Fact]
    public void ReadsVersionDefinitionsOfALibrary()
    {
        var lib = Write("libstdc++.so.6", SyntheticElf.Build([], ["libstdc++.so.6", "GLIBCXX_3.4", "GLIBCXX_3.4.30"]));
        Assert.Equal(new HashSet<string> { "libstdc++.so.6", "GLIBCXX_3.4", "GLIBCXX_3.4.30" }, ElfVersionNeeds.ReadDefinitions(lib));
    }

    [Fact]
    public void ApplyPatchesWhenTheSystemLacksTheMarkerVersion()
    {
        var system = Write("libstdc++.so.6", SyntheticElf.Build([], ["GLIBCXX_3.4", "GLIBCXX_3.4.30"]));
        var lib = Write("libLibTorchSharp.so", TorchSharpLike());
        Assert.Equal(NativeFixState.Required, LibStdCxxCompat.Inspect(lib, system).State);
        var report = LibStdCxxCompat.Apply(lib, system);
        Assert.Equal(NativeFixState.Applied, report.State);
        Assert.True(ElfVersionNeeds.ReadNeeds(lib).Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak);
        Assert.Equal(NativeFixState.Applied, LibStdCxxCompat.Apply(lib, system).State);
    }

    [Fact]
    public void ApplyIsANoOpWhereTheSystemHasTheVersion()
    {
        var system = Write("libstdc++.so.6", SyntheticElf.Build([], ["GLIBCXX_3.4", "GLIBCXX_3.4.30", "GLIBCXX_3.4.32"]));
        var bytes = TorchSharpLike();
        var lib = Write("libLibTorchSharp.so", bytes);
        Assert.Equal(NativeFixState.NotNeeded, LibStdCxxCompat.Apply(lib, system).State);
        Assert.Equal(bytes, File.ReadAllBytes(lib));
    }

    [Fact]
    public void ApplyRefusesWhenAnotherVersionIsMissing()
    {
        var system = Write("libstdc++.so.6", SyntheticElf.Build([], ["GLIBCXX_3.4"]));
        var lib = Write("libLibTorchSharp.so", TorchSharpLike());
        var e = Assert.Throws<NativeFixException>(() => LibStdCxxCompat.Apply(lib, system));
        Assert.Contains("GLIBCXX_3.4.30", e.Message);
        Assert.False(ElfVersionNeeds.ReadNeeds(lib).Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak);
    }

    [Fact]
    public void ApplyForAnyMachineMarksOnlyTheMarkerVersionWhateverTheSystemHas()
    {
        var lib = Write("libLibTorchSharp.so", TorchSharpLike());
        Assert.Equal(1, LibStdCxxCompat.ApplyForAnyMachine(lib));
        var needs = ElfVersionNeeds.ReadNeeds(lib);
        Assert.True(needs.Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak);
        Assert.All(needs.Where(n => n.Version != "GLIBCXX_3.4.32"), n => Assert.False(n.IsWeak));
        Assert.Equal(0, LibStdCxxCompat.ApplyForAnyMachine(lib)); // already weak: nothing changed
        // Where the system has the version, a weak need is just a need: Inspect still says no fix is needed.
        var system = Write("libstdc++.so.6", SyntheticElf.Build([], ["GLIBCXX_3.4", "GLIBCXX_3.4.30", "GLIBCXX_3.4.32"]));
        Assert.Equal(NativeFixState.NotNeeded, LibStdCxxCompat.Inspect(lib, system).State);
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 }, "not an ELF file")]
    [InlineData(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 1, 1 }, "not an ELF file")]
    public void MalformedFilesGiveTypedErrors(byte[] bytes, string expected)
    {
        var path = Write("bad.so", bytes);
        var e = Assert.Throws<InvalidDataException>(() => ElfVersionNeeds.ReadNeeds(path));
        Assert.Contains(expected, e.Message);
        Assert.Contains("bad.so", e.Message);
    }

    [Fact]
    public void TruncatedSectionTableIsRejected()
    {
        var bytes = TorchSharpLike()[..^10];
        var e = Assert.Throws<InvalidDataException>(() => ElfVersionNeeds.ReadNeeds(bytes, "cut.so"));
        Assert.Contains("section header table lies outside the file", e.Message);
    }

    [Fact]
    public void RefusesToPatchTheNuGetGlobalPackagesFolder()
    {
        var root = Path.Combine(_dir, "nuget");
        var lib = Path.Combine(root, "torchsharp", "libLibTorchSharp.so");
        Directory.CreateDirectory(Path.GetDirectoryName(lib)!);
        File.WriteAllBytes(lib, TorchSharpLike());
        var system = Write("libstdc++.so.6", SyntheticElf.Build([], ["GLIBCXX_3.4", "GLIBCXX_3.4.30"]));
        var old = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        try
        {
            Environment.SetEnvironmentVariable("NUGET_PACKAGES", root);
            var e = Assert.Throws<NativeFixException>(() => LibStdCxxCompat.Apply(lib, system));
            Assert.Contains("global packages folder", e.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable("NUGET_PACKAGES", old);
        }
    }
}
