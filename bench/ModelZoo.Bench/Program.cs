using System.Diagnostics;
using System.Globalization;
using ModelZoo;
using ModelZoo.Bench;
using ModelZoo.Data;

// ModelZoo.Bench: measurements that compare with reference implementations on this machine (scripts/bench.sh runs them).
//   train  [--models resnet18,resnet50,minilm] [--rounds N] [--steps N] [--threads N] [--batch B] [--size S] [--no-python]
//          toolkit Learner vs raw TorchSharp loop vs Python PyTorch (persistent worker), alternating rounds
//   infer  [--models ...] [--batch B]                   zoo model vs Python PyTorch, eval + no_grad, batch 1 and 32
//   decode [--skimage DIR] [--rounds N] [--repeats N] [--threads N]
//          C# decode+resize 256+crop 224+normalize vs Pillow, one thread, and all cores (Parallel / multiprocessing)
//   loadstep                                            DataLoader images/s vs resnet50 batch-8 Learner step images/s
//   cache                                               frozen resnet50 epoch with and without the feature cache
//   soak [--steps 2000] [--every 100] [--size 32] [--batch 16] [--no-python]   RSS and live tensors over a long run
//   smoke                                               a few-second run of every harness path (CI)
//   datasets                                            load Fashion-MNIST and SpamAssassin, print counts and classes
//   loader [--dir DIR] [--workers N]                   DataLoader and TensorDataLoader throughput
//   profile                                             where the time goes in the C# eval image pipeline
//   guard [--models resnet18,efficientnet_v2_s,resnet50] [--rounds 3] [--size 112] [--batch 16] [--steps 5]
//          train step with OneDnnConvGuard on vs ZOO_CONV_GUARD=off, one process per arm, alternating
var cmd = args.Length > 0 ? args[0] : "decode";
string Opt(string name, string def)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : def;
}
var inv = CultureInfo.InvariantCulture;
int threads = int.Parse(Opt("--threads", Environment.ProcessorCount.ToString(inv)), inv);
TorchSharp.torch.set_num_threads(threads);
var outFile = Opt("--out", "");
void Report(string markdown)
{
    Console.WriteLine();
    Console.WriteLine(markdown);
    if (outFile.Length > 0) File.WriteAllText(outFile, markdown);
}
SuiteOptions Suite(string models, int rounds, int steps) => new(threads, int.Parse(Opt("--rounds", rounds.ToString(inv)), inv),
    int.Parse(Opt("--steps", steps.ToString(inv)), inv), Opt("--models", models).Split(',', StringSplitOptions.RemoveEmptyEntries), Console.Out,
    !args.Contains("--no-python"))
{
    Batch = Opt("--batch", "") is { Length: > 0 } b ? int.Parse(b, inv) : null,
    Size = Opt("--size", "") is { Length: > 0 } z ? int.Parse(z, inv) : null,
};
var skimage = Opt("--skimage", "/tmp/debs/sk/usr/lib/python3/dist-packages/skimage/data");
var imagesDir = Opt("--dir", Path.Combine(Path.GetTempPath(), "zoo-bench-images"));

void EnsureImages()
{
    if (Directory.Exists(Path.Combine(imagesDir, "large"))) return;
    if (!Directory.Exists(skimage))
        throw new DirectoryNotFoundException($"{skimage} not found: mkdir -p /tmp/debs && cd /tmp/debs && apt-get download python3-skimage && dpkg-deb -x python3-skimage_*.deb sk");
    Run("/usr/bin/python3", $"{Path.Combine(AppContext.BaseDirectory, "make_bench_images.py")} {skimage} {imagesDir}");
}

string Run(string exe, string arguments)
{
    var psi = new ProcessStartInfo(exe, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
    using var p = Process.Start(psi)!;
    var o = p.StandardOutput.ReadToEnd();
    var e = p.StandardError.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} {arguments} failed: {e}");
    return o.Trim();
}

static double Median(List<double> v)
{
    var s = v.Order().ToArray();
    return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
}

