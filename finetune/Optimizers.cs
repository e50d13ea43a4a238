using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

/// <summary>Which update rule to use.</summary>
public enum OptimizerKind
{
    /// <summary>AdamW (decoupled weight decay), TorchSharp's <c>torch.optim.AdamW</c>.</summary>
    AdamW,
    /// <summary>SGD with optional momentum and Nesterov, TorchSharp's <c>torch.optim.SGD</c>.</summary>
    Sgd,
}

/// <summary>
/// Optimizer settings. The learning rates come from the schedule; parameters are grouped by the model's
/// <see cref="ZooModel.ParameterGroups"/> and each group is split so that 1-D parameters (norm weights and biases)
/// get no weight decay.
/// </summary>
/// <param name="Kind">AdamW or SGD.</param>
/// <param name="WeightDecay">Weight decay for weight matrices and kernels.</param>
/// <param name="Beta1">AdamW β1 (cycled by one-cycle schedules).</param>
/// <param name="Beta2">AdamW β2.</param>
/// <param name="Eps">AdamW ε.</param>
/// <param name="Momentum">SGD momentum (cycled by one-cycle schedules when non-zero).</param>
/// <param name="Nesterov">SGD Nesterov momentum.</param>
/// <param name="DecayNormsAndBiases">When true, 1-D parameters are decayed too (off by default, as in timm and fastai).</param>
public sealed record OptimizerSettings(
    OptimizerKind Kind = OptimizerKind.AdamW,
    double WeightDecay = 0.01,
    double Beta1 = 0.9,
    double Beta2 = 0.999,
    double Eps = 1e-8,
    double Momentum = 0.9,
    bool Nesterov = false,
    bool DecayNormsAndBiases = false)
{
    /// <summary>AdamW with PyTorch's defaults (weight decay 0.01).</summary>
    public static OptimizerSettings AdamW(double weightDecay = 0.01, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8) =>
        new(OptimizerKind.AdamW, weightDecay, beta1, beta2, eps);

    /// <summary>SGD with momentum.</summary>
    public static OptimizerSettings Sgd(double momentum = 0.9, bool nesterov = false, double weightDecay = 1e-4) =>
        new(OptimizerKind.Sgd, weightDecay, Momentum: momentum, Nesterov: nesterov);
}

/// <summary>One optimizer parameter group as built: which model group it came from and whether it is decayed.</summary>
internal sealed record OptGroup(int ModelGroup, string Name, bool Decay, List<Parameter> Parameters);

/// <summary>A TorchSharp optimizer plus the bookkeeping the learner needs: per-group rates, momentum, state IO.</summary>
internal sealed class TrainOptimizer : IDisposable
{
    private readonly OptimizerHelper _opt;
    private readonly List<OptGroup> _groups;
    private readonly OptimizerSettings _settings;

    private TrainOptimizer(OptimizerHelper opt, List<OptGroup> groups, int modelGroups, OptimizerSettings settings)
    {
        _opt = opt;
        _groups = groups;
        ModelGroupCount = modelGroups;
        _settings = settings;
    }

    public int ModelGroupCount { get; }

    public IReadOnlyList<OptGroup> Groups => _groups;

    public IEnumerable<Parameter> Parameters => _groups.SelectMany(g => g.Parameters);

    /// <summary>Builds groups from the model contract (or one group for a plain module), trainable parameters only.</summary>
    public static TrainOptimizer Create(nn.Module module, IReadOnlyList<ParameterGroup>? modelGroups, OptimizerSettings s)
    {
        var mg = modelGroups ?? [new ParameterGroup("all", 0, module.named_parameters().Select(p => (p.name, p.parameter)).ToList())];
        var groups = new List<OptGroup>();
        var seen = new HashSet<IntPtr>();
        for (int i = 0; i < mg.Count; i++)
        {
            var decay = new List<Parameter>();
            var noDecay = new List<Parameter>();
            foreach (var (_, p) in mg[i].Parameters)
            {
                if (!p.requires_grad || !seen.Add(p.Handle)) continue;
                (p.dim() <= 1 && !s.DecayNormsAndBiases ? noDecay : decay).Add(p);
            }
            if (decay.Count > 0) groups.Add(new OptGroup(i, mg[i].Name, true, decay));
            if (noDecay.Count > 0) groups.Add(new OptGroup(i, mg[i].Name + ".no_decay", false, noDecay));
        }
        if (groups.Count == 0)
            throw new InvalidOperationException("Nothing to train: every parameter is frozen. Call model.Unfreeze() or FreezeBackbone() (which leaves the head trainable).");
        OptimizerHelper opt = s.Kind switch
        {
            OptimizerKind.AdamW => optim.AdamW(groups.Select(g => new AdamW.ParamGroup(g.Parameters, new AdamW.Options
            {
                LearningRate = 1e-3, beta1 = s.Beta1, beta2 = s.Beta2, eps = s.Eps, weight_decay = g.Decay ? s.WeightDecay : 0, amsgrad = false, maximize = false,
            })), lr: 1e-3, beta1: s.Beta1, beta2: s.Beta2, eps: s.Eps, weight_decay: s.WeightDecay),
            OptimizerKind.Sgd => optim.SGD(groups.Select(g => new SGD.ParamGroup(g.Parameters, new SGD.Options
            {
                LearningRate = 1e-3, momentum = s.Momentum, dampening = 0, nesterov = s.Nesterov, weight_decay = g.Decay ? s.WeightDecay : 0, maximize = false,
            })), 1e-3, momentum: s.Momentum, nesterov: s.Nesterov, weight_decay: s.WeightDecay),
            _ => throw new ArgumentOutOfRangeException(nameof(s), s.Kind, "Unknown optimizer kind."),
        };
        return new TrainOptimizer(opt, groups, mg.Count, s);
    }

    /// <summary>Sets each optimizer group's rate from the per-model-group peak rates times <paramref name="factor"/>.</summary>
    public void SetLr(double[] peakPerModelGroup, double factor)
    {
        int i = 0;
        foreach (var pg in _opt.ParamGroups) pg.LearningRate = peakPerModelGroup[_groups[i++].ModelGroup] * factor;
    }

    public double[] CurrentLrs() => _opt.ParamGroups.Select(g => g.LearningRate).ToArray();

    /// <summary>Sets AdamW β1 or SGD momentum (ignored for SGD without momentum).</summary>
    public void SetMomentum(double m)
    {
        foreach (var pg in _opt.ParamGroups)
        {
            switch (pg)
            {
                case AdamW.ParamGroup a: a.Options.beta1 = m; break;
                case SGD.ParamGroup sg when _settings.Momentum > 0: sg.Options.momentum = m; break;
            }
        }
    }

    public void ZeroGrad() => _opt.zero_grad();

    public void Step() => _opt.step();

    public void Save(BinaryWriter w) => _opt.save_state_dict(w);

    public void Load(BinaryReader r) => _opt.load_state_dict(r);

    public string Describe() => string.Join(", ", _groups.Select(g => $"{g.Name}({g.Parameters.Count})"));

    public void Dispose() => _opt.Dispose();
}

internal static class Json
{
    public static readonly JsonSerializerOptions Options = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        WriteIndented = false,
    };

    public static readonly JsonSerializerOptions Indented = new(Options) { WriteIndented = true };
}
