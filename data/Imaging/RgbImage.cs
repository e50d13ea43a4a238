namespace ModelZoo.Data;

/// <summary>
/// A decoded image: 8-bit RGB, row-major, interleaved (H×W×3), the layout PIL's "RGB" mode and torchvision's PIL path use.
/// </summary>
public sealed class RgbImage
{
    /// <summary>Creates an image over <paramref name="pixels"/> (length width×height×3, not copied).</summary>
    public RgbImage(int width, int height, byte[] pixels, int sourceWidth = 0, int sourceHeight = 0)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"Image size must be positive, got {width}x{height}.");
        if (pixels.Length != width * height * 3)
            throw new ArgumentException($"Expected {width * height * 3} bytes for a {width}x{height} RGB image, got {pixels.Length}.");
        Width = width;
        Height = height;
        Pixels = pixels;
        SourceWidth = sourceWidth > 0 ? sourceWidth : width;
        SourceHeight = sourceHeight > 0 ? sourceHeight : height;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Pixels, H×W×3 bytes.</summary>
    public byte[] Pixels { get; }

    /// <summary>Width of the full-resolution image this was decoded from (differs from <see cref="Width"/> after a
    /// decode-time downscale); output sizes are computed from it so they do not depend on the decode scale.</summary>
    public int SourceWidth { get; }

    /// <summary>Height of the full-resolution image this was decoded from.</summary>
    public int SourceHeight { get; }

    /// <summary>True when the decoder produced fewer pixels than the source has.</summary>
    public bool IsDownscaled => Width != SourceWidth || Height != SourceHeight;

    /// <summary>A new image with the same pixels at full resolution (size bookkeeping only).</summary>
    internal RgbImage AsSource() => IsDownscaled ? new RgbImage(Width, Height, Pixels) : this;

    /// <summary>Pixel (x, y) channel c.</summary>
    public byte this[int x, int y, int c] => Pixels[(y * Width + x) * 3 + c];

    /// <summary>Copies the rectangle at (<paramref name="left"/>, <paramref name="top"/>) of the given size; parts outside
    /// the image are filled with zeros (as PIL's crop).</summary>
    public RgbImage Crop(int left, int top, int width, int height)
    {
        var dst = new byte[width * height * 3];
        var x0 = Math.Max(0, left);
        var x1 = Math.Min(Width, left + width);
        if (x1 > x0)
        {
            for (var y = 0; y < height; y++)
            {
                var sy = top + y;
                if (sy < 0 || sy >= Height) continue;
                Buffer.BlockCopy(Pixels, (sy * Width + x0) * 3, dst, (y * width + (x0 - left)) * 3, (x1 - x0) * 3);
            }
        }
        return new RgbImage(width, height, dst);
    }

    /// <summary>Creates an image from a grayscale buffer (H×W bytes), replicating the channel.</summary>
    public static RgbImage FromGray(int width, int height, ReadOnlySpan<byte> gray)
    {
        var p = new byte[width * height * 3];
        for (var i = 0; i < width * height; i++) p[3 * i] = p[3 * i + 1] = p[3 * i + 2] = gray[i];
        return new RgbImage(width, height, p);
    }
}
