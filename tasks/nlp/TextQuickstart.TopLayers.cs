using System.Diagnostics;
using ModelZoo.FineTune;
using ModelZoo.Tasks.Reports;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Nlp;

// Fine-tuning the top transformer layers and the head on cached lower-layer hidden states.
public static partial class TextQuickstart
{
    /// <summary>4a. Runs the lower layers once over every text; 5a. fine-tunes the top layers and the head on the cached states.</summary>
    private static Trained FineTuneTopLayers(Prepared p, TuningPlan plan, Curves curves)
    {
        var (model, o, log) = (p.Model, p.Options, p.Log);
        int split = model.NumLayers - plan.Layers;
        var sw = Stopwatch.StartNew();
        var trainCache = CacheHidden(model, split, p.TrainIdx.Select(i => p.Ids[i]).ToList(), p.PadId, o.TuneBatchSize, p.Device, log, "train");
        var testCache = CacheHidden(model, split, p.TestIdx.Select(i => p.Ids[i]).ToList(), p.PadId, o.BatchSize, p.Device, log, "test");
        var twEmbed = sw.Elapsed;
        log.WriteLine($"cache: layer-{split} hidden states of {p.All.Length:N0} texts ({(trainCache.Bytes + testCache.Bytes) / 1e6:F0} MB) in {twEmbed.TotalSeconds:F0}s");
        model.ReplaceSequenceHead(p.NumClasses);
        model.to(p.Device);
        sw.Restart();
        var eval = TuneTop(model, split, plan.Epochs, trainCache, testCache, p.TrainY, p.TestY, p.TestIdx, o, log, curves.Losses, curves.Lrs, curves.Epochs);
        var twHead = sw.Elapsed;
        string method = $"top {plan.Layers} of {model.NumLayers} layers + head fine-tuned {plan.Epochs} epoch(s) on cached layer-{split} states";
        trainCache.Dispose(); testCache.Dispose();
        return new Trained(eval, twEmbed, twHead, method);
    }

