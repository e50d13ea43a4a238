using System.Diagnostics;
using System.Globalization;
using System.Text;
using ModelZoo.Data;
using ModelZoo.FineTune;
using static TorchSharp.torch;

namespace ModelZoo.Bench;

/// <summary>One sample of a soak run.</summary>
internal sealed record SoakRow(int Step, double RssMb, long LiveTensors, double Seconds);

/// <summary>
/// Long-run memory check: a Learner trains <c>model</c> for <c>steps</c> steps on fresh random batches (a new input
/// tensor every step, as a loader would hand out) and records RSS and TorchSharp's live-tensor count
/// (<see cref="Tensor.TotalCount"/>) every <c>every</c> steps, at the step boundary (AfterBatch, after the batch's
/// DisposeScope has been disposed by the previous step).
/// </summary>
internal static class Soak
{
    private sealed class Sampler(int every, Stopwatch clock, List<SoakRow> rows, bool collect) : Callback
    {
        public override int Order => int.MaxValue;
        public override void AfterStep(Learner learner)
        {
            long step = learner.GlobalStep;
            if (step != 1 && step % every != 0) return;
            if (collect)
            {
                // Tensors that were never disposed but are unreachable are counted until their finalizer runs.
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
            rows.Add(new SoakRow((int)step, Machine.RssMb(), Tensor.TotalCount, clock.Elapsed.TotalSeconds));
        }
    }

    public static List<SoakRow> Run(string model, int steps, int every, int size, int batch, int seed = 0, bool collect = false)
    {
        var rows = new List<SoakRow>();
        var clock = Stopwatch.StartNew();
        manual_seed(seed);
        using var m = ModelZoo.Zoo.Create(model, new ModelOptions(NumClasses: 10));
        var g = new Generator((ulong)seed + 1);
        IEnumerable<Batch> Epoch(int e)
        {
            for (int i = 0; i < steps; i++)
                yield return new Batch(randn([batch, 3, size, size], generator: g), randint(0, 10, [batch], dtype: ScalarType.Int64, generator: g),
                    Enumerable.Range(i * batch, batch).ToArray());
        }
        using var learner = new Learner(m, new CountedBatches(steps, Epoch), null, Loss.CrossEntropy(),
            options: new LearnerOptions { Device = CPU, Quiet = true, Callbacks = [new Sampler(every, clock, rows, collect)] });
        learner.Fit(1, Schedule.Constant(1e-3));
        g.Dispose();
        return rows;
    }

    /// <summary>Max relative change of RSS and of the live-tensor count between the first sample at or after <paramref name="warmup"/> and every later sample.</summary>
    public static (double Rss, double Tensors) Drift(IReadOnlyList<SoakRow> rows, int warmup)
    {
        var after = rows.Where(r => r.Step >= warmup).ToList();
        if (after.Count < 2) return (double.NaN, double.NaN);
        var b = after[0];
        return (after.Max(r => Math.Abs(r.RssMb - b.RssMb)) / b.RssMb, after.Max(r => Math.Abs(r.LiveTensors - b.LiveTensors)) / (double)Math.Max(1, b.LiveTensors));
    }

    public static string Table(IReadOnlyList<SoakRow> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder("| step | RSS MB | live tensors | elapsed s |\n| ---: | ---: | ---: | ---: |\n");
        foreach (var r in rows) sb.AppendLine(inv, $"| {r.Step} | {r.RssMb:0.0} | {r.LiveTensors} | {r.Seconds:0.0} |");
        return sb.ToString();
    }

    /// <summary>The learner counts batches through IReadOnlyCollection; this avoids an extra pass over a generator.</summary>
    private sealed class CountedBatches(int count, Func<int, IEnumerable<Batch>> make) : IReadOnlyCollection<Batch>
    {
        private int _epoch;
        public int Count => count;
        public IEnumerator<Batch> GetEnumerator() => make(_epoch++).GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
