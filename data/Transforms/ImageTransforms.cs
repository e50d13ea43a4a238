namespace ModelZoo.Data;

/// <summary>An image-to-image step of a vision pipeline.</summary>
public interface IImageTransform : ITransform<RgbImage, RgbImage>;

/// <summary>A first step that can tell the decoder how much resolution it needs (so large JPEGs decode at a reduced
/// scale) before it runs. Random parameters are drawn once in <see cref="Plan"/>.</summary>
internal interface IDecodePlanner
{
    /// <summary>Draws the step's parameters for an image of the given full size; returns the smallest decode scale that
    /// still gives the step all the pixels it needs.</summary>
    double Plan(int width, int height, Random rng, out object? plan);

    /// <summary>Runs the step with the parameters from <see cref="Plan"/> on an image decoded at any scale ≥ the one asked.</summary>
    RgbImage Apply(RgbImage image, object? plan);
}

/// <summary>
/// Resizes so the shorter side equals <see cref="Size"/> (the longer side is truncated as torchvision computes it), or to
/// an exact <see cref="Height"/>×<see cref="Width"/>. Bilinear and bicubic antialias when downscaling, exactly as PIL.
/// </summary>
public sealed class Resize : IImageTransform, IDecodePlanner
{
    /// <summary>Resize the shorter side to <paramref name="size"/>.</summary>
    public Resize(int size, Interpolation interpolation = Interpolation.Bilinear)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), "Resize size must be positive.");
        Size = size;
        Interpolation = interpolation;
    }

    /// <summary>Resize to exactly <paramref name="height"/>×<paramref name="width"/>.</summary>
    public Resize(int height, int width, Interpolation interpolation = Interpolation.Bilinear)
    {
        if (height <= 0 || width <= 0) throw new ArgumentOutOfRangeException(nameof(height), "Resize size must be positive.");
        Height = height;
        Width = width;
        Interpolation = interpolation;
    }

    /// <summary>Target shorter side (0 when resizing to an exact size).</summary>
    public int Size { get; }

    /// <summary>Exact target height (0 when resizing the shorter side).</summary>
    public int Height { get; }

    /// <summary>Exact target width (0 when resizing the shorter side).</summary>
    public int Width { get; }

    /// <summary>Resampling filter.</summary>
    public Interpolation Interpolation { get; }

    /// <summary>Output size for a source of the given size (torchvision's rule: long side = int(size × long / short)).</summary>
    public (int Width, int Height) OutputSize(int w, int h)
    {
        if (Size == 0) return (Width, Height);
        if (w <= h) return (Size, (int)((long)Size * h / w));
        return ((int)((long)Size * w / h), Size);
    }

    /// <inheritdoc />
    public RgbImage Apply(RgbImage image, Random rng) => ((IDecodePlanner)this).Apply(image, null);

    double IDecodePlanner.Plan(int width, int height, Random rng, out object? plan)
    {
        plan = null;
        var (ow, oh) = OutputSize(width, height);
        return Math.Max((double)ow / width, (double)oh / height);
    }

    RgbImage IDecodePlanner.Apply(RgbImage image, object? plan)
    {
        var (ow, oh) = OutputSize(image.SourceWidth, image.SourceHeight);
        if (ow == image.Width && oh == image.Height) return image.AsSource();
        return PilResampler.Resize(image, 0, 0, image.Width, image.Height, (0, 0, image.Width, image.Height), ow, oh, Interpolation);
    }
}

/// <summary>Crops the center (torchvision's rounding: top = round((H − h) / 2), half to even); pads with zeros when the
/// image is smaller than the crop.</summary>
/// <param name="Height">Crop height.</param>
/// <param name="Width">Crop width.</param>
public sealed record CenterCrop(int Height, int Width) : IImageTransform
{
    /// <summary>A square crop.</summary>
    public CenterCrop(int size) : this(size, size) { }

    /// <inheritdoc />
    public RgbImage Apply(RgbImage image, Random rng)
    {
        if (image.Width == Width && image.Height == Height) return image;
        var top = (int)Math.Round((image.Height - Height) / 2.0, MidpointRounding.ToEven);
        var left = (int)Math.Round((image.Width - Width) / 2.0, MidpointRounding.ToEven);
        return image.Crop(left, top, Width, Height);
    }
}

