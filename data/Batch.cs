using static TorchSharp.torch;

namespace ModelZoo.Data;

/// <summary>
/// One mini-batch as the loader hands it to the training engine: inputs (images N×C×H×W or token ids N×T), integer
/// class targets (N), and the dataset indices of the items, so reports can name the files behind top losses.
/// The batch owns its tensors; dispose it (or let a <c>DisposeScope</c> take them) when the step is done.
/// A <see cref="DataLoader"/> also disposes each batch it handed out when the next one is requested (disposing twice is
/// harmless); call <see cref="Detach"/> on a batch to keep it longer.
/// </summary>
/// <param name="Input">Model input.</param>
/// <param name="Target">Class indices (int64), or an N×K float tensor of soft targets (Mixup/CutMix).</param>
/// <param name="Indices">Dataset index of each item.</param>
public sealed record Batch(Tensor Input, Tensor Target, int[] Indices) : IDisposable
{
    /// <summary>Number of items.</summary>
    public int Count => Indices.Length;

    /// <summary>For token batches: N×T attention mask (1 = token, 0 = padding), int64; null for images.</summary>
    public Tensor? Mask { get; init; }

    /// <summary>True while the loader that produced this batch will dispose it at the next step.</summary>
    internal bool OwnedByLoader { get; set; }

    /// <summary>Takes the batch out of its loader's care: the caller must dispose it.</summary>
    public Batch Detach()
    {
        OwnedByLoader = false;
        return this;
    }

    /// <summary>Moves all tensors to <paramref name="device"/> (a no-op when already there), returning a new batch.</summary>
    public Batch To(Device device) =>
        Input.device == device && Target.device == device && (Mask is null || Mask.device == device)
            ? this
            : new(Input.to(device), Target.to(device), Indices) { Mask = Mask?.to(device) };

    /// <inheritdoc />
    public void Dispose()
    {
        Input.Dispose();
        Target.Dispose();
        Mask?.Dispose();
    }
}
