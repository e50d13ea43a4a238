using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo;

/// <summary>
/// The training-mode forward pass of TorchSharp's batch norms, without its use-after-free race.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>BatchNorm.forward</c> counts batches with <c>num_batches_tracked.add_(1)</c>: the <c>1</c> becomes
/// a temporary <see cref="Scalar"/> whose last managed use is reading its native handle, so a garbage collection started
/// by another thread during the native call can queue it, and the finalizer thread then frees the native scalar while
/// libtorch reads it ("Unknown scalar type", thrown from <c>c10::Scalar::type</c>). Seen once in 1,340 steps of a
/// Fashion-MNIST fine-tune. Here the count is raised with scalars held alive by <c>using</c>, then the same
/// <c>batch_norm</c> call runs. Forward hooks of the batch norm are not run on this path; ZooModule uses it only for
/// training with gradients (summaries and shape probes run in eval mode or without gradients).
/// </remarks>
public static class BatchNormTraining
{
    /// <summary>True when <paramref name="module"/> is a batch norm that <see cref="Forward"/> runs (training with gradients, running statistics tracked, a fixed momentum).</summary>
    public static bool Applies(nn.Module module) =>
        module is BatchNorm { training: true, track_running_stats: true, momentum: not null, num_batches_tracked: not null } && is_grad_enabled();

    /// <summary>Batch norm in training mode: counts the batch, normalizes with batch statistics and updates the running ones, as <c>BatchNorm.forward</c> does.</summary>
    public static Tensor Forward(BatchNorm bn, Tensor x)
    {
        if (x.dim() < 2) throw new ArgumentException($"Batch norm expects N×C×… input, got [{string.Join(", ", x.shape)}].", nameof(x));
        using (var one = 1L.ToScalar())
            bn.num_batches_tracked!.add_(one, one);
        return nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training: true, momentum: bn.momentum!.Value, eps: bn.eps);
    }
}