    /// <summary>
    /// Fine-tunes the layers from <paramref name="fromLayer"/> up and the head on cached hidden states: AdamW (no decay
    /// on biases and norms), the head at 20× the layers' rate, linear warm-up over 10 % then cosine decay, class-balanced
    /// cross-entropy, gradients clipped at 1. Batches keep their length-sorted composition and are shuffled each epoch.
    /// After each epoch the test states are scored (reported, not used to choose anything); returns the final score.
    /// </summary>
    private static Evaluation TuneTop(ModelZoo.Models.Nlp.TextEncoder model, int fromLayer, int numEpochs, HiddenCache train, HiddenCache test,
        Tensor trainY, Tensor testY, int[] testIdx, TextQuickstartOptions o, TextWriter log, List<(long, double)> losses, List<(long, double)> lrs, List<EpochRecord> epochs)
    {
        var dev = model.parameters().First().device;
        foreach (var p in model.parameters()) p.requires_grad = false;
        var layerParams = new List<(string Name, TorchSharp.Modules.Parameter P)>();
        for (int l = fromLayer; l < model.NumLayers; l++)
            layerParams.AddRange(model.Get($"{model.LayersPath}.{l}")!.named_parameters().Select(p => (Name: p.name, P: p.parameter)));
        var headParams = model.Get(model.HeadPath)!.named_parameters().Select(p => (Name: p.name, P: p.parameter)).ToList();
        foreach (var (_, p) in layerParams.Concat(headParams)) p.requires_grad = true;
        static bool NoDecay(string name) => name.EndsWith("bias", StringComparison.Ordinal) || name.Contains("LayerNorm", StringComparison.Ordinal) || name.Contains("layer_norm", StringComparison.Ordinal);
        double headLr = o.EncoderLr * 20;
        var groups = new List<TorchSharp.Modules.AdamW.ParamGroup>
        {
            new(layerParams.Where(p => !NoDecay(p.Name)).Select(p => p.P), new TorchSharp.Modules.AdamW.Options { LearningRate = o.EncoderLr, weight_decay = 0.01 }),
            new(layerParams.Where(p => NoDecay(p.Name)).Select(p => p.P), new TorchSharp.Modules.AdamW.Options { LearningRate = o.EncoderLr, weight_decay = 0 }),
            new(headParams.Select(p => p.P), new TorchSharp.Modules.AdamW.Options { LearningRate = headLr, weight_decay = 0.01 }),
        };
        var baseLrs = new[] { o.EncoderLr, o.EncoderLr, headLr };
        using var opt = optim.AdamW(groups);
        var labels = trainY.to(dev);
        int numClasses = (int)model.Get(model.HeadPath)!.parameters().Last().shape[0];
        var counts = bincount(labels, minlength: numClasses).to(ScalarType.Float32).clamp_min(1);
        var classWeights = (counts.sum() / (counts * numClasses)).to(dev);
        int stepsPerEpoch = train.Batches.Count, totalSteps = stepsPerEpoch * numEpochs, warm = Math.Max(1, totalSteps / 10);
        var rng = new Random(o.Seed);
        long step = 0;
        Evaluation? last = null;
        for (int epoch = 1; epoch <= numEpochs; epoch++)
        {
            var sw = Stopwatch.StartNew();
            model.train();
            var order = Enumerable.Range(0, stepsPerEpoch).ToArray();
            rng.Shuffle(order);
            double sum = 0;
            foreach (var bi in order)
            {
                using var scope = NewDisposeScope();
                var (hidden, mask, rows) = train.Batches[bi];
                double factor = step < warm ? (step + 1.0) / warm : 0.5 * (1 + Math.Cos(Math.PI * (step - warm) / Math.Max(1, totalSteps - warm)));
                for (int g = 0; g < groups.Count; g++) opt.ParamGroups.ElementAt(g).LearningRate = baseLrs[g] * factor;
                opt.zero_grad();
                var logits = model.ForwardFrom(fromLayer, hidden.to(dev), mask.to(dev));
                var loss = nn.functional.cross_entropy(logits, labels.index_select(0, tensor(rows, device: dev)), weight: classWeights);
                loss.backward();
                nn.utils.clip_grad_norm_(layerParams.Concat(headParams).Select(p => p.P), 1.0);
                opt.step();
                double l = loss.item<float>();
                sum += l;
                step++;
                losses.Add((step, l));
                lrs.Add((step, baseLrs[0] * factor));
            }
            double trainSeconds = sw.Elapsed.TotalSeconds;
            last = ScoreCached(model, fromLayer, test, testY, testIdx);
            epochs.Add(new EpochRecord(epoch, "fine-tune", sum / stepsPerEpoch, last.Loss, new Dictionary<string, double> { ["accuracy"] = last.Accuracy }, sw.Elapsed.TotalSeconds));
            log.WriteLine($"epoch {epoch}/{numEpochs}: train loss {sum / stepsPerEpoch:F4}, test loss {last.Loss:F4}, test accuracy {last.Accuracy * 100:F2}% " +
                $"({stepsPerEpoch} steps in {trainSeconds:F0}s, test {sw.Elapsed.TotalSeconds - trainSeconds:F0}s)");
        }
        foreach (var p in model.parameters()) p.requires_grad = true;
        model.eval();
        return last!;
    }

    /// <summary>Scores cached test states through the top layers and the head (eval mode), in the original order of the test rows.</summary>
    private static Evaluation ScoreCached(ModelZoo.Models.Nlp.TextEncoder model, int fromLayer, HiddenCache test, Tensor testY, int[] testIdx)
    {
        model.eval();
        var dev = model.parameters().First().device;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var parts = test.Batches.Select(b => model.ForwardFrom(fromLayer, b.Hidden.to(dev), b.Mask.to(dev)).to(ScalarType.Float32).cpu()).ToList();
        var rows = tensor(test.Batches.SelectMany(b => b.Rows).ToArray());
        var logits = zeros(test.Count, parts[0].shape[1]).index_copy_(0, rows, cat(parts, 0));
        var y = testY.cpu();
        var per = nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.None);
        return new Evaluation(logits.data<float>().ToArray(), (int)logits.shape[1], y.data<long>().ToArray().Select(v => (int)v).ToArray(),
            per.data<float>().ToArray(), testIdx);
    }
}
