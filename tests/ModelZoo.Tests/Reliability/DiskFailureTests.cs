using System.Diagnostics;
using ModelZoo.FineTune;
using ModelZoo.Tests.FineTune;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Reliability;

/// <summary>
/// A checkpoint that cannot be written (a file where the run folder should be, a read-only file system, a full disk)
/// fails with an <see cref="IOException"/> that names the path, and the last good checkpoint stays as it was and loads.
/// Read-only and disk-full use a real tmpfs (1 MB) when the tests run as root and <c>mount</c> works (we run as root,
/// so chmod would not stop us); otherwise the same failures are injected through the writer's stream.
/// </summary>
public sealed class DiskFailureTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("zoo-disk-").FullName;
    private string? _mount;

    private static Learner MakeLearner(out TinyCnn model)
    {
        var data = MemoryData.Synthetic(32, 16, 4);
        manual_seed(1);
        model = new TinyCnn(4);
        return new Learner(model, data.Shuffled(16, 3), null, options: new LearnerOptions { Quiet = true, Device = CPU });
    }

    private static void AssertLoads(string path, byte[] expected)
    {
        Assert.Equal(expected, File.ReadAllBytes(path));
        var info = Checkpoint.ReadInfo(path);
        Assert.Equal(nameof(TinyCnn), info.Model);
        var state = Checkpoint.ReadModelState(path);
        Assert.NotEmpty(state);
        foreach (var t in state.Values) t.Dispose();
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, ".*.tmp"));
    }

    [Fact]
    public void AFileWhereTheRunFolderShouldBeGivesAnErrorNamingThePath()
    {
        using var learner = MakeLearner(out _);
        var good = Path.Combine(_dir, "last.ckpt");
        learner.Save(good);
        var before = File.ReadAllBytes(good);
        var blocker = Path.Combine(_dir, "runs");
        File.WriteAllText(blocker, "not a folder");
        var target = Path.Combine(blocker, "run1", "last.ckpt");
        var e = Assert.Throws<IOException>(() => learner.Save(target));
        Assert.Contains(target, e.Message);
        Assert.Contains("cannot be created", e.Message);
        AssertLoads(good, before);
    }

    [Fact]
    public void ReadOnlyFolderGivesAClearErrorAndKeepsTheLastGoodCheckpoint()
    {
        using var run = SaveThenTrainOneEpoch("4m");
        var (learner, _, good, before) = run;
        IOException e;
        if (_mount is not null)
        {
            Assert.True(Mount("-o", "remount,ro", _mount), "remount read-only failed");
            e = Assert.Throws<IOException>(() => learner.Save(good));
            output.WriteLine("real read-only tmpfs: " + e.Message);
            Assert.Contains("Read-only", e.Message, StringComparison.OrdinalIgnoreCase);
        }
        else
        {
            e = Assert.Throws<IOException>(() => learner.SaveTo(good, p => throw new IOException($"Read-only file system : '{p}'", 30)));
            output.WriteLine("injected EROFS: " + e.Message);
        }
        Assert.Contains(good, e.Message);
        AssertLoads(good, before);
    }

    [Fact]
    public void DiskFullGivesAClearErrorAndKeepsTheLastGoodCheckpoint()
    {
        using var run = SaveThenTrainOneEpoch("1m");
        var (learner, folder, good, before) = run;
        IOException e;
        var filler = Path.Combine(folder, "filler.bin");
        if (_mount is not null)
        {
            // Fill the file system to the last byte (unbuffered, so nothing is left to flush when it fails).
            using (var f = new FileStream(filler, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
            {
                var chunk = new byte[4096];
                try
                {
                    while (true) f.Write(chunk);
                }
                catch (IOException) { }
            }
            e = Assert.Throws<IOException>(() => learner.Save(good));
            output.WriteLine($"real full tmpfs (HResult {e.InnerException?.HResult}): " + e.Message);
        }
        else
        {
            e = Assert.Throws<IOException>(() => learner.SaveTo(good, p => new FailingWriteStream(new FileStream(p, FileMode.CreateNew), 3000, () => new IOException("No space left on device", 28))));
            output.WriteLine("injected ENOSPC: " + e.Message);
        }
        Assert.Contains(good, e.Message);
        Assert.Contains("disk is full", e.Message);
        AssertLoads(good, before);
        // Space freed: the next save works and replaces the old checkpoint.
        if (File.Exists(filler)) File.Delete(filler);
        learner.Save(good);
        Assert.NotEqual(before, File.ReadAllBytes(good));
        Assert.NotEmpty(Checkpoint.ReadModelState(good));
    }

    /// <summary>A learner, the folder and path of the good checkpoint it saved, and that file's bytes.</summary>
    private sealed record SavedRun(Learner Learner, string Folder, string Good, byte[] Before) : IDisposable
    {
        public void Dispose() => Learner.Dispose();
    }

    /// <summary>
    /// The preamble of the read-only and disk-full tests: a learner saves a good checkpoint (on a tmpfs of
    /// <paramref name="tmpfsSize"/> when one can be mounted, else in the test folder), then trains one more epoch, so
    /// the next save would write different bytes.
    /// </summary>
    private SavedRun SaveThenTrainOneEpoch(string tmpfsSize)
    {
        var learner = MakeLearner(out _);
        var folder = TryMountTmpfs(tmpfsSize) ?? _dir;
        var good = Path.Combine(folder, "last.ckpt");
        learner.Save(good);
        var before = File.ReadAllBytes(good);
        learner.Fit(1, Schedule.Constant(1e-2));
        return new SavedRun(learner, folder, good, before);
    }

    /// <summary>A tmpfs of <paramref name="size"/> at a fresh folder, or null when mounting is not possible here.</summary>
    private string? TryMountTmpfs(string size)
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") return null;
        var point = Path.Combine(_dir, "mnt");
        Directory.CreateDirectory(point);
        if (!Mount("-t", "tmpfs", "-o", $"size={size}", "tmpfs", point)) return null;
        _mount = point;
        return point;
    }

    private static bool Mount(params string[] args) => RunTool("mount", args);

    private static bool RunTool(string tool, params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            p.WaitForExit(10_000);
            return p.HasExited && p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    public void Dispose()
    {
        if (_mount is not null) RunTool("umount", _mount);
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

}