switch (cmd)
{
    case "train":
        Report(Suites.Train(Suite("resnet18,resnet50,minilm", 5, 3)));
        break;
    case "infer":
        Report(Suites.Infer(Suite("resnet18,resnet50,minilm", 5, 2)));
        break;
    case "loadstep":
        EnsureImages();
        Report(Suites.LoaderVsStep(Suite("", 5, 4), imagesDir));
        break;
    case "cache":
        Report(Suites.Cache(Suite("", 3, 1), int.Parse(Opt("--items", "256"), inv), int.Parse(Opt("--size", "64"), inv)));
        break;
    case "soak":
    {
        int steps = int.Parse(Opt("--steps", "2000"), inv), every = int.Parse(Opt("--every", "100"), inv);
        int size = int.Parse(Opt("--size", "32"), inv), batch = int.Parse(Opt("--batch", "16"), inv);
        int warm = int.Parse(Opt("--warmup", (steps / 10).ToString(inv)), inv);
        var soakModel = Opt("--model", "resnet18");
        var sb = new System.Text.StringBuilder($"### Memory soak: {soakModel} (10 classes), {size} px, batch {batch}, {steps} Learner steps, AdamW\n\n```\n{Machine.Describe(threads, null)}```\n\n");
        Console.WriteLine($"soak: {steps} steps, sampling every {every}");
        var rows = Soak.Run(soakModel, steps, every, size, batch);
        var (rss, tensors) = Soak.Drift(rows, warm);
        sb.AppendLine(Soak.Table(rows));
        sb.AppendLine(inv, $"C#: after warm-up (step {warm}) RSS drifts at most {rss:P1}, live tensors at most {tensors:P1} (target: within 5%); peak RSS (VmHWM) {Machine.PeakRssMb():0} MB; {rows[^1].Seconds:0} s in all.  ");
        if (!args.Contains("--no-python"))
        {
            var py = PyWorker.RunOnce($"soak {threads} {size} {batch} {steps} {every} {soakModel}");
            var prow = py["rows"]!.AsArray();
            var pRss = prow.Select(r => (step: r!["step"]!.GetValue<int>(), rss: r["rss_mb"]!.GetValue<double>())).ToList();
            var pAfter = pRss.Where(r => r.step >= warm).ToList();
            double pDrift = pAfter.Max(r => Math.Abs(r.rss - pAfter[0].rss)) / pAfter[0].rss;
            sb.AppendLine(inv, $"Python PyTorch {py["torch"]} (same run): RSS at step {pAfter[0].step} {pAfter[0].rss:0} MB, at step {pRss[^1].step} {pRss[^1].rss:0} MB (drift {pDrift:P1}); peak RSS {py["peak_rss_mb"]} MB; {prow[^1]!["s"]} s in all.  ");
            sb.AppendLine(inv, $"Peak RSS C# / Python = {Machine.PeakRssMb() / py["peak_rss_mb"]!.GetValue<double>():0.00} (C# includes the .NET runtime and TorchSharp's libtorch 2.10).  ");
        }
        sb.AppendLine(inv, $"Load average at end: {Machine.LoadAverage()}");
        Report(sb.ToString());
        break;
    }
    case "overhead":
    {
        // What the Learner adds per step (BatchNorm buffer snapshot for the NaN guard, global grad norm), in ms.
        var sb = new System.Text.StringBuilder($"```\n{Machine.Describe(threads, null)}```\n\n| workload | params with grad | elements | buffer snapshot ms | grad norm + item ms | forward+loss ms (for scale) |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
        foreach (var m in Opt("--models", "resnet18,resnet50,minilm").Split(','))
            sb.AppendLine(LearnerOverhead.Measure(Workload.Parse(m), int.Parse(Opt("--reps", "5"), inv)));
        Report(sb.ToString());
        break;
    }
    case "guard":
        Report(GuardBench.Run(Opt("--models", "resnet18,efficientnet_v2_s,resnet50").Split(','), int.Parse(Opt("--rounds", "3"), inv),
            int.Parse(Opt("--size", "112"), inv), int.Parse(Opt("--batch", "16"), inv), int.Parse(Opt("--steps", "5"), inv)));
        break;
    case "guard-step":
        Console.WriteLine(GuardBench.Step(Opt("--model", "resnet18"), int.Parse(Opt("--size", "112"), inv), int.Parse(Opt("--batch", "16"), inv),
            int.Parse(Opt("--steps", "5"), inv)).ToString("F1", inv));
        break;
    case "smoke":
    {
        // Every harness path on tiny inputs: proves the suites run (CI), says nothing about speed.
        var o = new SuiteOptions(threads, 1, 1, ["resnet18", "minilm"], Console.Out, !args.Contains("--no-python")) { Batch = 2, Size = 32 };
        Report(Suites.Train(o));
        Report(Suites.Infer(o));
        Report(Suites.Cache(o with { Rounds = 1 }, items: 16, size: 32, batch: 8));
        var rows = Soak.Run("resnet18", 20, 5, 16, 2);
        Report(Soak.Table(rows));
        break;
    }
    case "decode":
    {
        EnsureImages();
        var rounds = int.Parse(Opt("--rounds", "5"), inv);
        var repeats = int.Parse(Opt("--repeats", "4"), inv);
        Console.WriteLine($"decode + resize 256 (bilinear, antialiased) + center crop 224 + normalize, one thread and {threads} threads/processes, {rounds} alternating rounds; images/s (median)");
        Console.WriteLine($"{Machine.CpuModel()}, {Environment.ProcessorCount} logical cores; load average at start: {Machine.LoadAverage()}; .NET {Environment.Version}; Python: /usr/bin/python3 with Pillow (Debian)");
        foreach (var set in new[] { "small", "large" })
        {
            var dir = Path.Combine(imagesDir, set);
            var files = Directory.GetFiles(dir, "*.jpg").Order(StringComparer.Ordinal).ToArray();
            var bytes = files.Select(File.ReadAllBytes).ToArray();
            var fast = VisionTransforms.Eval(Preprocessing.ImageNet);
            var exact = VisionTransforms.Eval(Preprocessing.ImageNet, downscaleJpeg: false);
            double CSharp(VisionPipeline p)
            {
                var rng = new Random(0);
                foreach (var b in bytes) p.Apply(new ImageSample(ImageSource.FromBytes(b, "x"), 0), rng);
                var sw = Stopwatch.StartNew();
                for (var r = 0; r < repeats; r++)
                    foreach (var b in bytes) p.Apply(new ImageSample(ImageSource.FromBytes(b, "x"), 0), rng);
                return repeats * bytes.Length / sw.Elapsed.TotalSeconds;
            }
            double CSharpParallel(VisionPipeline p)
            {
                var items = Enumerable.Range(0, repeats * bytes.Length).ToArray();
                var po = new ParallelOptions { MaxDegreeOfParallelism = threads };
                Parallel.ForEach(bytes, po, b => p.Apply(new ImageSample(ImageSource.FromBytes(b, "x"), 0), new Random(0)));
                var sw = Stopwatch.StartNew();
                Parallel.ForEach(items, po, i => p.Apply(new ImageSample(ImageSource.FromBytes(bytes[i % bytes.Length], "x"), 0), new Random(i)));
                return items.Length / sw.Elapsed.TotalSeconds;
            }
            string py = Path.Combine(AppContext.BaseDirectory, "pil_decode.py");
            string allC = $"skia+downscale x{threads} threads", allP = $"pillow x{threads} processes";
            var res = new Dictionary<string, List<double>> { ["skia+downscale"] = [], ["skia exact"] = [], ["pillow"] = [], ["pillow draft"] = [] };
            if (threads > 1) { res[allC] = []; res[allP] = []; }
            for (var r = 0; r < rounds; r++)
            {
                res["skia+downscale"].Add(CSharp(fast));
                res["pillow"].Add(double.Parse(Run("/usr/bin/python3", $"{py} {dir} {repeats}"), inv));
                res["skia exact"].Add(CSharp(exact));
                res["pillow draft"].Add(double.Parse(Run("/usr/bin/python3", $"{py} {dir} {repeats} draft"), inv));
                if (threads > 1)
                {
                    res[allC].Add(CSharpParallel(fast));
                    res[allP].Add(double.Parse(Run("/usr/bin/python3", $"{py} {dir} {repeats * threads} plain {threads}"), inv));
                }
            }
            var first = ImageDecoder.ReadSize(ImageSource.FromFile(files[0]));
            Console.WriteLine($"[{set}: {files.Length} JPEGs, e.g. {first.Width}x{first.Height}]");
            foreach (var (k, v) in res)
                Console.WriteLine($"  {k,-16} {Median(v),8:0.0} img/s   (rounds: {string.Join(" ", v.Select(x => x.ToString("0", inv)))})");
            Console.WriteLine($"  ratio skia+downscale / pillow       = {Median(res["skia+downscale"]) / Median(res["pillow"]):0.00}");
            Console.WriteLine($"  ratio skia+downscale / pillow draft = {Median(res["skia+downscale"]) / Median(res["pillow draft"]):0.00}");
            Console.WriteLine($"  ratio skia exact / pillow           = {Median(res["skia exact"]) / Median(res["pillow"]):0.00}");
            if (threads > 1)
                Console.WriteLine($"  ratio {allC} / {allP} = {Median(res[allC]) / Median(res[allP]):0.00}");
        }
        Console.WriteLine($"load average at end: {Machine.LoadAverage()}");
        break;
    }
    case "datasets":
    {
        var (train, test) = FashionMnist.Load();
        Console.WriteLine($"Fashion-MNIST ({train.Source}): train {train.Count}, test {test.Count}, {train.Height}x{train.Width}, classes: {string.Join(", ", train.ClassNames)}");
        Console.WriteLine(train.ClassBalance());
        var spam = SpamAssassin.Load();
        Console.WriteLine($"SpamAssassin ({spam.Source}): {spam.Count} emails, classes: {string.Join(", ", spam.ClassNames)}");
        Console.WriteLine(spam.ClassBalance());
        var (tr, va) = spam.Split(0.2, stratified: true, seed: 42);
        Console.WriteLine($"stratified split 80/20: train {tr.Count} [{string.Join(", ", tr.ClassBalance().Counts)}], val {va.Count} [{string.Join(", ", va.ClassBalance().Counts)}]");
        var sample = spam[spam.Count - 1].Text;
        Console.WriteLine($"last email ({spam.Describe(spam.Count - 1)}):\n{sample[..Math.Min(300, sample.Length)]}");
        break;
    }
    case "loader":
    {
        EnsureImages();
        var workers = int.Parse(Opt("--workers", Environment.ProcessorCount.ToString(inv)), inv);
        foreach (var set in new[] { "small", "large" })
        {
            var files = Directory.GetFiles(Path.Combine(imagesDir, set), "*.jpg");
            var rep = Enumerable.Range(0, 64).Select(i => ImageSource.FromFile(files[i % files.Length])).ToArray();
            var ds = new ImageDataset(rep, rep.Select((_, i) => i % 2).ToArray(), ["a", "b"], set);
            foreach (var (name, tf) in new[] { ("eval", VisionTransforms.Eval(Preprocessing.ImageNet)), ("train", VisionTransforms.Train(Preprocessing.ImageNet)) })
            {
                var loader = new DataLoader(ds.Map(tf), batchSize: 32, shuffle: true, workers: workers, prefetch: 4);
                foreach (var _ in loader) { }
                var sw = Stopwatch.StartNew();
                var n = 0;
                for (var e = 0; e < 3; e++) foreach (var b in loader) n += b.Count;
                Console.WriteLine($"DataLoader {set} {name}, {workers} workers: {n / sw.Elapsed.TotalSeconds:0.0} img/s");
            }
        }
        if (Directory.Exists(FashionMnist.DebianPath))
        {
            var (train, _) = FashionMnist.Load();
            foreach (var size in new[] { 0, 224 })
            {
                using var tl = TensorDataLoader.From(train, batchSize: 64, shuffle: true, resize: size, channels: size > 0 ? 3 : 0,
                    mean: size > 0 ? Preprocessing.ImageNet.Mean : null, std: size > 0 ? Preprocessing.ImageNet.Std : null);
                var sw = Stopwatch.StartNew();
                var n = 0;
                foreach (var b in tl) { n += b.Count; if (sw.Elapsed.TotalSeconds > 10) break; }
                Console.WriteLine($"TensorDataLoader Fashion-MNIST batch 64{(size > 0 ? $" resized to 3x{size}x{size}" : " 1x28x28")}: {n / sw.Elapsed.TotalSeconds:0} img/s");
            }
        }
        break;
    }
    case "profile":
    {
        // Where the time goes in the C# eval pipeline (one thread): decode, resize, crop+normalize.
        EnsureImages();
        foreach (var set in new[] { "small", "large" })
        {
            var bytes = Directory.GetFiles(Path.Combine(imagesDir, set), "*.jpg").Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray();
            var rng = new Random(0);
            var resize = new Resize(256);
            var crop = new CenterCrop(224);
            var norm = Normalize.From(Preprocessing.ImageNet);
            double tDec = 0, tRes = 0, tNorm = 0;
            var reps = int.Parse(Opt("--repeats", "4"), inv);
            for (var r = 0; r < reps; r++)
                foreach (var b in bytes)
                {
                    var sw = Stopwatch.StartNew();
                    var img = ImageDecoder.Decode(ImageSource.FromBytes(b, "x"));
                    tDec += sw.Elapsed.TotalMilliseconds; sw.Restart();
                    var rs = resize.Apply(img, rng);
                    tRes += sw.Elapsed.TotalMilliseconds; sw.Restart();
                    norm.ToTensor(crop.Apply(rs, rng), 0);
                    tNorm += sw.Elapsed.TotalMilliseconds;
                }
            var n = reps * bytes.Length;
            Console.WriteLine($"{set}: decode {tDec / n:0.00} ms, resize {tRes / n:0.00} ms, crop+normalize {tNorm / n:0.00} ms per image");
        }
        break;
    }
    default:
        Console.Error.WriteLine("usage: ModelZoo.Bench decode|datasets|loader [options]");
        return 2;
}
return 0;

