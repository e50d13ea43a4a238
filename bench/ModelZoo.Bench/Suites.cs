using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ModelZoo.Data;
using ModelZoo.FineTune;
using static TorchSharp.torch;

namespace ModelZoo.Bench;

/// <summary>Options shared by the suites.</summary>
internal sealed record SuiteOptions(int Threads, int Rounds, int Steps, string[] Models, TextWriter Log, bool Python = true)
{
    public int? Batch { get; init; }
    public int? Size { get; init; }
}

/// <summary>The end-to-end comparisons: each returns a Markdown report (also logged as it runs).</summary>
internal static class Suites
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private static PyWorker? StartPython(SuiteOptions o) => o.Python ? new PyWorker(o.Threads) : null;

    private static string Header(string what, SuiteOptions o, PyWorker? py) =>
        $"### {what}\n\n```\n{Machine.Describe(o.Threads, py?.Info)}rounds: {o.Rounds} alternating (after one warm-up round per arm), {o.Steps} step(s) per round per arm; value per round = mean step time\n```\n\n";

    /// <summary>Train step: Learner vs raw TorchSharp loop vs Python PyTorch, alternating.</summary>
    public static string Train(SuiteOptions o)
    {
        using var py = StartPython(o);
        var sb = new StringBuilder(Header("Train step (forward + backward + AdamW step)", o, py));
        foreach (var name in o.Models)
        {
            var w = Workload.Parse(name, o.Batch, o.Size);
            o.Log.WriteLine($"== train {w.Name} batch {w.Batch} size {w.Size}");
            var arms = new List<Arm> { ModelArms.Learner(w), ModelArms.RawTrain(w) };
            if (py is not null) arms.Add(py.Arm("PyTorch " + py.Info["torch"], w.PySetup("train")));
            try
            {
                var res = Alternation.Run(arms, o.Rounds, o.Steps, o.Log);
                var table = Alternation.Table($"**{w.Name}, batch {w.Batch}, {(w.Text ? "sequence" : "image")} {w.Size}** (load average at end: {Machine.LoadAverage()})", res, w.Batch);
                sb.AppendLine(table);
                o.Log.WriteLine(table);
            }
            finally
            {
                foreach (var a in arms) a.Owner?.Dispose();
            }
        }
        return sb.ToString();
    }

    /// <summary>Inference: zoo model (eval, no_grad) vs Python PyTorch, batch 1 and 32 (or --batch).</summary>
    public static string Infer(SuiteOptions o)
    {
        using var py = StartPython(o);
        var sb = new StringBuilder(Header("Inference (eval mode, no_grad)", o, py));
        foreach (var name in o.Models)
            foreach (int batch in o.Batch is int b ? [b] : new[] { 1, 32 })
            {
                var w = Workload.Parse(name, batch, o.Size);
                o.Log.WriteLine($"== infer {w.Name} batch {w.Batch}");
                var arms = new List<Arm> { ModelArms.Infer(w) };
                if (py is not null) arms.Add(py.Arm("PyTorch " + py.Info["torch"], w.PySetup("infer")));
                int steps = batch == 1 ? Math.Max(o.Steps, 10) : o.Steps;
                try
                {
                    var res = Alternation.Run(arms, o.Rounds, steps, o.Log);
                    var table = Alternation.Table($"**{w.Name}, batch {w.Batch}** ({steps} forward passes per round; load average at end: {Machine.LoadAverage()})", res, w.Batch);
                    sb.AppendLine(table);
                    o.Log.WriteLine(table);
                }
                finally
                {
                    foreach (var a in arms) a.Owner?.Dispose();
                }
            }
        return sb.ToString();
    }

    /// <summary>Loader throughput (train transform, 224 px, all cores) vs what a resnet50 batch-8 Learner step consumes.</summary>
    public static string LoaderVsStep(SuiteOptions o, string imagesDir)
    {
        var sb = new StringBuilder(Header("Loader throughput vs resnet50 train-step consumption", o, null));
        var files = Directory.GetFiles(Path.Combine(imagesDir, "small"), "*.jpg").Order(StringComparer.Ordinal).ToArray();
        var rep = Enumerable.Range(0, 64).Select(i => ImageSource.FromFile(files[i % files.Length])).ToArray();
        var ds = new ImageDataset(rep, rep.Select((_, i) => i % 2).ToArray(), ["a", "b"], "bench");
        var loader = new DataLoader(ds.Map(VisionTransforms.Train(Preprocessing.ImageNet)), batchSize: 8, shuffle: true, workers: o.Threads, prefetch: 4);
        var loaderArm = new Arm($"DataLoader (train transform, {o.Threads} workers)", n =>
        {
            var t = new List<double>();
            long s = Stopwatch.GetTimestamp();
            while (t.Count < n)
                foreach (var b in loader)
                {
                    t.Add(Stopwatch.GetElapsedTime(s).TotalSeconds);
                    s = Stopwatch.GetTimestamp();
                    if (t.Count >= n) break;
                }
            return [.. t];
        });
        var w = Workload.Parse("resnet50", 8, 224);
        var step = ModelArms.Learner(w);
        try
        {
            var res = Alternation.Run([loaderArm, step], o.Rounds, o.Steps, o.Log);
            sb.AppendLine(Alternation.Table($"**batches of 8 at 224 px: loader alone vs Learner step alone** (load average at end: {Machine.LoadAverage()})", res, 8));
            sb.AppendLine(Inv, $"The loader supplies {res[1].Median / res[0].Median:0.0}× what the resnet50 step consumes (when both share the same cores in a real run the loader's workers compete with the step's threads).");
        }
        finally
        {
            step.Owner?.Dispose();
        }
        return sb.ToString();
    }

    /// <summary>Frozen resnet50: uncached epoch vs cached epoch (and the one-off cache build).</summary>
    public static string Cache(SuiteOptions o, int items = 256, int size = 64, int batch = 32)
    {
        var sb = new StringBuilder(Header($"Feature cache: frozen resnet50, {items} images at {size} px, batch {batch}, 10 classes", o, null));
        var g = new Generator(3);
        var images = randn([items, 3, size, size], generator: g);
        var labels = randint(0, 10, [items], dtype: ScalarType.Int64, generator: g);
        var order = BatchOrder.Shuffled(items, batch, 1);
        Batch Gather(int[] rows)
        {
            var idx = tensor(rows.Select(r => (long)r).ToArray());
            return new Batch(images.index_select(0, idx), labels.index_select(0, idx), rows);
        }
        manual_seed(0);
        var model = ModelZoo.Zoo.Create("resnet50", new ModelOptions(NumClasses: 10));
        model.FreezeBackbone();
        var options = new LearnerOptions { Quiet = true, Device = CPU };
        using var plain = new Learner(model, e => order(e).Select(Gather), null, options: options);
        var sw = Stopwatch.StartNew();
        using var cache = FeatureCache.Build(model, BatchOrder.Sequential(items, batch)(0).Select(Gather), new FeatureCacheOptions(BatchSize: batch, Order: order));
        double build = sw.Elapsed.TotalSeconds;
        using var cached = new Learner(model, e => order(e).Select(Gather), null, options: options);
        using var use = cached.UseFeatureCache(cache);
        double Epochs(Learner l, int n)
        {
            var s = Stopwatch.StartNew();
            l.Fit(n, Schedule.Constant(1e-3));
            return s.Elapsed.TotalSeconds / n;
        }
        var arms = new List<Arm>
        {
            new("epoch on cached features", n => [Epochs(cached, 10 * n)]),
            new("epoch through the frozen backbone", n => Enumerable.Range(0, n).Select(_ => Epochs(plain, 1)).ToArray()),
        };
        var res = Alternation.Run(arms, o.Rounds, 1, o.Log);
        sb.AppendLine(Alternation.Table($"**epoch time** (cache build, once: {build:0.00} s = {items / build:0} img/s; load average at end: {Machine.LoadAverage()}; 'ms/step' = ms per epoch, items/s = images per second of epoch)", res, items));
        sb.AppendLine(Inv, $"Building the cache costs {build / res[1].Median:0.0} uncached epochs; every cached epoch then saves {res[1].Median - res[0].Median:0.00} s.");
        images.Dispose();
        labels.Dispose();
        return sb.ToString();
    }
}
