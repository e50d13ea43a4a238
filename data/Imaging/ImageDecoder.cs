using System.Runtime.InteropServices;
using SkiaSharp;

namespace ModelZoo.Data;

/// <summary>
/// Decodes JPEG, PNG, WebP, BMP, GIF (first frame) and the other formats Skia reads into 8-bit RGB. Grayscale, palette,
/// CMYK and 16-bit images are converted to RGB; alpha is dropped without compositing (as PIL's <c>convert("RGB")</c>);
/// embedded colour profiles are ignored (as PIL does); the EXIF orientation is applied unless turned off.
/// When the caller says how many pixels it needs, JPEGs are decoded at a reduced scale (libjpeg's DCT scaling through
/// <see cref="SKCodec.GetScaledDimensions(float)"/>) that still has at least that many, which is much faster for large
/// photos; the antialiased resize then does the rest.
/// </summary>
public static class ImageDecoder
{
    /// <summary>Reads only the header: width and height as displayed (after EXIF orientation).</summary>
    public static (int Width, int Height) ReadSize(ImageSource source, bool applyOrientation = true)
    {
        using var data = source.OpenData();
        using var codec = CreateCodec(data, source);
        var (w, h) = (codec.Info.Width, codec.Info.Height);
        return applyOrientation && SwapsAxes(codec.EncodedOrigin) ? (h, w) : (w, h);
    }

    /// <summary>Decodes the whole image at full resolution.</summary>
    public static RgbImage Decode(ImageSource source, bool applyOrientation = true) => Decode(source, null, applyOrientation);

    /// <summary>Decodes a file at full resolution.</summary>
    public static RgbImage Decode(string path) => Decode(ImageSource.FromFile(path));

