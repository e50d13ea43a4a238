namespace ModelZoo.Data;

/// <summary>How pixels become model input: scale to [0, <see cref="ValueRange"/>], reorder channels, subtract mean and
/// divide by std per channel (both given in the output channel order).</summary>
/// <param name="Mean">Per-channel mean.</param>
/// <param name="Std">Per-channel std.</param>
/// <param name="ValueRange">1 or 255.</param>
/// <param name="ChannelOrder">RGB or BGR output.</param>
/// <param name="Grayscale">Emit one luma channel instead of three.</param>
public sealed record Normalize(float[] Mean, float[] Std, float ValueRange = 1f, ChannelOrder ChannelOrder = ChannelOrder.Rgb, bool Grayscale = false)
{
    /// <summary>No mean/std: values scaled to [0, 1] (torchvision's ToTensor).</summary>
    public static Normalize None { get; } = new([0f, 0f, 0f], [1f, 1f, 1f]);

    /// <summary>The normalization a set of weights states.</summary>
    public static Normalize From(Preprocessing p) => new(p.Mean, p.Std, p.ValueRange, p.ChannelOrder);

    /// <summary>HWC uint8 → CHW float: (pixel / 255 × range − mean) / std.</summary>
    public ImageTensor ToTensor(RgbImage img, int label)
    {
        int w = img.Width, h = img.Height, n = w * h;
        var channels = Grayscale ? 1 : 3;
        if (Mean.Length < channels || Std.Length < channels)
            throw new ArgumentException($"Normalize needs {channels} mean/std values, got {Mean.Length}/{Std.Length}.");
        var data = new float[channels * n];
        var s = img.Pixels;
        if (Grayscale)
        {
            var a = ValueRange / 255f / Std[0];
            var b = -Mean[0] / Std[0];
            for (int i = 0, p = 0; i < n; i++, p += 3) data[i] = Pixels.Luma(s[p], s[p + 1], s[p + 2]) * a + b;
            return new ImageTensor(data, 1, h, w, label);
        }
        Span<float> sc = stackalloc float[3];
        Span<float> of = stackalloc float[3];
        Span<int> srcC = stackalloc int[3];
        for (var c = 0; c < 3; c++)
        {
            srcC[c] = ChannelOrder == ChannelOrder.Bgr ? 2 - c : c;
            sc[c] = ValueRange / 255f / Std[c];
            of[c] = -Mean[c] / Std[c];
        }
        for (var c = 0; c < 3; c++)
        {
            var plane = data.AsSpan(c * n, n);
            var a = sc[c];
            var b = of[c];
            for (int i = 0, p = srcC[c]; i < n; i++, p += 3) plane[i] = s[p] * a + b;
        }
        return new ImageTensor(data, 3, h, w, label);
    }
}

/// <summary>torchvision's RandomErasing on a normalized C×H×W tensor: with probability <see cref="P"/>, a rectangle with
/// area fraction in <see cref="Scale"/> and aspect ratio in <see cref="Ratio"/> is set to <see cref="Value"/>.</summary>
/// <param name="P">Probability.</param>
/// <param name="Scale">Area fraction range.</param>
/// <param name="Ratio">Aspect ratio range (log-uniform).</param>
/// <param name="Value">Fill value.</param>
public sealed record RandomErasing(double P = 0.5, (double Min, double Max)? Scale = null, (double Min, double Max)? Ratio = null, float Value = 0)
    : ITransform<ImageTensor, ImageTensor>
{
    /// <inheritdoc />
    public ImageTensor Apply(ImageTensor t, Random rng)
    {
        if (SampleBox(t.Height, t.Width, rng) is not { } box) return t;
        var data = (float[])t.Data.Clone();
        for (var c = 0; c < t.Channels; c++)
            for (var y = box.Top; y < box.Top + box.Height; y++)
                data.AsSpan((c * t.Height + y) * t.Width + box.Left, box.Width).Fill(Value);
        return t with { Data = data };
    }

    /// <summary>Draws whether to erase and which rectangle (null: leave the image as it is); shared with the batch version.</summary>
    internal (int Top, int Left, int Height, int Width)? SampleBox(int height, int width, Random rng)
    {
        if (rng.NextDouble() >= P) return null;
        var scale = Scale ?? (0.02, 0.33);
        var ratio = Ratio ?? (0.3, 3.3);
        var area = (double)height * width;
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var erase = area * (scale.Min + rng.NextDouble() * (scale.Max - scale.Min));
            var aspect = Math.Exp(Math.Log(ratio.Min) + rng.NextDouble() * (Math.Log(ratio.Max) - Math.Log(ratio.Min)));
            var h = (int)Math.Round(Math.Sqrt(erase * aspect), MidpointRounding.ToEven);
            var w = (int)Math.Round(Math.Sqrt(erase / aspect), MidpointRounding.ToEven);
            if (!(h < height && w < width)) continue;
            return (rng.Next(height - h + 1), rng.Next(width - w + 1), h, w);
        }
        return null;
    }
}

