using System.IO.Compression;
using System.Text.Json;
using ModelZoo.Data;

namespace ModelZoo.Tests.Data;

public class TransformTests
{
    private static RgbImage Photo => ImageDecoder.Decode(Path.Combine(PixelParityTests.Dir, "photo_chelsea.png"));

    private static ImageSample Sample(string f) => new(ImageSource.FromFile(Path.Combine(PixelParityTests.Dir, f)), 0);

    [Fact]
    public void EvalPipelineFromPreprocessingMatchesTorchvisionAndNormalizes()
    {
        // The fixture's resize 128 + center crop 112 (bilinear) is torchvision's eval transform at that size.
        var p = Preprocessing.ImageNetAt(128, 112);
        var t = VisionTransforms.Eval(p).Apply(Sample("photo_chelsea.png"), new Random(0));
        Assert.Equal((3, 112, 112), (t.Channels, t.Height, t.Width));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(PixelParityTests.Dir, "manifest.json")));
        var c = doc.RootElement.GetProperty("cases").EnumerateArray()
            .First(e => e.GetProperty("input").GetString() == "photo_chelsea.png" && e.GetProperty("op").GetString() == "resize_crop"
                        && e.GetProperty("params").GetProperty("crop").GetInt32() == 112);
        using var gz = new GZipStream(File.OpenRead(Path.Combine(PixelParityTests.Dir, c.GetProperty("expected").GetString()!)), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        var exp = ms.ToArray();
        for (var ch = 0; ch < 3; ch++)
            for (var i = 0; i < 112 * 112; i += 37)
            {
                var want = (exp[i * 3 + ch] / 255f - p.Mean[ch]) / p.Std[ch];
                Assert.Equal(want, t.Data[ch * 112 * 112 + i], 3);
            }
    }

    [Fact]
    public void NormalizeHandlesBgrAnd255Range()
    {
        var img = new RgbImage(1, 1, [10, 20, 30]);
        var bgr = new Normalize([1f, 2f, 3f], [2f, 2f, 2f], 255f, ChannelOrder.Bgr).ToTensor(img, 4);
        Assert.Equal([(30 - 1) / 2f, (20 - 2) / 2f, (10 - 3) / 2f], bgr.Data);
        Assert.Equal(4, bgr.Label);
        var gray = new Normalize([0f], [1f], Grayscale: true).ToTensor(img, 0);
        Assert.Equal(1, gray.Channels);
        Assert.Equal(Pixels.Luma(10, 20, 30) / 255f, gray.Data[0], 6);
        var g3 = new Grayscale().Apply(img, new Random(0));
        Assert.Equal(g3.Pixels[0], g3.Pixels[2]);
    }

    [Fact]
    public void TrainPipelineIsDeterministicUnderASeed()
    {
        var tf = VisionTransforms.Train(DataTestHelpers.Tiny, [Augment.RandAugment(), Augment.ColorJitter(0.4, 0.4, 0.4, 0.1)], randomErasing: 0.5);
        var s = Sample("photo_rocket.jpg");
        var a = tf.Apply(s, new Random(5));
        var b = tf.Apply(s, new Random(5));
        var c = tf.Apply(s, new Random(6));
        Assert.Equal((3, 32, 32), (a.Channels, a.Height, a.Width));
        Assert.Equal(a.Data, b.Data);
        Assert.NotEqual(a.Data, c.Data);
    }

    [Fact]
    public void EveryAugmentationOpRunsAndKeepsTheSize()
    {
        var img = new Resize(40).Apply(Photo, new Random(0));
        foreach (var op in AugOps.All)
            foreach (var mag in new[] { 0.0, 0.3, -0.3, 4, 128 })
            {
                var m = op == AugOp.Posterize ? 4 : op is AugOp.Rotate or AugOp.TranslateX or AugOp.TranslateY ? mag * 10 : mag;
                var o = AugOps.Apply(img, op, m);
                Assert.Equal((img.Width, img.Height), (o.Width, o.Height));
            }
        var rng = new Random(1);
        for (var i = 0; i < 30; i++)
        {
            Assert.Equal(img.Width, new RandAugment().Apply(img, rng).Width);
            Assert.Equal(img.Width, new TrivialAugmentWide().Apply(img, rng).Width);
        }
        Assert.Equal(img.Pixels, AugOps.Apply(img, AugOp.Brightness, 0).Pixels);
        Assert.Equal(img.Pixels, Pixels.Rotate(img, 360).Pixels);
        Assert.Equal(img.Pixels, AugOps.Apply(img, AugOp.Solarize, 256).Pixels);
    }

    [Fact]
    public void FlipsCropsAndRandomResizedCrop()
    {
        var img = Photo;
        var rng = new Random(0);
        var h = new RandomHorizontalFlip(1).Apply(img, rng);
        Assert.Equal(img[0, 5, 1], h[img.Width - 1, 5, 1]);
        Assert.Equal(img.Pixels, new RandomHorizontalFlip(1).Apply(h, rng).Pixels);
        var v = new RandomVerticalFlip(1).Apply(img, rng);
        Assert.Equal(img[3, 0, 2], v[3, img.Height - 1, 2]);
        var big = new CenterCrop(300).Apply(img, rng);
        Assert.Equal((300, 300), (big.Width, big.Height));
        Assert.Equal(0, big[0, 0, 0]);
        var rrc = new RandomResizedCrop(50);
        for (var i = 0; i < 20; i++)
        {
            var (top, left, ch, cw) = rrc.Sample(img.Width, img.Height, rng);
            Assert.InRange(top, 0, img.Height - ch);
            Assert.InRange(left, 0, img.Width - cw);
            var r = (double)cw / ch;
            Assert.InRange(r, 0.70, 1.40);
        }
        Assert.Equal((50, 50), (rrc.Apply(img, rng).Width, rrc.Apply(img, rng).Height));
    }

    [Fact]
    public void RandomErasingFillsARectangle()
    {
        var t = new ImageTensor(Enumerable.Repeat(1f, 3 * 20 * 20).ToArray(), 3, 20, 20, 0);
        var e = new RandomErasing(P: 1).Apply(t, new Random(3));
        var zeros = e.Data.Count(v => v == 0);
        Assert.True(zeros > 0 && zeros % 3 == 0 && zeros < t.Data.Length);
        Assert.Same(t, new RandomErasing(P: 0).Apply(t, new Random(3)));
    }

    [Fact]
    public void JpegDecodeTimeDownscalingStaysCloseToTheFullDecode()
    {
        // rocket.jpg is 200x133; a 32 px target lets the decoder use libjpeg's 1/4 scale.
        var s = Sample("photo_rocket.jpg");
        var fast = VisionTransforms.Eval(Preprocessing.ImageNetAt(32, 32)).ApplyImage(s, new Random(0));
        var exact = VisionTransforms.Eval(Preprocessing.ImageNetAt(32, 32), downscaleJpeg: false).ApplyImage(s, new Random(0));
        var scaled = ImageDecoder.Decode(s.Source, (w, h) => 32.0 / Math.Min(w, h));
        Assert.True(scaled.IsDownscaled);
        Assert.True(scaled.Width < 200);
        Assert.Equal((exact.Width, exact.Height), (fast.Width, fast.Height));
        var mean = fast.Pixels.Zip(exact.Pixels, (a, b) => Math.Abs(a - b)).Average(x => x);
        Assert.True(mean < 4, $"mean abs difference {mean}");
        Assert.Equal((200, 133), ImageDecoder.ReadSize(s.Source));
    }

    [Fact]
    public void RandomResizedCropOnADownscaledDecodeCropsTheSameRegion()
    {
        var s = Sample("photo_rocket.jpg");
        var steps = new IImageTransform[] { new RandomResizedCrop(12, (0.5, 1.0)) };
        var fast = new VisionPipeline(steps, Normalize.None, downscaleJpeg: true);
        var exact = new VisionPipeline(steps, Normalize.None, downscaleJpeg: false);
        for (var seed = 0; seed < 5; seed++)
        {
            var a = fast.ApplyImage(s, new Random(seed));
            var b = exact.ApplyImage(s, new Random(seed));
            Assert.Equal((12, 12), (a.Width, a.Height));
            var mean = a.Pixels.Zip(b.Pixels, (x, y) => Math.Abs(x - y)).Average(x => x);
            Assert.True(mean < 6, $"seed {seed}: mean abs difference {mean}");
        }
        // A wrong region (e.g. unscaled coordinates) would differ a lot: compare with another seed's crop.
        var other = exact.ApplyImage(s, new Random(99));
        var first = fast.ApplyImage(s, new Random(0));
        Assert.True(first.Pixels.Zip(other.Pixels, (x, y) => Math.Abs(x - y)).Average(x => x) > 6);
    }

    [Fact]
    public void CorruptImagesThrowNamingTheFile()
    {
        foreach (var f in new[] { "corrupt_truncated.jpg", "corrupt_garbage.jpg" })
        {
            var e = Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(Path.Combine(PixelParityTests.Dir, f)));
            Assert.Contains(f, e.Message);
        }
    }
}