/// <summary>
/// torchvision's RandomResizedCrop: a crop with random area fraction in <see cref="Scale"/> and aspect ratio in
/// <see cref="Ratio"/> (log-uniform), resized to <see cref="Size"/>×<see cref="Size"/>; falls back to a center crop.
/// </summary>
public sealed class RandomResizedCrop(int size, (double Min, double Max)? scale = null, (double Min, double Max)? ratio = null,
    Interpolation interpolation = Interpolation.Bilinear) : IImageTransform, IDecodePlanner
{
    /// <summary>Output side.</summary>
    public int Size { get; } = size;

    /// <summary>Area fraction range.</summary>
    public (double Min, double Max) Scale { get; } = scale ?? (0.08, 1.0);

    /// <summary>Aspect-ratio range.</summary>
    public (double Min, double Max) Ratio { get; } = ratio ?? (3.0 / 4, 4.0 / 3);

    /// <summary>Resampling filter.</summary>
    public Interpolation Interpolation { get; } = interpolation;

    internal (int Top, int Left, int Height, int Width) Sample(int width, int height, Random rng)
    {
        var area = (double)width * height;
        var logR0 = Math.Log(Ratio.Min);
        var logR1 = Math.Log(Ratio.Max);
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var target = area * (Scale.Min + rng.NextDouble() * (Scale.Max - Scale.Min));
            var aspect = Math.Exp(logR0 + rng.NextDouble() * (logR1 - logR0));
            var w = (int)Math.Round(Math.Sqrt(target * aspect), MidpointRounding.ToEven);
            var h = (int)Math.Round(Math.Sqrt(target / aspect), MidpointRounding.ToEven);
            if (w > 0 && w <= width && h > 0 && h <= height)
                return (rng.Next(height - h + 1), rng.Next(width - w + 1), h, w);
        }
        var inRatio = (double)width / height;
        int cw, ch;
        if (inRatio < Ratio.Min) { cw = width; ch = (int)Math.Round(cw / Ratio.Min, MidpointRounding.ToEven); }
        else if (inRatio > Ratio.Max) { ch = height; cw = (int)Math.Round(ch * Ratio.Max, MidpointRounding.ToEven); }
        else { cw = width; ch = height; }
        return ((height - ch) / 2, (width - cw) / 2, ch, cw);
    }

    /// <inheritdoc />
    public RgbImage Apply(RgbImage image, Random rng)
    {
        var p = Sample(image.SourceWidth, image.SourceHeight, rng);
        return ((IDecodePlanner)this).Apply(image, p);
    }

    double IDecodePlanner.Plan(int width, int height, Random rng, out object? plan)
    {
        var p = Sample(width, height, rng);
        plan = p;
        return Math.Max((double)Size / p.Width, (double)Size / p.Height);
    }

    RgbImage IDecodePlanner.Apply(RgbImage image, object? plan)
    {
        var (top, left, h, w) = ((int, int, int, int))plan!;
        if (!image.IsDownscaled)
            return PilResampler.Resize(image, left, top, w, h, (0, 0, w, h), Size, Size, Interpolation);
        var sx = (double)image.Width / image.SourceWidth;
        var sy = (double)image.Height / image.SourceHeight;
        return PilResampler.Resize(image, 0, 0, image.Width, image.Height, (left * sx, top * sy, (left + w) * sx, (top + h) * sy), Size, Size, Interpolation);
    }
}

/// <summary>Mirrors left-right with probability <see cref="P"/>.</summary>
/// <param name="P">Probability.</param>
public sealed record RandomHorizontalFlip(double P = 0.5) : IImageTransform
{
    /// <inheritdoc />
    public RgbImage Apply(RgbImage image, Random rng) => rng.NextDouble() < P ? Pixels.FlipHorizontal(image) : image;
}

/// <summary>Mirrors top-bottom with probability <see cref="P"/>.</summary>
/// <param name="P">Probability.</param>
public sealed record RandomVerticalFlip(double P = 0.5) : IImageTransform
{
    /// <inheritdoc />
    public RgbImage Apply(RgbImage image, Random rng) => rng.NextDouble() < P ? Pixels.FlipVertical(image) : image;
}

/// <summary>Converts to grayscale (ITU-R 601-2 luma, as PIL's "L"), kept as three equal channels.</summary>
public sealed record Grayscale : IImageTransform
{
    /// <inheritdoc />
    public RgbImage Apply(RgbImage image, Random rng) => Pixels.ToGray(image);
}

/// <summary>Converts to grayscale with probability <see cref="P"/>.</summary>
/// <param name="P">Probability.</param>
public sealed record RandomGrayscale(double P = 0.1) : IImageTransform
{
    /// <inheritdoc />
    public RgbImage Apply(RgbImage image, Random rng) => rng.NextDouble() < P ? Pixels.ToGray(image) : image;
}

/// <summary>
/// Random brightness, contrast, saturation and hue changes in random order (torchvision's ColorJitter): each factor is
/// drawn uniformly from [max(0, 1 − v), 1 + v] (hue: a shift in [−h, h] of a full turn, h ≤ 0.5).
/// </summary>
/// <param name="Brightness">Brightness strength.</param>
/// <param name="Contrast">Contrast strength.</param>
/// <param name="Saturation">Saturation strength.</param>
/// <param name="Hue">Hue strength (≤ 0.5).</param>
public sealed record ColorJitter(double Brightness = 0.4, double Contrast = 0.4, double Saturation = 0.4, double Hue = 0) : IImageTransform
{
    /// <inheritdoc />
    public RgbImage Apply(RgbImage image, Random rng)
    {
        int[] order = [0, 1, 2, 3];
        rng.Shuffle(order);
        double Factor(double v) => Math.Max(0, 1 - v) + rng.NextDouble() * (1 + v - Math.Max(0, 1 - v));
        var b = Brightness > 0 ? Factor(Brightness) : (double?)null;
        var c = Contrast > 0 ? Factor(Contrast) : (double?)null;
        var s = Saturation > 0 ? Factor(Saturation) : (double?)null;
        var h = Hue > 0 ? -Hue + rng.NextDouble() * 2 * Hue : (double?)null;
        foreach (var o in order)
        {
            image = o switch
            {
                0 when b is { } bf => Pixels.AdjustBrightness(image, bf),
                1 when c is { } cf => Pixels.AdjustContrast(image, cf),
                2 when s is { } sf => Pixels.AdjustSaturation(image, sf),
                3 when h is { } hf => Pixels.AdjustHue(image, hf),
                _ => image,
            };
        }
        return image;
    }
}

/// <summary>Runs the steps in order.</summary>
public sealed class Compose(params IImageTransform[] steps) : IImageTransform
{
    /// <summary>The steps.</summary>
    public IReadOnlyList<IImageTransform> Steps { get; } = steps;

    /// <inheritdoc />
    public RgbImage Apply(RgbImage image, Random rng)
    {
        foreach (var s in Steps) image = s.Apply(image, rng);
        return image;
    }
}
