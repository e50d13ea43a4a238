using System.Diagnostics;
using System.Text.Json.Nodes;
using ModelZoo.Data;
using ModelZoo.FineTune;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Bench;

/// <summary>A benchmark workload: which model, batch and input.</summary>
/// <param name="Name">Label in the tables.</param>
/// <param name="Zoo">Zoo catalog name.</param>
/// <param name="Py">Model name in torch_worker.py.</param>
/// <param name="Batch">Batch size.</param>
/// <param name="Size">Image side (vision) or sequence length (text).</param>
/// <param name="Text">True for token-id inputs.</param>
internal sealed record Workload(string Name, string Zoo, string Py, int Batch, int Size, bool Text)
{
    public int Classes => Text ? 2 : 1000;

    public ZooModel CreateModel()
    {
        manual_seed(0);
        return ModelZoo.Zoo.Create(Zoo, new ModelOptions(NumClasses: Classes));
    }

    /// <summary>Fixed inputs and targets (created outside any dispose scope; the caller disposes them).</summary>
    public (Tensor X, Tensor Y) Inputs()
    {
        var g = new Generator(1);
        var x = Text ? randint(1000, 30000, [Batch, Size], dtype: int64, generator: g) : randn([Batch, 3, Size, Size], generator: g);
        var y = randint(0, Classes, [Batch], dtype: int64, generator: g);
        return (x, y);
    }

    public JsonObject PySetup(string mode) => new()
    {
        ["model"] = Py, ["mode"] = mode, ["batch"] = Batch, ["size"] = Size, ["seq"] = Size, ["lr"] = 1e-3,
    };

    public static Workload Parse(string name, int? batch = null, int? size = null) => name switch
    {
        "resnet18" => new("resnet18", "resnet18", "resnet18", batch ?? 16, size ?? 224, false),
        "resnet50" => new("resnet50", "resnet50", "resnet50", batch ?? 8, size ?? 224, false),
        "minilm" => new("minilm-l6 (BERT, seq 128)", "all-minilm-l6-v2", "minilm", batch ?? 8, size ?? 128, true),
        _ => throw new ArgumentException($"unknown workload '{name}' (resnet18, resnet50, minilm)"),
    };
}

/// <summary>Times the Learner: each round is one <see cref="Learner.Fit"/> of n+1 batches; the n intervals between consecutive AfterBatch events (the last callback to run) are the step times.</summary>
internal sealed class StepTimer : Callback
{
    private long _last;
    public List<double> Intervals { get; } = [];
    public override int Order => int.MaxValue;
    public override void BeforeTrain(Learner learner) { Intervals.Clear(); _last = 0; }
    public override void AfterBatch(Learner learner)
    {
        long now = Stopwatch.GetTimestamp();
        if (_last != 0) Intervals.Add(Stopwatch.GetElapsedTime(_last, now).TotalSeconds);
        _last = now;
    }
}

internal static class ModelArms
{
    /// <summary>The toolkit: a Learner (AdamW wd 0.01, constant lr 1e-3, default callbacks incl. the progress reporter writing to a null writer) over fresh batch handles of fixed tensors.</summary>
    public static Arm Learner(Workload w)
    {
        var model = w.CreateModel();
        var (x, y) = w.Inputs();
        int count = 2;
        var timer = new StepTimer();
        var learner = new Learner(model, _ => Enumerable.Range(0, count).Select(i => new Batch(x.alias(), y.alias(), Enumerable.Range(0, w.Batch).ToArray())),
            null, Loss.CrossEntropy(), options: new LearnerOptions { Device = CPU, Output = TextWriter.Null, ProgressBar = false, Callbacks = [timer] });
        return new Arm("toolkit Learner", n =>
        {
            count = n + 1;
            learner.Fit(1, Schedule.Constant(1e-3));
            return [.. timer.Intervals];
        }, new Owners(learner, model, x, y));
    }

