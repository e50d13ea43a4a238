using System.Diagnostics;
using ModelZoo.Data;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Baselines;

/// <summary>
/// The images quickstart's baseline: every image squashed to 16×16 grey pixels (the whole image, aspect ratio not
/// kept; large JPEGs decoded at a reduced scale), each pixel standardized over the training images, and a
/// <see cref="LogisticBaseline"/> fitted on them. It needs no pretrained weights and runs in seconds; a quickstart that
/// does not beat it has not earned its cost on that dataset.
/// </summary>
public static class PixelBaseline
{
    /// <summary>Side of the grey thumbnail the regression reads.</summary>
    public const int Side = 16;

    /// <summary>Training images used at most (a stratified sample beyond), so the baseline stays within seconds on large sets.</summary>
    public const int MaxTrain = 20_000;

    /// <summary>The method in words, for logs and reports.</summary>
    public static string Method => $"logistic regression (C = 1, L-BFGS) on {Side}×{Side} grey pixels, standardized";

    /// <summary>
    /// The <see cref="Side"/>² grey values (0–1, row-major) of one image: decoded (at a reduced scale when that still
    /// leaves <see cref="Side"/> pixels per side), converted to grey (ITU-R 601 luma) and area-averaged to the grid.
    /// </summary>
    public static float[] Features(ImageSource source)
    {
        var img = ImageDecoder.Decode(source, (fullW, fullH) => Math.Min(1.0, Math.Max((double)Side / fullW, (double)Side / fullH)));
        int w = img.Width, h = img.Height;
        var px = img.Pixels;
        var sum = new double[Side * Side];
        var count = new int[Side * Side];
        for (int y = 0; y < h; y++)
        {
            int gy = Math.Min(Side - 1, y * Side / h);
            for (int x = 0; x < w; x++)
            {
                int gx = Math.Min(Side - 1, x * Side / w), o = (y * w + x) * 3;
                sum[gy * Side + gx] += 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
                count[gy * Side + gx]++;
            }
        }
        var f = new float[Side * Side];
        for (int gy = 0; gy < Side; gy++)
            for (int gx = 0; gx < Side; gx++)
            {
                int i = gy * Side + gx;
                if (count[i] > 0) { f[i] = (float)(sum[i] / count[i] / 255); continue; }
                // Images smaller than the grid: the nearest source pixel.
                int sy = Math.Min(h - 1, (int)((gy + 0.5) * h / Side)), sx = Math.Min(w - 1, (int)((gx + 0.5) * w / Side)), o = (sy * w + sx) * 3;
                f[i] = (float)((0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2]) / 255);
            }
        return f;
    }

    /// <summary>
    /// Fits on <paramref name="trainIdx"/> of <paramref name="train"/> (a stratified sample of <see cref="MaxTrain"/> when
    /// there are more) and scores on <paramref name="heldOutIdx"/> of <paramref name="heldOut"/>. Images that cannot be
    /// decoded are left out (and counted in the note).
    /// </summary>
    public static BaselineResult Run(IDataset<ImageSample> train, int[] trainIdx, IDataset<ImageSample> heldOut, int[] heldOutIdx, int seed)
    {
        var clock = Stopwatch.StartNew();
        int classes = train.ClassNames.Count;
        var notes = new List<string>();
        if (trainIdx.Length > MaxTrain)
        {
            notes.Add($"fitted on a stratified sample of {MaxTrain:N0} of the {trainIdx.Length:N0} training images");
            trainIdx = Recipes.DataSources.StratifiedSample(trainIdx, train.LabelOf, MaxTrain, seed);
        }
        var (trainX, trainY, badTrain) = Extract(train, trainIdx);
        var (testX, testY, badTest) = Extract(heldOut, heldOutIdx);
        if (badTrain + badTest > 0) notes.Add($"{badTrain + badTest} image(s) could not be decoded and were left out");
        using var scope = NewDisposeScope();
        var xTrain = tensor(trainX, [trainY.Length, Side * Side]);
        var xTest = tensor(testX, [testY.Length, Side * Side]);
        var mean = xTrain.mean([0]);
        var std = xTrain.std(0).clamp_min(1e-3);
        return LogisticBaseline.FitAndScore(Method, (xTrain - mean) / std, trainY, (xTest - mean) / std, testY, classes, clock,
            notes.Count == 0 ? null : string.Join("; ", notes));
    }

    private static (float[] X, long[] Y, int Bad) Extract(IDataset<ImageSample> data, int[] indices)
    {
        var rows = new float[indices.Length][];
        Parallel.For(0, indices.Length, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            try
            {
                rows[i] = Features(data[indices[i]].Source);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or UnauthorizedAccessException)
            {
                rows[i] = null!;
            }
        });
        var keep = Enumerable.Range(0, indices.Length).Where(i => rows[i] is not null).ToArray();
        var x = new float[keep.Length * Side * Side];
        for (int k = 0; k < keep.Length; k++) rows[keep[k]].CopyTo(x, k * Side * Side);
        return (x, keep.Select(i => (long)data.LabelOf(indices[i])).ToArray(), indices.Length - keep.Length);
    }
}
