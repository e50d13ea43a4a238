using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Data;

/// <summary>
/// Per-item augmentations applied to a whole N×C×H×W batch of normalized images, for in-memory sources whose batches
/// are cut as tensors (<see cref="TensorDataLoader"/>): the same draws as <see cref="RandomShift"/> and
/// <see cref="RandomErasing"/> make for single images, one per item, from one random generator.
/// </summary>
public static class BatchAugment
{
    /// <summary>
    /// Shifts every item by its own random offset of up to <paramref name="padding"/> pixels each way, repeating the
    /// border (torchvision's <c>RandomCrop(size, padding, padding_mode="edge")</c>). Returns a new tensor.
    /// </summary>
    public static Tensor RandomShift(Tensor images, int padding, Random rng)
    {
        if (images.dim() != 4) throw new ArgumentException($"Expected N×C×H×W images, got [{string.Join(", ", images.shape)}].", nameof(images));
        long n = images.shape[0], h = images.shape[2], w = images.shape[3];
        using var scope = NewDisposeScope();
        var padded = nn.functional.pad(images, [padding, padding, padding, padding], PaddingModes.Replicate);
        var items = new Tensor[n];
        for (long i = 0; i < n; i++)
        {
            int top = rng.Next(2 * padding + 1), left = rng.Next(2 * padding + 1);
            items[i] = padded[i].narrow(1, top, h).narrow(2, left, w);
        }
        return stack(items).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Erases one random rectangle per item with the probability, area and aspect ranges of <paramref name="settings"/>,
    /// filling it with <see cref="Data.RandomErasing.Value"/> (0 on normalized images is the dataset mean). Returns a new tensor.
    /// </summary>
    public static Tensor RandomErasing(Tensor images, RandomErasing settings, Random rng)
    {
        if (images.dim() != 4) throw new ArgumentException($"Expected N×C×H×W images, got [{string.Join(", ", images.shape)}].", nameof(images));
        int n = (int)images.shape[0], h = (int)images.shape[2], w = (int)images.shape[3];
        var keep = new float[n * h * w];
        Array.Fill(keep, 1f);
        bool any = false;
        for (int i = 0; i < n; i++)
        {
            if (settings.SampleBox(h, w, rng) is not { } box) continue;
            any = true;
            for (int y = box.Top; y < box.Top + box.Height; y++)
                keep.AsSpan((i * h + y) * w + box.Left, box.Width).Clear();
        }
        if (!any) return images.clone();
        using var scope = NewDisposeScope();
        var mask = tensor(keep, [n, 1, h, w]).to(images.dtype).to(images.device);
        var erased = images.mul(mask);
        if (settings.Value != 0)
        {
            using var one = 1.ToScalar();
            using var value = settings.Value.ToScalar();
            erased.add_(mask.neg().add_(one).mul_(value));
        }
        return erased.MoveToOuterDisposeScope();
    }
}
