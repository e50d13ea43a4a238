using System.IO.Compression;
using System.Text.Json;
using ModelZoo.Data;

namespace ModelZoo.Tests.Data;

/// <summary>
/// Decoding, resize and crop against torchvision 0.14's PIL path on real photos (fixtures written by
/// scripts/fixtures/make_image_fixtures.py): every pixel must be within 1/255 of the expected value.
/// </summary>
public class PixelParityTests
{
    internal static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "Data");

    private static JsonElement[] Cases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "manifest.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(e => e.Clone()).ToArray();
    }

    public static IEnumerable<object[]> CaseIds() =>
        Cases().Select((c, i) => new object[] { i, c.GetProperty("expected").GetString()! });

    private static byte[] Expected(string name)
    {
        using var gz = new GZipStream(File.OpenRead(Path.Combine(Dir, name)), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        return ms.ToArray();
    }

    private static Interpolation Interp(JsonElement p) =>
        p.GetProperty("interpolation").GetString() == "bicubic" ? Interpolation.Bicubic : Interpolation.Bilinear;

    internal static RgbImage Run(JsonElement c)
    {
        var input = Path.Combine(Dir, c.GetProperty("input").GetString()!);
        var p = c.GetProperty("params");
        var rng = new Random(0);
        var op = c.GetProperty("op").GetString();
        if (op == "decode") return ImageDecoder.Decode(input);
        var img = ImageDecoder.Decode(input);
        switch (op)
        {
            case "resize":
                return new Resize(p.GetProperty("size").GetInt32(), Interp(p)).Apply(img, rng);
            case "resize_exact":
                return new Resize(p.GetProperty("height").GetInt32(), p.GetProperty("width").GetInt32(), Interp(p)).Apply(img, rng);
            case "resize_crop":
                return new CenterCrop(p.GetProperty("crop").GetInt32()).Apply(new Resize(p.GetProperty("size").GetInt32(), Interp(p)).Apply(img, rng), rng);
            case "crop_upscale":
                return new Resize(p.GetProperty("size").GetInt32(), Interp(p)).Apply(new CenterCrop(p.GetProperty("crop").GetInt32()).Apply(img, rng), rng);
            case "resized_crop":
                int top = p.GetProperty("top").GetInt32(), left = p.GetProperty("left").GetInt32();
                int h = p.GetProperty("height").GetInt32(), w = p.GetProperty("width").GetInt32(), size = p.GetProperty("size").GetInt32();
                return PilResampler.Resize(img, left, top, w, h, (0, 0, w, h), size, size, Interp(p));
            default:
                throw new InvalidOperationException($"unknown op {op}");
        }
    }

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void MatchesTorchvisionPilWithinOneLevel(int index, string expectedFile)
    {
        var c = Cases()[index];
        var img = Run(c);
        Assert.Equal(c.GetProperty("height").GetInt32(), img.Height);
        Assert.Equal(c.GetProperty("width").GetInt32(), img.Width);
        var exp = Expected(expectedFile);
        Assert.Equal(exp.Length, img.Pixels.Length);
        var maxDiff = 0;
        var at = -1;
        for (var i = 0; i < exp.Length; i++)
        {
            var d = Math.Abs(exp[i] - img.Pixels[i]);
            if (d > maxDiff) { maxDiff = d; at = i; }
        }
        Assert.True(maxDiff <= 1, $"{expectedFile}: max difference {maxDiff} at byte {at}");
    }

    /// <summary>The resize ops on PNG photos are bit-exact, not just within tolerance: the arithmetic is Pillow's.</summary>
    [Fact]
    public void ResizeOnLosslessPhotosIsBitExact()
    {
        var n = 0;
        foreach (var c in Cases().Where(c => c.GetProperty("op").GetString() != "decode"))
        {
            var img = Run(c);
            Assert.Equal(Expected(c.GetProperty("expected").GetString()!), img.Pixels);
            n++;
        }
        Assert.True(n >= 20);
    }
}
