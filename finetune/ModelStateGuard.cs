using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

/// <summary>
/// Snapshots a model's state (weights and buffers), the torch RNG state and the train/eval mode, and puts all three
/// back when disposed: what a trial run of real training steps (LR finder, speed probe) must leave untouched.
/// </summary>
internal sealed class ModelStateGuard : IDisposable
{
    private readonly nn.Module _model;
    private readonly Dictionary<string, Tensor> _saved;
    private readonly Tensor _rng;
    private readonly bool _wasTraining;

    public ModelStateGuard(nn.Module model)
    {
        _model = model;
        using (no_grad()) _saved = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
        _rng = torch.random.get_rng_state();
        _wasTraining = model.training;
    }

    public void Dispose()
    {
        using (no_grad())
            foreach (var (name, t) in _model.state_dict()) t.copy_(_saved[name]);
        foreach (var t in _saved.Values) t.Dispose();
        torch.random.set_rng_state(_rng);
        _rng.Dispose();
        if (_wasTraining) _model.train(); else _model.eval();
    }
}