    /// <summary>Hand-written TorchSharp loop on another instance of the same zoo model: forward, cross-entropy, zero_grad, backward, AdamW step, loss.item().</summary>
    public static Arm RawTrain(Workload w)
    {
        var model = w.CreateModel();
        var (x, y) = w.Inputs();
        model.train();
        var opt = optim.AdamW(model.parameters(), lr: 1e-3, weight_decay: 0.01);
        return new Arm("raw TorchSharp", n =>
        {
            // n+1 steps, the first not counted: the same re-warm-up after the other arms ran as the Learner's dropped first batch.
            var t = new double[n + 1];
            for (int i = 0; i <= n; i++)
            {
                long s = Stopwatch.GetTimestamp();
                using (var scope = NewDisposeScope())
                {
                    var loss = nn.functional.cross_entropy(model.call(x), y);
                    opt.zero_grad();
                    loss.backward();
                    opt.step();
                    loss.item<float>();
                }
                t[i] = Stopwatch.GetElapsedTime(s).TotalSeconds;
            }
            return t[1..];
        }, new Owners(opt, model, x, y));
    }

    /// <summary>Zoo model in eval mode under no_grad (for inference the toolkit's model is the TorchSharp module itself).</summary>
    public static Arm Infer(Workload w)
    {
        var model = w.CreateModel();
        var (x, y) = w.Inputs();
        model.eval();
        return new Arm("zoo (TorchSharp)", n =>
        {
            var t = new double[n + 1];   // the first pass of a round is not counted (as in every arm)
            for (int i = 0; i <= n; i++)
            {
                long s = Stopwatch.GetTimestamp();
                using (var scope = NewDisposeScope())
                using (no_grad())
                    model.call(x).sum().item<float>();
                t[i] = Stopwatch.GetElapsedTime(s).TotalSeconds;
            }
            return t[1..];
        }, new Owners(model, x, y));
    }
}

/// <summary>Disposes several things in order.</summary>
internal sealed class Owners(params IDisposable[] items) : IDisposable
{
    public void Dispose()
    {
        foreach (var d in items) d.Dispose();
    }
}

/// <summary>Times, in isolation, what the Learner does per step beyond a bare loop (for the profiling notes in docs/benchmarks.md).</summary>
internal static class LearnerOverhead
{
    public static string Measure(Workload w, int reps)
    {
        using var model = w.CreateModel();
        var (x, y) = w.Inputs();
        model.train();
        using (var s0 = NewDisposeScope()) nn.functional.cross_entropy(model.call(x), y).backward();
        var ps = model.parameters().Where(p => p.grad is not null).ToList();
        double Time(Action a)
        {
            a();
            var t = new List<double>();
            for (int i = 0; i < reps; i++)
            {
                long s = Stopwatch.GetTimestamp();
                a();
                t.Add(Stopwatch.GetElapsedTime(s).TotalMilliseconds);
            }
            return Stats.Median(t);
        }
        double clone = Time(() =>
        {
            using var scope = NewDisposeScope();
            var buffers = model.named_buffers().Where(b => b.buffer.is_floating_point()).Select(b => b.buffer).ToList();
            _ = buffers.Select(b => b.clone()).ToList();
        });
        double norm = Time(() =>
        {
            using var scope = NewDisposeScope();
            linalg.vector_norm(stack(ps.Select(p => linalg.vector_norm(p.grad!)).ToArray())).to(ScalarType.Float64).item<double>();
        });
        double item = Time(() =>
        {
            using var scope = NewDisposeScope();
            nn.functional.cross_entropy(model.call(x), y).to(ScalarType.Float64).item<double>();
        });
        x.Dispose();
        y.Dispose();
        return FormattableString.Invariant($"| {w.Name} | {ps.Count} | {ps.Sum(p => p.numel()):N0} | {clone:0.00} | {norm:0.00} | {item:0.0} |");
    }
}
