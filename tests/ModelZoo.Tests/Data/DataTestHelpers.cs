using ModelZoo.Data;

namespace ModelZoo.Tests.Data;

internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "zoo-data-" + Guid.NewGuid().ToString("N")[..10]);

    public string File(string relative, string? content = null)
    {
        var p = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        if (content is not null) System.IO.File.WriteAllText(p, content);
        return p;
    }

    public string CopyFixture(string fixture, string relative)
    {
        var p = File(relative);
        System.IO.File.Copy(System.IO.Path.Combine(PixelParityTests.Dir, fixture), p, true);
        return p;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }
}

internal static class DataTestHelpers
{
    /// <summary>An image folder: cat/ (3 images), cup/ (2), rocket/ (2), from the committed fixtures.</summary>
    public static TempDir ImageFolderFixture(bool withCorrupt = false)
    {
        var d = new TempDir();
        d.CopyFixture("photo_chelsea.png", "cat/a.png");
        d.CopyFixture("fmt_rgba.png", "cat/b.png");
        d.CopyFixture("fmt_gray.png", "cat/sub/c.png");
        d.CopyFixture("photo_coffee.png", "cup/a.png");
        d.CopyFixture("fmt_palette.gif", "cup/b.gif");
        d.CopyFixture("photo_rocket.jpg", "rocket/a.jpg");
        d.CopyFixture("fmt_lossless.webp", "rocket/b.webp");
        if (withCorrupt)
        {
            d.CopyFixture("corrupt_truncated.jpg", "cup/broken.jpg");
            d.CopyFixture("corrupt_garbage.jpg", "rocket/garbage.jpg");
        }
        return d;
    }

    public static readonly Preprocessing Tiny = Preprocessing.ImageNetAt(40, 32);
}