/// <summary>
/// torchvision's <c>RandomCrop(size, padding)</c> with edge padding: the image is padded by <see cref="Padding"/> pixels
/// on every side (repeating the border) and a window of the original size is cut at a random offset, so the content
/// shifts by up to <see cref="Padding"/> pixels each way. The classic augmentation for small images (CIFAR, MNIST).
/// </summary>
/// <param name="Padding">Largest shift in pixels.</param>
public sealed record RandomShift(int Padding) : ITransform<ImageTensor, ImageTensor>
{
    /// <inheritdoc />
    public ImageTensor Apply(ImageTensor t, Random rng)
    {
        int dy = rng.Next(-Padding, Padding + 1), dx = rng.Next(-Padding, Padding + 1);
        if (dy == 0 && dx == 0) return t;
        var data = new float[t.Data.Length];
        for (var c = 0; c < t.Channels; c++)
            for (var y = 0; y < t.Height; y++)
            {
                var sy = Math.Clamp(y + dy, 0, t.Height - 1);
                for (var x = 0; x < t.Width; x++)
                    data[(c * t.Height + y) * t.Width + x] = t.Data[(c * t.Height + sy) * t.Width + Math.Clamp(x + dx, 0, t.Width - 1)];
            }
        return t with { Data = data };
    }

    /// <summary>The shift for an image side: an eighth of it (4 px at 32 px, 3 px at 28 px), at least 1.</summary>
    public static RandomShift ForSize(int side) => new(Math.Max(1, (int)Math.Round(side / 8.0)));
}

/// <summary>
/// A complete image pipeline: decode (at a reduced JPEG scale when the first step needs fewer pixels), image steps,
/// ToTensor + normalize, then tensor steps. Deterministic for a given random generator.
/// </summary>
public sealed class VisionPipeline : ITransform<ImageSample, ImageTensor>, ITransform<RgbImage, ImageTensor>
{
    /// <summary>Creates a pipeline.</summary>
    public VisionPipeline(IEnumerable<IImageTransform> steps, Normalize normalize, IEnumerable<ITransform<ImageTensor, ImageTensor>>? tensorSteps = null,
        bool downscaleJpeg = true, bool applyExifOrientation = true)
    {
        Steps = steps.ToArray();
        Normalize = normalize;
        TensorSteps = tensorSteps?.ToArray() ?? [];
        DownscaleJpeg = downscaleJpeg;
        ApplyExifOrientation = applyExifOrientation;
    }

    /// <summary>Image steps, in order.</summary>
    public IReadOnlyList<IImageTransform> Steps { get; }

    /// <summary>Normalization.</summary>
    public Normalize Normalize { get; }

    /// <summary>Steps on the normalized tensor (RandomErasing).</summary>
    public IReadOnlyList<ITransform<ImageTensor, ImageTensor>> TensorSteps { get; }

    /// <summary>Whether large JPEGs are decoded at a reduced scale (off: bit-exact with a full decode).</summary>
    public bool DownscaleJpeg { get; init; }

    /// <summary>Whether the EXIF orientation is applied (torchvision's loader does not).</summary>
    public bool ApplyExifOrientation { get; init; }

    /// <summary>A copy with decode-time downscaling switched on or off.</summary>
    public VisionPipeline WithDownscale(bool on) => new(Steps, Normalize, TensorSteps, on, ApplyExifOrientation);

    /// <inheritdoc />
    public ImageTensor Apply(ImageSample sample, Random rng)
    {
        var img = Decode(sample.Source, rng, out var planned);
        return Finish(img, sample.Label, rng, planned);
    }

    /// <inheritdoc />
    public ImageTensor Apply(RgbImage image, Random rng) => Apply(image, 0, rng);

    /// <summary>Runs on an already decoded image.</summary>
    public ImageTensor Apply(RgbImage image, int label, Random rng) => Finish(image, label, rng, planned: false);

