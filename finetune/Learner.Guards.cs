using ModelZoo.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

// Guards of the training loop: out-of-range labels and non-finite losses or gradient norms.
public sealed partial class Learner
{
    /// <summary>Refuses class-index targets outside [0, classes): libtorch would fail with a message that names no item.</summary>
    private static void CheckTargets(Batch batch, Tensor logits, string where)
    {
        var t = batch.Target;
        if (t.dtype.IsFloatingPoint() || logits.dim() != 2 || t.dim() != 1) return;
        long k = logits.shape[1];
        using var bad = t.lt(0).logical_or_(t.ge(k));
        if (!bad.any().item<bool>()) return;
        using var positions = bad.nonzero();
        long pos = positions[0, 0].item<long>();
        long label = t[pos].item<long>();
        int item = pos < batch.Indices.Length ? batch.Indices[pos] : -1;
        throw new LabelOutOfRangeException($"Item {item} ({where}) has label {label}, but the model predicts {k} classes (0–{k - 1}). " +
            "Check the labels of the data (or the class list the head was sized for); nothing was trained on this batch.", item, label, k);
    }

    private void SkipNonFinite(string what, int batchIndex)
    {
        _opt!.ZeroGrad();
        _accum = 0;
        _posBatch = batchIndex + 1;
        NonFiniteSkipped++;
        NonFiniteInARow++;
        if (NonFiniteInARow >= _options.MaxNonFiniteInARow)
            throw new TrainingDivergedException(
                $"Training diverged: {what} was not finite for {NonFiniteInARow} step(s) in a row (epoch {Epoch + 1}, batch {batchIndex}); " +
                $"{NonFiniteSkipped} step(s) skipped in total. Lower the learning rate (Learner.FindLr suggests one), set " +
                $"LearnerOptions.ClipGradNorm, or check the inputs for NaN/Inf.");
        Log($"Skipped step at epoch {Epoch + 1}, batch {batchIndex}: {what} is not finite ({NonFiniteInARow} in a row).");
    }
}
