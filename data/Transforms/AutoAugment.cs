namespace ModelZoo.Data;

internal enum AugOp { Identity, ShearX, ShearY, TranslateX, TranslateY, Rotate, Brightness, Color, Contrast, Sharpness, Posterize, Solarize, AutoContrast, Equalize }

internal static class AugOps
{
    public static readonly AugOp[] All = Enum.GetValues<AugOp>();

    public static double Linspace(double a, double b, int n, int i) => n == 1 ? a : a + (b - a) * i / (n - 1);

    /// <summary>torchvision's _apply_op for PIL images (nearest interpolation, fill 0).</summary>
    public static RgbImage Apply(RgbImage img, AugOp op, double mag) => op switch
    {
        AugOp.ShearX => Pixels.AffineNearest(img, Pixels.InverseAffine(0, 0, 0, 0, 0, 1, Math.Atan(mag) * 180 / Math.PI, 0)),
        AugOp.ShearY => Pixels.AffineNearest(img, Pixels.InverseAffine(0, 0, 0, 0, 0, 1, 0, Math.Atan(mag) * 180 / Math.PI)),
        AugOp.TranslateX => Pixels.AffineNearest(img, Pixels.InverseAffine(img.Width * 0.5, img.Height * 0.5, 0, (int)mag, 0, 1, 0, 0)),
        AugOp.TranslateY => Pixels.AffineNearest(img, Pixels.InverseAffine(img.Width * 0.5, img.Height * 0.5, 0, 0, (int)mag, 1, 0, 0)),
        AugOp.Rotate => Pixels.Rotate(img, mag),
        AugOp.Brightness => Pixels.AdjustBrightness(img, 1 + mag),
        AugOp.Color => Pixels.AdjustSaturation(img, 1 + mag),
        AugOp.Contrast => Pixels.AdjustContrast(img, 1 + mag),
        AugOp.Sharpness => Pixels.AdjustSharpness(img, 1 + mag),
        AugOp.Posterize => Pixels.Posterize(img, (int)mag),
        AugOp.Solarize => Pixels.Solarize(img, mag),
        AugOp.AutoContrast => Pixels.AutoContrast(img),
        AugOp.Equalize => Pixels.Equalize(img),
        _ => img,
    };

    public static bool Signed(AugOp op) => op is AugOp.ShearX or AugOp.ShearY or AugOp.TranslateX or AugOp.TranslateY or AugOp.Rotate
        or AugOp.Brightness or AugOp.Color or AugOp.Contrast or AugOp.Sharpness;
}

/// <summary>torchvision's RandAugment: <see cref="NumOps"/> random ops from the 14-op space at a fixed magnitude bin.</summary>
/// <param name="NumOps">Ops per image.</param>
/// <param name="Magnitude">Magnitude bin (0..NumBins−1).</param>
/// <param name="NumBins">Number of magnitude bins.</param>
public sealed record RandAugment(int NumOps = 2, int Magnitude = 9, int NumBins = 31) : IImageTransform
{
    internal static double MagnitudeOf(AugOp op, int bin, int nb, int w, int h) => op switch
    {
        AugOp.ShearX or AugOp.ShearY => AugOps.Linspace(0, 0.3, nb, bin),
        AugOp.TranslateX => AugOps.Linspace(0, 150.0 / 331 * w, nb, bin),
        AugOp.TranslateY => AugOps.Linspace(0, 150.0 / 331 * h, nb, bin),
        AugOp.Rotate => AugOps.Linspace(0, 30, nb, bin),
        AugOp.Brightness or AugOp.Color or AugOp.Contrast or AugOp.Sharpness => AugOps.Linspace(0, 0.9, nb, bin),
        AugOp.Posterize => 8 - (int)Math.Round(bin / ((nb - 1) / 4.0), MidpointRounding.ToEven),
        AugOp.Solarize => AugOps.Linspace(255, 0, nb, bin),
        _ => 0,
    };

    /// <inheritdoc />
    public RgbImage Apply(RgbImage image, Random rng)
    {
        for (var i = 0; i < NumOps; i++)
        {
            var op = AugOps.All[rng.Next(AugOps.All.Length)];
            var mag = MagnitudeOf(op, Magnitude, NumBins, image.Width, image.Height);
            if (AugOps.Signed(op) && rng.Next(2) == 1) mag = -mag;
            image = AugOps.Apply(image, op, mag);
        }
        return image;
    }
}

/// <summary>torchvision's TrivialAugmentWide: one random op at a random magnitude from the wide space.</summary>
/// <param name="NumBins">Number of magnitude bins.</param>
public sealed record TrivialAugmentWide(int NumBins = 31) : IImageTransform
{
    internal static double MagnitudeOf(AugOp op, int bin, int nb) => op switch
    {
        AugOp.ShearX or AugOp.ShearY => AugOps.Linspace(0, 0.99, nb, bin),
        AugOp.TranslateX or AugOp.TranslateY => AugOps.Linspace(0, 32, nb, bin),
        AugOp.Rotate => AugOps.Linspace(0, 135, nb, bin),
        AugOp.Brightness or AugOp.Color or AugOp.Contrast or AugOp.Sharpness => AugOps.Linspace(0, 0.99, nb, bin),
        AugOp.Posterize => 8 - (int)Math.Round(bin / ((nb - 1) / 6.0), MidpointRounding.ToEven),
        AugOp.Solarize => AugOps.Linspace(255, 0, nb, bin),
        _ => 0,
    };

    /// <inheritdoc />
    public RgbImage Apply(RgbImage image, Random rng)
    {
        var op = AugOps.All[rng.Next(AugOps.All.Length)];
        var mag = MagnitudeOf(op, rng.Next(NumBins), NumBins);
        if (AugOps.Signed(op) && rng.Next(2) == 1) mag = -mag;
        return AugOps.Apply(image, op, mag);
    }
}
