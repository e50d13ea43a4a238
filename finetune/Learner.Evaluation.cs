using ModelZoo.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

// Validation inside a fit and evaluation of any batches: predictions, per-item losses, reports.
public sealed partial class Learner
{
    private Evaluation Validate()
    {
        Model.eval();
        IsTraining = false;
        Event(c => c.BeforeValidate(this));
        var eval = _cacheValid is not null ? Run(_cacheValid.Sequential(), _head!) : Run(_valid!, Model);
        LastEvaluation = eval;
        Event(c => c.AfterValidate(this));
        return eval;
    }

    /// <summary>
    /// Runs the model in eval mode over <paramref name="data"/> (default: the validation loader) and returns all
    /// predictions with reports; with <paramref name="tta"/> each batch's views are averaged (<see cref="TestTimeAugmentation"/>).
    /// </summary>
    public Evaluation Evaluate(IEnumerable<Batch>? data = null, TestTimeAugmentation? tta = null)
    {
        var src = data ?? _valid ?? throw new InvalidOperationException("No data to evaluate: pass batches or give the learner a validation loader.");
        bool was = Model.training;
        Model.eval();
        try { return Run(src, Model, tta); }
        finally { if (was) Model.train(); }
    }

    private Evaluation Run(IEnumerable<Batch> data, nn.Module<Tensor, Tensor> net, TestTimeAugmentation? tta = null)
    {
        var logits = new List<float>();
        var targets = new List<int>();
        var losses = new List<float>();
        var indices = new List<int>();
        int k = -1;
        using var noGrad = no_grad();
        foreach (var raw in data)
        {
            using var scope = NewDisposeScope();
            var b = raw.To(Device);
            try
            {
                var y = tta is null ? net.call(b.Input) : tta.Predict(net, b.Input);
                if (y.dim() != 2) throw new InvalidOperationException($"Evaluation expects N×K logits, got [{string.Join(", ", y.shape)}].");
                k = (int)y.shape[1];
                CheckTargets(b, y, "evaluation");
                losses.AddRange(LossFunction.PerItem(y, b.Target).to(ScalarType.Float32).cpu().data<float>().ToArray());
                logits.AddRange(y.to(ScalarType.Float32).cpu().data<float>().ToArray());
                targets.AddRange(Loss.HardTargets(b.Target).cpu().data<long>().ToArray().Select(t => (int)t));
                indices.AddRange(b.Indices);
            }
            finally
            {
                if (!ReferenceEquals(b, raw)) b.Dispose();
                raw.Dispose();
            }
        }
        if (k < 0) throw new InvalidOperationException("The evaluation data yielded no batches.");
        return new Evaluation([.. logits], k, [.. targets], [.. losses], [.. indices]);
    }
}