    /// <summary>
    /// Most pixels one decoded image may have (default 2^28 = 268,435,456, e.g. 16384×16384: 1 GB of RGBA while decoding).
    /// Larger images are refused with an <see cref="InvalidDataException"/> before any pixel buffer is allocated, like
    /// PIL's <c>Image.MAX_IMAGE_PIXELS</c>. Raise it for very large images, at most <see cref="int.MaxValue"/> / 4.
    /// </summary>
    public static long MaxPixels
    {
        get => Volatile.Read(ref _maxPixels);
        set => Volatile.Write(ref _maxPixels, value is > 0 and <= int.MaxValue / 4
            ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, $"MaxPixels must be between 1 and {int.MaxValue / 4}."));
    }

    private static long _maxPixels = 1L << 28;

    /// <summary>
    /// Images above this many pixels are first decoded at a small scale (JPEG, WebP, GIF) or row by row into one row
    /// buffer (BMP, WBMP) to check that their data is there, before the full buffer is allocated: a small truncated file
    /// whose header claims a large size then fails without allocating for the claim.
    /// </summary>
    internal const long ProbeAbovePixels = 1L << 22;

    /// <summary>
    /// Most pixels per encoded byte a format can hold: GIF's LZW emits at most one 12-bit code per string of at most
    /// 4,096 pixels (2,731 pixels per byte; the whole canvas is counted, including what lies outside the first frame);
    /// PNG's deflate compresses at most 1,032:1 and a 1-bit pixel takes 1/8 byte (8,256 pixels per byte). Formats whose
    /// compression is not bounded (WebP lossless can spend zero bits on a pixel, arithmetic-coded JPEG, BMP RLE) are
    /// checked by <see cref="ProbeAbovePixels"/> instead.
    /// </summary>
    private static double MaxPixelsPerByte(SKEncodedImageFormat format) => format switch
    {
        SKEncodedImageFormat.Gif => 4096,
        SKEncodedImageFormat.Png => 8 * 1040,
        _ => double.PositiveInfinity,
    };

    /// <summary>
    /// Decodes <paramref name="source"/>; <paramref name="minScale"/>, given the displayed full size, returns the smallest
    /// scale (≤ 1) the caller can accept; the decoder picks the smallest scale it supports that is not below it.
    /// </summary>
    public static RgbImage Decode(ImageSource source, Func<int, int, double>? minScale, bool applyOrientation = true)
    {
        using var data = source.OpenData();
        using var codec = CreateCodec(data, source);
        var origin = applyOrientation ? codec.EncodedOrigin : SKEncodedOrigin.TopLeft;
        var full = codec.Info;
        CheckClaimedSize(codec, full, data!.Size, source);
        var (dispW, dispH) = SwapsAxes(origin) ? (full.Height, full.Width) : (full.Width, full.Height);
        var size = new SKSizeI(full.Width, full.Height);
        var need = minScale?.Invoke(dispW, dispH) ?? 1.0;
        if (codec.EncodedFormat == SKEncodedImageFormat.Jpeg)
        {
            if (need < 1)
            {
                for (var k = 1; k < 8; k++)
                {
                    var s = k / 8f;
                    if (s < need) continue;
                    var d = codec.GetScaledDimensions(s);
                    if (d.Width < full.Width && d.Width >= full.Width * need - 1e-9 && d.Height >= full.Height * need - 1e-9)
                    {
                        size = d;
                        break;
                    }
                }
            }
        }
        long maxPixels = MaxPixels;
        if (size.Width <= 0 || size.Height <= 0 || (long)size.Width * size.Height > maxPixels)
            throw new InvalidDataException($"Cannot decode image {source}: its header claims {size.Width}×{size.Height} pixels; at most {maxPixels} are decoded (ImageDecoder.MaxPixels raises the limit).");
        var alpha = full.AlphaType == SKAlphaType.Opaque ? SKAlphaType.Opaque : SKAlphaType.Unpremul;
        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, alpha);
        if ((long)size.Width * size.Height > ProbeAbovePixels) ProbeData(codec, info, source);
        // BytesSize64, not BytesSize: the int overflows above 2^29 pixels (a GIF claiming 28322×40586 once got a
        // 303 MB buffer for 4.6 GB of pixels, and Skia wrote past its end).
        var rgba = new byte[checked((int)info.BytesSize64)];
        var handle = GCHandle.Alloc(rgba, GCHandleType.Pinned);
        SKCodecResult result;
        try
        {
            result = codec.GetPixels(info, handle.AddrOfPinnedObject());
        }
        finally
        {
            handle.Free();
        }
        if (result != SKCodecResult.Success)
            throw new InvalidDataException($"Cannot decode image {source}: {result} (the file is truncated or corrupt; re-export or remove it).");
        var rgb = DropAlpha(rgba, size.Width * size.Height);
        var img = new RgbImage(size.Width, size.Height, rgb, full.Width, full.Height);
        return Orient(img, origin);
    }

    /// <summary>Refuses sizes the encoded data cannot hold, from the header alone (no pixel is decoded).</summary>
    private static void CheckClaimedSize(SKCodec codec, SKImageInfo full, long encodedBytes, ImageSource source)
    {
        if (full.Width <= 0 || full.Height <= 0)
            throw new InvalidDataException($"Cannot decode image {source}: its header claims {full.Width}×{full.Height} pixels.");
        var format = codec.EncodedFormat;
        // A GIF without an image descriptor has a screen size but nothing to draw.
        if (format == SKEncodedImageFormat.Gif && codec.FrameCount == 0)
            throw new InvalidDataException($"Cannot decode image {source}: the GIF has no image frame (the file is truncated or corrupt; re-export or remove it).");
        long pixels = (long)full.Width * full.Height;
        double perByte = MaxPixelsPerByte(format);
        if (pixels > perByte * encodedBytes)
            throw new InvalidDataException(
                $"Cannot decode image {source}: its header claims {full.Width}×{full.Height} pixels, but a {format} file of {encodedBytes} bytes " +
                $"holds at most {perByte * encodedBytes:F0} (the file is truncated or corrupt; re-export or remove it).");
    }

    /// <summary>
    /// Checks that a large image's data is all there before the full buffer is allocated: a decode at 1/8 scale where the
    /// codec scales (JPEG: libjpeg's DCT scaling; WebP; GIF), else a row-by-row decode into one row (BMP, WBMP). Formats
    /// that can do neither (PNG) are bounded by <see cref="MaxPixelsPerByte"/> only.
    /// </summary>
    private static void ProbeData(SKCodec codec, SKImageInfo info, ImageSource source)
    {
        var full = codec.Info;
        var small = codec.GetScaledDimensions(1 / 8f);
        SKCodecResult result;
        string how;
        if (small.Width > 0 && small.Height > 0 && (long)small.Width * small.Height * 16 <= (long)full.Width * full.Height)
        {
            how = $"decoded at {small.Width}×{small.Height}";
            var probe = new byte[checked((int)info.WithSize(small.Width, small.Height).BytesSize64)];
            var handle = GCHandle.Alloc(probe, GCHandleType.Pinned);
            try { result = codec.GetPixels(info.WithSize(small.Width, small.Height), handle.AddrOfPinnedObject()); }
            finally { handle.Free(); }
        }
        else
        {
            var rows = info.WithSize(full.Width, full.Height);
            if (codec.StartScanlineDecode(rows) != SKCodecResult.Success) return;
            how = "decoded row by row";
            var row = new byte[rows.RowBytes];
            var handle = GCHandle.Alloc(row, GCHandleType.Pinned);
            int done = 0;
            try
            {
                while (done < rows.Height && codec.GetScanlines(handle.AddrOfPinnedObject(), 1, rows.RowBytes) == 1) done++;
            }
            finally { handle.Free(); }
            result = done == rows.Height ? SKCodecResult.Success : SKCodecResult.IncompleteInput;
            how += $" ({done} of {rows.Height} rows)";
        }
        if (result != SKCodecResult.Success)
            throw new InvalidDataException($"Cannot decode image {source}: its header claims {full.Width}×{full.Height} pixels but the data is not all there " +
                $"({result} when {how}; the file is truncated or corrupt; re-export or remove it).");
    }

    private static unsafe byte[] DropAlpha(byte[] rgba, int pixels)
    {
        var rgb = GC.AllocateUninitializedArray<byte>(pixels * 3);
        fixed (byte* s0 = rgba)
        fixed (byte* d0 = rgb)
        {
            byte* s = s0, d = d0, end = d0 + pixels * 3;
            // Copy 4 bytes per pixel (the 4th is overwritten by the next pixel); the last pixel byte by byte.
            for (; d < end - 3; s += 4, d += 3) *(uint*)d = *(uint*)s;
            if (pixels > 0) { d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; }
        }
        return rgb;
    }

    private static SKCodec CreateCodec(SKData? data, ImageSource source)
    {
        if (data is null)
            throw new InvalidDataException($"Cannot read image {source}: the file is empty or unreadable.");
        var codec = SKCodec.Create(data);
        if (codec is null)
            throw new InvalidDataException($"Cannot decode image {source}: unrecognized or corrupt data (not an image in a supported format: JPEG, PNG, WebP, BMP, GIF, ICO, WBMP).");
        return codec;
    }

    private static bool SwapsAxes(SKEncodedOrigin o) =>
        o is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;

    /// <summary>Applies an EXIF orientation so the image is stored as it should be displayed.</summary>
    internal static RgbImage Orient(RgbImage img, SKEncodedOrigin origin)
    {
        if (origin == SKEncodedOrigin.TopLeft) return img;
        int sw = img.Width, sh = img.Height;
        var swap = SwapsAxes(origin);
        int ow = swap ? sh : sw, oh = swap ? sw : sh;
        var src = img.Pixels;
        var dst = new byte[src.Length];
        for (var oy = 0; oy < oh; oy++)
        {
            for (var ox = 0; ox < ow; ox++)
            {
                var (sx, sy) = origin switch
                {
                    SKEncodedOrigin.TopRight => (sw - 1 - ox, oy),
                    SKEncodedOrigin.BottomRight => (sw - 1 - ox, sh - 1 - oy),
                    SKEncodedOrigin.BottomLeft => (ox, sh - 1 - oy),
                    SKEncodedOrigin.LeftTop => (oy, ox),
                    SKEncodedOrigin.RightTop => (oy, sh - 1 - ox),
                    SKEncodedOrigin.RightBottom => (sw - 1 - oy, sh - 1 - ox),
                    SKEncodedOrigin.LeftBottom => (sw - 1 - oy, ox),
                    _ => (ox, oy),
                };
                var s = (sy * sw + sx) * 3;
                var d = (oy * ow + ox) * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
        int fw = swap ? img.SourceHeight : img.SourceWidth, fh = swap ? img.SourceWidth : img.SourceHeight;
        return new RgbImage(ow, oh, dst, fw, fh);
    }
}

/// <summary>Where an image's encoded bytes are: a file, or bytes already in memory (Parquet rows, archives).</summary>
public sealed class ImageSource
{
    private readonly string? _path;
    private readonly ReadOnlyMemory<byte> _bytes;
    private readonly string _name;

    private ImageSource(string? path, ReadOnlyMemory<byte> bytes, string name)
    {
        _path = path;
        _bytes = bytes;
        _name = name;
    }

    /// <summary>An image file.</summary>
    public static ImageSource FromFile(string path) => new(path, default, path);

    /// <summary>Encoded image bytes; <paramref name="name"/> is used in messages.</summary>
    public static ImageSource FromBytes(ReadOnlyMemory<byte> bytes, string name) => new(null, bytes, name);

    /// <summary>The file path, or null for in-memory bytes.</summary>
    public string? Path => _path;

    /// <summary>Reads all encoded bytes.</summary>
    public byte[] ReadAllBytes() => _path is not null ? File.ReadAllBytes(_path) : _bytes.ToArray();

    internal SKData? OpenData()
    {
        if (_path is not null)
        {
            if (!File.Exists(_path)) throw new FileNotFoundException($"Image file not found: {_path}", _path);
            return SKData.Create(_path);
        }
        return _bytes.IsEmpty ? null : SKData.CreateCopy(_bytes.Span);
    }

    /// <inheritdoc />
    public override string ToString() => _name;
}
