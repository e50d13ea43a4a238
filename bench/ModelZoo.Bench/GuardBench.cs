using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Bench;

/// <summary>
/// <c>guard</c>: the cost of <see cref="OneDnnConvGuard"/>. Each round starts one process per arm (guard on, and
/// <c>ZOO_CONV_GUARD=off</c>), alternating; each process times SGD train steps of a zoo model (<c>guard-step</c>).
/// </summary>
internal static class GuardBench
{
    /// <summary>One arm in this process: median milliseconds of <paramref name="steps"/> steps after two warm-up steps.</summary>
    public static double Step(string model, int size, int batch, int steps)
    {
        manual_seed(0);
        using var net = global::ModelZoo.Zoo.Create(model, new ModelOptions(NumClasses: 10));
        using var opt = optim.SGD(net.parameters(), 0.01);
        net.train();
        var times = new List<double>();
        for (int i = 0; i < steps + 2; i++)
        {
            using var scope = NewDisposeScope();
            var x = randn(batch, 3, size, size);
            var y = randint(0, 10, batch);
            var sw = Stopwatch.StartNew();
            opt.zero_grad();
            nn.functional.cross_entropy(net.call(x), y).backward();
            opt.step();
            if (i >= 2) times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>Alternating rounds of both arms for each model, as a Markdown table.</summary>
    public static string Run(string[] models, int rounds, int size, int batch, int steps)
    {
        var inv = CultureInfo.InvariantCulture;
        var exe = Environment.ProcessPath!;
        var dll = typeof(GuardBench).Assembly.Location;
        var lines = new List<string>
        {
            $"Train step (SGD, batch {batch}, {size}×{size}, median of {steps} steps after 2 warm-up), guard on vs ZOO_CONV_GUARD=off, {rounds} alternating rounds; median of rounds",
            $"{Machine.CpuModel()}, {Environment.ProcessorCount} logical cores; load average at start: {Machine.LoadAverage()}",
            "",
            "| model | on (ms) | off (ms) | on / off |",
            "| --- | --- | --- | --- |",
        };
        foreach (var model in models)
        {
            var on = new List<double>();
            var off = new List<double>();
            for (int r = 0; r < rounds; r++)
                foreach (var arm in new[] { "on", "off" })
                {
                    var psi = new ProcessStartInfo(exe, $"\"{dll}\" guard-step --model {model} --size {size} --batch {batch} --steps {steps}")
                    { RedirectStandardOutput = true };
                    psi.Environment[OneDnnConvGuard.Variable] = arm;
                    using var p = Process.Start(psi)!;
                    var output = p.StandardOutput.ReadToEnd().Trim().Split('\n')[^1];
                    p.WaitForExit();
                    if (p.ExitCode != 0)
                    {
                        (arm == "on" ? on : off).Add(double.NaN);
                        Console.WriteLine($"{model} guard {arm}: exit code {p.ExitCode}{(p.ExitCode == 136 ? " (SIGFPE)" : "")}");
                        continue;
                    }
                    double ms = double.Parse(output, inv);
                    (arm == "on" ? on : off).Add(ms);
                    Console.WriteLine($"{model} round {r + 1} guard {arm}: {ms:F0} ms");
                }
            double mOn = Median(on), mOff = Median(off);
            lines.Add($"| {model} | {mOn:F0} | {(double.IsNaN(mOff) ? "crashed" : mOff.ToString("F0", inv))} | {(double.IsNaN(mOff) ? "-" : (mOn / mOff).ToString("F2", inv))} |");
        }
        lines.Add("");
        lines.Add($"load average at end: {Machine.LoadAverage()}");
        return string.Join('\n', lines);
    }

    private static double Median(List<double> xs)
    {
        if (xs.Any(double.IsNaN)) return double.NaN;
        var s = xs.Order().ToList();
        return s[s.Count / 2];
    }
}