    /// <summary>Decodes and runs the image steps only (no normalization), e.g. to look at augmentations.</summary>
    public RgbImage ApplyImage(ImageSample sample, Random rng)
    {
        var img = Decode(sample.Source, rng, out var planned);
        for (var i = planned ? 1 : 0; i < Steps.Count; i++) img = Steps[i].Apply(img, rng);
        return img;
    }

    private RgbImage Decode(ImageSource source, Random rng, out bool planned)
    {
        if (Steps.Count > 0 && Steps[0] is IDecodePlanner planner)
        {
            object? plan = null;
            var img = ImageDecoder.Decode(source, (w, h) =>
            {
                var s = planner.Plan(w, h, rng, out plan);
                return DownscaleJpeg ? s : 1.0;
            }, ApplyExifOrientation);
            planned = true;
            return planner.Apply(img, plan);
        }
        planned = false;
        return ImageDecoder.Decode(source, ApplyExifOrientation);
    }

    private ImageTensor Finish(RgbImage img, int label, Random rng, bool planned)
    {
        for (var i = planned ? 1 : 0; i < Steps.Count; i++) img = Steps[i].Apply(img, rng);
        var t = Normalize.ToTensor(img, label);
        foreach (var s in TensorSteps) t = s.Apply(t, rng);
        return t;
    }
}

/// <summary>Augmentations to add to a training pipeline.</summary>
public static class Augment
{
    /// <summary>torchvision's RandAugment.</summary>
    public static IImageTransform RandAugment(int numOps = 2, int magnitude = 9) => new RandAugment(numOps, magnitude);

    /// <summary>torchvision's TrivialAugmentWide.</summary>
    public static IImageTransform TrivialAugment() => new TrivialAugmentWide();

    /// <summary>Color jitter.</summary>
    public static IImageTransform ColorJitter(double brightness = 0.4, double contrast = 0.4, double saturation = 0.4, double hue = 0) =>
        new ColorJitter(brightness, contrast, saturation, hue);

    /// <summary>Vertical flips (for aerial/medical images).</summary>
    public static IImageTransform VerticalFlip(double p = 0.5) => new RandomVerticalFlip(p);
}

/// <summary>Pipelines built from the weights' own <see cref="Preprocessing"/>.</summary>
public static class VisionTransforms
{
    /// <summary>
    /// Evaluation: resize the shorter side to <see cref="Preprocessing.ResizeSize"/>, center-crop
    /// <see cref="Preprocessing.CropSize"/> (or resize straight to the crop when ResizeSize is 0), normalize.
    /// </summary>
    public static VisionPipeline Eval(Preprocessing p, bool downscaleJpeg = true)
    {
        IImageTransform[] steps = p.ResizeSize > 0
            ? [new Resize(p.ResizeSize, p.Interpolation), new CenterCrop(p.CropSize)]
            : [new Resize(p.CropSize, p.CropSize, p.Interpolation)];
        return new VisionPipeline(steps, Normalize.From(p), downscaleJpeg: downscaleJpeg);
    }

    /// <summary>
    /// Training: RandomResizedCrop to the crop size (with the weights' filter), horizontal flip, the given
    /// augmentations, normalize, and RandomErasing with probability <paramref name="randomErasing"/> when set.
    /// </summary>
    public static VisionPipeline Train(Preprocessing p, IEnumerable<IImageTransform>? augment, double? randomErasing,
        (double Min, double Max)? cropScale = null, bool horizontalFlip = true, bool downscaleJpeg = true)
    {
        var steps = new List<IImageTransform> { new RandomResizedCrop(p.CropSize, cropScale, null, p.Interpolation) };
        if (horizontalFlip) steps.Add(new RandomHorizontalFlip());
        if (augment is not null) steps.AddRange(augment);
        var tensorSteps = randomErasing is { } pe && pe > 0 ? new ITransform<ImageTensor, ImageTensor>[] { new RandomErasing(pe) } : [];
        return new VisionPipeline(steps, Normalize.From(p), tensorSteps, downscaleJpeg);
    }

    /// <summary>Evaluation pipeline of these weights (see <see cref="Eval(Preprocessing, bool)"/>).</summary>
    public static VisionPipeline Eval(this Preprocessing p) => Eval(p, true);

    /// <summary>Training pipeline of these weights with the given augmentation.</summary>
    public static VisionPipeline Train(this Preprocessing p, IImageTransform? augment = null, double randomErasing = 0) =>
        Train(p, augment is null ? null : [augment], randomErasing);
}
