using ModelZoo.Data;
using ModelZoo.Weights;

namespace ModelZoo.Tests.Fuzz;

/// <summary>
/// Small files whose headers claim large sizes: each must be refused with a typed error naming the file, without
/// allocating for the claim first (the fuzzer found GIFs that made the decoder allocate 350–950 MB, one that crashed the
/// process, and a .dat shape that overflowed libtorch's stride computation).
/// </summary>
public class HostileHeaderTests
{
    private static string DataFixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "Data", name);

    private static (InvalidDataException Error, long Allocated) DecodeBytes(byte[] bytes, string name)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(ImageSource.FromBytes(bytes, name)));
        return (e, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Truncated_jpeg_claiming_16_megapixels_is_probed_before_the_full_buffer_is_allocated()
    {
        var jpg = JpegClaiming(4000, 4000);
        // Cut the file: with its end-of-image marker present libjpeg fills the missing rows with gray and Skia reports
        // success (a real 4000×4000 image); only a stream that ends early is reported as incomplete.
        jpg = jpg[..(jpg.Length * 2 / 3)];
        var (e, allocated) = DecodeBytes(jpg, "big-claim.jpg");
        Assert.Contains("big-claim.jpg", e.Message);
        Assert.Contains("4000×4000", e.Message);
        Assert.True(allocated < 16L << 20, $"allocated {allocated >> 20} MB for a {jpg.Length}-byte file");
    }

    [Fact]
    public void Png_claiming_more_pixels_than_deflate_can_hold_is_refused_from_the_header()
    {
        var png = PngClaiming(20000, 20000);
        var (e, allocated) = DecodeBytes(png, "claims.png");
        Assert.Contains("claims.png", e.Message);
        Assert.Contains("20000×20000", e.Message);
        Assert.True(allocated < 1L << 20, $"allocated {allocated >> 20} MB");
    }

    [Fact]
    public void Gif_fuzz_inputs_that_crashed_or_allocated_hundreds_of_megabytes_are_refused()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "fuzz", "image");
        var files = Directory.GetFiles(dir, "gif-*.bin");
        Assert.True(files.Length >= 2);
        foreach (var f in files)
        {
            var (e, allocated) = DecodeBytes(File.ReadAllBytes(f), f);
            Assert.Contains(f, e.Message);
            Assert.True(allocated < 32L << 20, $"{f}: allocated {allocated >> 20} MB");
        }
    }

    [Fact]
    public void Images_above_MaxPixels_name_the_option()
    {
        // 20000×20000 = 400 M pixels > 2^28 (libjpeg itself refuses sizes above 65500).
        var jpg = JpegClaiming(20000, 20000);
        var (e, _) = DecodeBytes(jpg, "huge.jpg");
        Assert.Contains("ImageDecoder.MaxPixels", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageDecoder.MaxPixels = 0);
    }

    [Fact]
    public void Shape_with_a_zero_next_to_huge_sizes_is_refused_before_libtorch_computes_strides()
    {
        var e = Assert.Throws<InvalidDataException>(() => TensorBytes.NumElements([0, 1L << 40, 1L << 40], "w.dat: tensor 'a'"));
        Assert.Contains("w.dat", e.Message);
        Assert.Contains("non-zero", e.Message);
        Assert.Equal(0, TensorBytes.NumElements([0, 3, 4], "x"));
        Assert.Equal(12, TensorBytes.NumElements([3, 4], "x"));
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "fuzz", "torchsharp-dat", "stride-overflow-1.bin");
        var dir = Directory.CreateTempSubdirectory("zoo-dat");
        try
        {
            var dat = Path.Combine(dir.FullName, "w.dat");
            File.Copy(path, dat);
            Assert.Contains("w.dat", Assert.Throws<InvalidDataException>(() => StateDictFile.Read(dat)).Message);
        }
        finally { dir.Delete(true); }
    }

    /// <summary>The fixture JPEG with its start-of-frame header claiming <paramref name="width"/>×<paramref name="height"/>.</summary>
    private static byte[] JpegClaiming(int width, int height)
    {
        var jpg = File.ReadAllBytes(DataFixture("photo_rocket.jpg"));
        int sof = FindMarker(jpg, 0xC0);
        jpg[sof + 5] = (byte)(height >> 8); jpg[sof + 6] = (byte)(height & 0xFF);
        jpg[sof + 7] = (byte)(width >> 8); jpg[sof + 8] = (byte)(width & 0xFF);
        return jpg;
    }

    /// <summary>The fixture PNG with its IHDR claiming <paramref name="width"/>×<paramref name="height"/> (and a CRC to match).</summary>
    private static byte[] PngClaiming(int width, int height)
    {
        var png = File.ReadAllBytes(DataFixture("fmt_gray.png"));
        // IHDR data starts at byte 16: width, height (big-endian); its CRC covers type + data (bytes 12..29).
        WriteBigEndian(png, 16, width);
        WriteBigEndian(png, 20, height);
        WriteBigEndian(png, 29, (int)Crc32(png.AsSpan(12, 17)));
        return png;
    }

    private static int FindMarker(byte[] jpg, byte marker)
    {
        for (int i = 2; i + 1 < jpg.Length; i++)
            if (jpg[i] == 0xFF && jpg[i + 1] == marker) return i;
        throw new InvalidOperationException("marker not found");
    }

    private static void WriteBigEndian(byte[] b, int at, int v)
    {
        b[at] = (byte)(v >> 24); b[at + 1] = (byte)(v >> 16); b[at + 2] = (byte)(v >> 8); b[at + 3] = (byte)v;
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte x in data)
        {
            c ^= x;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }
}
