using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelZoo.FineTune;
using ModelZoo.Models.Vision;
using ModelZoo.Tasks.Vision;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Recipes;

/// <summary>What <see cref="TorchrunExport.Export"/> wrote.</summary>
/// <param name="Folder">The export folder.</param>
/// <param name="Command">The torchrun command line for one machine with two processes.</param>
/// <param name="Notes">What the export replays differently from the zoo (one line each).</param>
public sealed record TorchrunExportResult(string Folder, string Command, IReadOnlyList<string> Notes);

/// <summary>
/// <c>zoo export RUN_OR_RECIPE --to torchrun OUT/</c> and <c>zoo import CKPT --like RUN/</c>: hands a zoo run to
/// PyTorch's <c>torchrun</c> (DistributedDataParallel over gloo or NCCL, any number of machines) as a self-contained
/// folder — <c>weights.pth</c> (loads with <c>strict=True</c> into the torchvision architecture), <c>config.json</c>
/// (architecture, surgery, head, data, transforms, loss, optimizer, schedule, epochs), <c>train.py</c>,
/// <c>check.pth</c> (an input and the zoo's logits for it) and <c>README.md</c> — and brings the trained weights back
/// as a zoo checkpoint.
/// </summary>
public static class TorchrunExport
{
    /// <summary>Data sources <c>train.py</c> reads (with PIL and the standard library only).</summary>
    public static readonly IReadOnlyList<string> SupportedSources = ["fashion-mnist", "image-folder", "image-csv"];

    private static readonly string[] UnsupportedAugment = ["mixup", "cutmix"];

    /// <summary>
    /// Exports a run folder (its <c>best.ckpt</c> and <c>recipe.yaml</c>), a checkpoint file of a run, or a recipe
    /// (pretrained weights, surgery and a new head, as <c>zoo train</c> would start) to <paramref name="outFolder"/>.
    /// </summary>
    /// <exception cref="RecipeException">Something in the run has no PyTorch counterpart this export can replay; the message names it.</exception>
    public static TorchrunExportResult Export(string runOrRecipe, string outFolder, TextWriter log)
    {
        var (recipe, model, spec) = Resolve(runOrRecipe, log);
        using var _ = model;
        model.eval();
        var notes = new List<string>();
        var config = BuildConfig(recipe, model, spec, notes);

        Directory.CreateDirectory(outFolder);
        var folder = Path.GetFullPath(outFolder);
        var state = model.state_dict();
        StateDictFile.Write(Path.Combine(folder, "weights.pth"), state);
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        File.WriteAllText(Path.Combine(folder, "train.py"), TrainScript());
        File.WriteAllText(Path.Combine(folder, "spec.json"), spec.ToJson());
        WriteCheck(model, spec, Path.Combine(folder, "check.pth"));
        var command = $"torchrun --nproc_per_node=2 {DebianFlags} {Path.Combine(folder, "train.py")}";
        File.WriteAllText(Path.Combine(folder, "README.md"), Readme(recipe, spec, folder, runOrRecipe, notes));
        log.WriteLine($"torchrun export of {runOrRecipe} → {folder}: weights.pth, config.json, train.py, check.pth, README.md");
        foreach (var n in notes) log.WriteLine("  note: " + n);
        log.WriteLine($"verify:  python3 {Path.Combine(folder, "train.py")} --check");
        log.WriteLine($"train:   {command}");
        return new TorchrunExportResult(folder, command, notes);
    }

    /// <summary>
    /// Reads a state dict trained by the exported <c>train.py</c> (or any PyTorch state dict of the same architecture;
    /// <c>{"model": …}</c> wrappers and DDP's <c>module.</c> prefix are unwrapped) and writes it as a zoo checkpoint with
    /// the description of <paramref name="likeRun"/>, so <c>zoo eval</c>, <c>zoo predict</c> and the C# API use it.
    /// </summary>
    /// <param name="torchCheckpoint">The <c>.pth</c> file (e.g. <c>checkpoints/last.pth</c>).</param>
    /// <param name="likeRun">A run folder or zoo checkpoint with the same architecture, surgery and classes, or the torchrun export folder (its <c>spec.json</c>).</param>
    /// <param name="output">The <c>.ckpt</c> to write; null for the torch file's name with <c>.ckpt</c>.</param>
    /// <returns>The path written.</returns>
    /// <exception cref="InvalidDataException">The weights do not fit the run's architecture; the message names the keys or shapes.</exception>
    public static string Import(string torchCheckpoint, string likeRun, string? output = null)
    {
        var like = LoadLike(likeRun);
        using var model = like.Model;
        using var state = StateDictFile.Read(torchCheckpoint);
        var own = model.state_dict();
        var missing = own.Keys.Except(state.Keys).ToList();
        var extra = state.Keys.Except(own.Keys).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new InvalidDataException($"'{torchCheckpoint}' does not fit the architecture of '{like.Path}' ({like.Spec.Model}, {like.Spec.ClassNames.Count} classes): " +
                $"missing {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}; unexpected {string.Join(", ", extra.Take(5))}{(extra.Count > 5 ? ", …" : "")}. " +
                "Pass --like the run the torchrun export was made from.");
        using (no_grad())
        {
            foreach (var (name, t) in own)
            {
                var src = state[name];
                if (!src.shape.SequenceEqual(t.shape))
                    throw new InvalidDataException($"'{torchCheckpoint}': '{name}' has shape [{string.Join(", ", src.shape)}], the run's model expects [{string.Join(", ", t.shape)}].");
                t.copy_(src);
            }
        }
        var path = Path.GetFullPath(output ?? Path.ChangeExtension(torchCheckpoint, ".ckpt"));
        if (string.Equals(path, Path.GetFullPath(torchCheckpoint), StringComparison.Ordinal))
            throw new ArgumentException($"--output '{path}' is the file being imported; choose another name.");
        Checkpoint.WriteWeights(path, model.GetType().Name, own, like.Spec.ToJson());
        return path;
    }

/// <summary>The architecture to import into: from a run folder or checkpoint, or from an export folder's (or any) <c>spec.json</c>.</summary>
    private static TrainedModel LoadLike(string like)
    {
        string? specFile = File.Exists(like) && like.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? like
            : Directory.Exists(like) && !File.Exists(Path.Combine(like, "best.ckpt")) && File.Exists(Path.Combine(like, "spec.json")) ? Path.Combine(like, "spec.json")
            : null;
        if (specFile is null) return TrainedModel.Load(like);
        var spec = TrainedModelSpec.FromJson(File.ReadAllText(specFile), specFile);
        return new TrainedModel(spec.BuildArchitecture(), spec, specFile);
    }

        // ----- what is exported -----

    private static (Recipe Recipe, ZooModel Model, TrainedModelSpec Spec) Resolve(string runOrRecipe, TextWriter log)
    {
        bool isRecipe = File.Exists(runOrRecipe) && Path.GetExtension(runOrRecipe).ToLowerInvariant() is ".yaml" or ".yml";
        if (isRecipe) return FromRecipe(RecipeLoader.Load(runOrRecipe), log);
        if (!Directory.Exists(runOrRecipe) && !File.Exists(runOrRecipe))
            throw new RecipeException($"'{runOrRecipe}' is neither a run folder, a checkpoint nor a recipe file; pass runs/<date>-<name>/, its best.ckpt, or recipes/<name>.yaml.");
        var trained = TrainedModel.Load(runOrRecipe);
        var spec = trained.Spec;
        if (spec.Recipe is null)
            throw new RecipeException($"'{trained.Path}' was not written by a recipe run (its description has no recipe), so its data, loss and schedule are unknown. Export a run of 'zoo train'.");
        var recipe = RecipeLoader.Parse(spec.Recipe, trained.Path);
        return (recipe, trained.Model, spec);
    }

    private static (Recipe, ZooModel, TrainedModelSpec) FromRecipe(Recipe r, TextWriter log)
    {
        var entry = Zoo.Catalog.Get(r.Model.Name);
        if (entry.Task != ModelTask.Vision) throw Unsupported($"model '{r.Model.Name}' is a text model");
        Learner.SeedEverything(r.Seed);
        var model = Zoo.Load(r.Model.Name, r.Model.Weights, new ModelOptions(NumClasses: 0, InChans: r.Model.InChans));
        var pre = model.Preprocessing;
        int imageSize = r.Data.ImageSize > 0 ? r.Data.ImageSize : pre.CropSize;
        if (imageSize != pre.CropSize)
            pre = pre with { CropSize = imageSize, ResizeSize = pre.ResizeSize == 0 ? 0 : (int)Math.Round(imageSize * (double)pre.ResizeSize / pre.CropSize) };
        var plan = new InputPlan("vision", r.Model.Name, r.Model.InChans, imageSize, pre, 0);
        CheckSource(r);
        using var data = DataSources.Open(r.Data.Source, r.Data.Path, testSplit: false, plan, r.Data, log);
        TrainedModelSpec.ApplySurgery(model, r.Model.Surgery);
        model.ReplaceHead(data.ClassNames.Count);
        var spec = new TrainedModelSpec
        {
            Task = "vision", Model = r.Model.Name, InChans = r.Model.InChans, Surgery = r.Model.Surgery.ToList(), ClassNames = data.ClassNames.ToList(),
            ImageSize = imageSize, Preprocessing = pre, Recipe = RecipeLoader.ToYaml(r),
        };
        return (r, model, spec);
    }

    private static RecipeException Unsupported(string what) =>
        new($"cannot export to torchrun: {what}. See docs/distributed.md for what replays in PyTorch.");

    private static void CheckSource(Recipe r)
    {
        if (!SupportedSources.Contains(r.Data.Source))
            throw Unsupported($"data.source '{r.Data.Source}' is not read by the exported train.py (it reads {string.Join(", ", SupportedSources)}; " +
                "Parquet needs pyarrow and text needs transformers, which Debian 12 does not package, so they are not offered untested). Export the images to a folder (data.source=image-folder)");
        var bad = r.Data.Augment.Where(UnsupportedAugment.Contains).ToList();
        if (bad.Count > 0)
            throw Unsupported($"data.augment {string.Join(", ", bad)} is a batch-level mix that torchvision 0.14 has no transform for; remove it from the recipe (--set data.augment=[…]) before exporting");
    }

    private static JsonObject BuildConfig(Recipe r, ZooModel model, TrainedModelSpec spec, List<string> notes)
    {
        if (spec.Task != "vision") throw Unsupported($"'{spec.Model}' is a text model (Hugging Face transformers, which Debian 12 does not package, would be needed to rebuild it)");
        CheckSource(r);
        var entry = Zoo.Catalog.Get(spec.Model);
        var builder = Builder(entry);
        CheckSurgeryPaths(spec, entry);
        var headPath = model.HeadPath;
        var head = model.Get(headPath) switch
        {
            TorchSharp.Modules.Linear l => new JsonObject { ["type"] = "linear", ["in"] = l.in_features, ["out"] = l.out_features, ["bias"] = l.bias is not null },
            TorchSharp.Modules.Conv2d c => new JsonObject { ["type"] = "conv", ["in"] = c.in_channels, ["out"] = c.out_channels, ["kernel"] = c.kernel_size[0], ["bias"] = c.bias is not null },
            var other => throw Unsupported($"the head at '{headPath}' is a {other.GetType().Name}, which the export cannot rebuild"),
        };
        if (spec.InChans != 3 && model.StemConvPath is null) throw Unsupported($"model.in_chans {spec.InChans} on '{spec.Model}', whose stem convolution is unknown");
        var afterHead = new JsonArray();
        if (r.Model.HeadDropout > 0)
            afterHead.Add(new JsonObject { ["op"] = "insert_before", ["path"] = headPath, ["name"] = "head_dropout", ["with"] = string.Create(CultureInfo.InvariantCulture, $"dropout({r.Model.HeadDropout})") });
        var groups = new JsonArray();
        foreach (var g in model.ParameterGroups())
            groups.Add(new JsonArray(JsonValue.Create(g.Name), new JsonArray(g.Parameters.Select(p => (JsonNode)JsonValue.Create(p.Name)!).ToArray())));
        var pre = spec.Preprocessing ?? model.Preprocessing;
        var d = r.Data;
        int batch = d.BatchSize > 0 ? d.BatchSize : spec.ImageSize <= 64 ? 128 : 32;
        string? dataPath = d.Path is null ? null : Path.GetFullPath(d.Path);
        if (d.Source == "fashion-mnist" && dataPath is null) dataPath = FashionMnistSource.Ensure(null, TextWriter.Null);
        if (dataPath is null) throw new RecipeException($"the recipe's data.source '{d.Source}' has no data.path.");
        foreach (var (key, p) in new[] { ("data.path", dataPath), ("data.val_path", d.ValPath), ("data.test_path", d.TestPath) })
            if (p is not null && !File.Exists(p) && !Directory.Exists(p))
                throw new RecipeException($"{key} '{p}' does not exist here (relative paths are taken from the current folder); export from the folder the run was trained in.");
        var t = r.Train;
        double lr = t.Lr;
        if (lr <= 0) throw Unsupported("train.lr is 0 (the zoo's LR finder chose it at run time); set the learning rate the run used, e.g. --set train.lr=0.001");
        if (t.FeatureCache != "off" && t.Mode != "fine-tune")
            notes.Add("the zoo trains a frozen backbone's head on cached features; train.py runs the frozen backbone every step (same result, no cache)");
        notes.Add("the validation split is drawn by train.py (stratified, same fraction and seed, Python's RNG), so it holds other items than the zoo's");
        notes.Add($"data.batch_size {batch} is the global batch: each of N processes takes {batch}/N, so the learning rates stay as in the recipe");
        if (t.EarlyStoppingPatience > 0) notes.Add("train.early_stopping_patience is not replayed (every epoch runs)");
        if (t.TimeBudgetSeconds > 0) notes.Add("train.time_budget_seconds is not replayed");
        return new JsonObject
        {
            ["format"] = "modelzoo-torchrun/1",
            ["model"] = new JsonObject
            {
                ["catalog"] = spec.Model, ["builder"] = builder, ["in_chans"] = spec.InChans, ["stem_conv"] = model.StemConvPath,
                ["surgery"] = Surgery(spec.Surgery), ["head_path"] = headPath, ["head"] = head, ["after_head"] = afterHead, ["param_groups"] = groups,
            },
            ["classes"] = new JsonArray(spec.ClassNames.Select(c => (JsonNode)JsonValue.Create(c)!).ToArray()),
            ["input"] = new JsonObject
            {
                ["image_size"] = spec.ImageSize, ["resize"] = pre.ResizeSize, ["crop"] = pre.CropSize, ["interpolation"] = pre.Interpolation.ToString().ToLowerInvariant(),
                ["mean"] = Floats(pre.Mean), ["std"] = Floats(pre.Std), ["channel_order"] = pre.ChannelOrder.ToString().ToLowerInvariant(), ["value_range"] = pre.ValueRange,
            },
            ["data"] = new JsonObject
            {
                ["source"] = d.Source, ["path"] = dataPath, ["val_path"] = Full(d.ValPath), ["test_path"] = Full(d.TestPath),
                ["image_column"] = d.Image ?? "path", ["label_column"] = d.Label, ["val_split"] = d.ValPath is null ? d.ValSplit : 0, ["limit"] = d.Limit,
                ["batch_size"] = batch, ["augment"] = new JsonArray(d.Augment.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray()),
            },
            ["train"] = new JsonObject
            {
                ["mode"] = t.Mode, ["epochs"] = t.Epochs, ["freeze_epochs"] = t.FreezeEpochs, ["lr"] = lr, ["lr_spread"] = t.LrSpread, ["optimizer"] = t.Optimizer,
                ["weight_decay"] = t.WeightDecay, ["momentum"] = t.Momentum, ["schedule"] = t.Schedule, ["warmup"] = t.Warmup, ["label_smoothing"] = t.LabelSmoothing, ["class_weights"] = t.ClassWeights,
                ["clip_grad_norm"] = t.ClipGradNorm, ["seed"] = r.Seed,
            },
        };
    }

    private static string? Full(string? p) => p is null ? null : Path.GetFullPath(p);

    private static JsonArray Floats(float[] v) => new(v.Select(x => (JsonNode)JsonValue.Create((double)x)).ToArray());

    /// <summary>How train.py builds the catalog architecture with torchvision.</summary>
    private static JsonObject Builder(ModelEntry entry)
    {
        if (entry.Config is ResNetConfig rc)
        {
            if (rc.StemWidth != 64) throw Unsupported($"'{entry.Name}' has a stem of width {rc.StemWidth}; torchvision's ResNet has 64");
            return new JsonObject
            {
                ["kind"] = "resnet", ["block"] = rc.Block, ["layers"] = new JsonArray(rc.Layers.Select(l => (JsonNode)JsonValue.Create(l)).ToArray()),
                ["groups"] = rc.Groups, ["width_per_group"] = rc.WidthPerGroup,
            };
        }
        // The other vision families carry torchvision's names and parameter layout (the catalog-wide parity tests check
        // it); train.py loads weights.pth strictly and `train.py --check` compares logits, so a difference cannot pass unseen.
        if (entry.Family is "googlenet" or "inception")
            throw Unsupported($"'{entry.Name}' has auxiliary classifiers and input transforms in torchvision whose replay is not verified");
        return new JsonObject { ["kind"] = "torchvision", ["name"] = entry.Name };
    }

    /// <summary>
    /// Refuses surgery whose target train.py cannot be sure to find in the torchvision model: ResNets have the same module
    /// tree in both (names included); in other families only modules holding parameters are sure to share their path.
    /// </summary>
    private static void CheckSurgeryPaths(TrainedModelSpec spec, ModelEntry entry)
    {
        if (spec.Surgery.Count == 0 || entry.Config is ResNetConfig) return;
        using var plain = Zoo.Create(spec.Model, new ModelOptions(NumClasses: 0, InChans: spec.InChans));
        var keys = plain.state_dict().Keys.ToList();
        var inserted = new HashSet<string>();
        foreach (var s in spec.Surgery)
        {
            var path = s.Replace ?? s.Remove ?? s.InsertAfter ?? s.InsertBefore!;
            if (inserted.Contains(path) || keys.Any(k => k.StartsWith(path + ".", StringComparison.Ordinal))) { Inserted(s); continue; }
            throw Unsupported($"surgery on '{path}' ({RecipeRunner.Describe([s])}): that module holds no parameters in '{spec.Model}', so its path in torchvision's " +
                "module tree is not known to be the same; edit a module that holds parameters, or a ResNet");
        }

        void Inserted(SurgeryStep s)
        {
            if (s.Name is null) return;
            var anchor = s.InsertAfter ?? s.InsertBefore!;
            int dot = anchor.LastIndexOf('.');
            inserted.Add(dot < 0 ? s.Name : anchor[..(dot + 1)] + s.Name);
        }
    }

    private static JsonArray Surgery(IEnumerable<SurgeryStep> steps)
    {
        var a = new JsonArray();
        foreach (var s in steps)
        {
            SurgeryModules.Check(s.With ?? "identity", "surgery");
            a.Add(s switch
            {
                { Replace: { } p } => new JsonObject { ["op"] = "replace", ["path"] = p, ["with"] = s.With },
                { Remove: { } p } => new JsonObject { ["op"] = "remove", ["path"] = p },
                { InsertAfter: { } p } => new JsonObject { ["op"] = "insert_after", ["path"] = p, ["name"] = s.Name, ["with"] = s.With },
                { InsertBefore: { } p } => new JsonObject { ["op"] = "insert_before", ["path"] = p, ["name"] = s.Name, ["with"] = s.With },
                _ => throw new RecipeException("a surgery step names no edit."),
            });
        }
        return a;
    }

    /// <summary>A fixed input (seeded) and the zoo model's logits for it, for <c>train.py --check</c>.</summary>
    private static void WriteCheck(ZooModel model, TrainedModelSpec spec, string path)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var rng = new Random(20261204);
        var values = new float[2 * spec.InChans * spec.ImageSize * spec.ImageSize];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() * 4 - 2);
        var x = tensor(values, [2, spec.InChans, spec.ImageSize, spec.ImageSize]);
        var logits = model.call(x);
        StateDictFile.Write(path, new Dictionary<string, Tensor> { ["input"] = x, ["logits"] = logits.contiguous() });
    }

    /// <summary>The training script, as shipped inside this assembly.</summary>
    public static string TrainScript()
    {
        using var s = typeof(TorchrunExport).Assembly.GetManifestResourceStream("ModelZoo.Tasks.Recipes.Torchrun.train.py")
            ?? throw new InvalidOperationException("train.py is missing from ModelZoo.Tasks (an embedded resource); rebuild the solution.");
        using var reader = new StreamReader(s, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>
    /// torchrun of PyTorch 1.13 under Python 3.11 (Debian 12's python3-torch) fails on its own default <c>--redirects 0
    /// --tee 0</c> (an enum lookup that Python 3.11 changed); redirecting and teeing stderr works there and on PyTorch 2.x.
    /// </summary>
    private const string DebianFlags = "--redirects 2 --tee 2";

    private static string Readme(Recipe r, TrainedModelSpec spec, string folder, string source, IReadOnlyList<string> notes)
    {
        var sb = new StringBuilder();
        var train = Path.Combine(folder, "train.py");
        sb.AppendLine($"# torchrun export of `{r.Name}`").AppendLine();
        sb.AppendLine($"Written by `zoo export {source} --to torchrun {folder}`: {spec.Model}, {spec.ClassNames.Count} classes, " +
            $"{spec.ImageSize}px input, surgery: {(spec.Surgery.Count == 0 ? "none" : RecipeRunner.Describe(spec.Surgery))}; " +
            $"{r.Train.Mode}, {r.Train.Epochs} epoch(s), {r.Train.Optimizer} lr {r.Train.Lr.ToString(CultureInfo.InvariantCulture)} {r.Train.Schedule}.").AppendLine();
        sb.AppendLine("| file | what |").AppendLine("|---|---|");
        sb.AppendLine("| weights.pth | starting weights, a state dict that loads with `strict=True` into the rebuilt model |");
        sb.AppendLine("| config.json | architecture builder, surgery, head, data, transforms, loss, optimizer, schedule, epochs |");
        sb.AppendLine("| train.py | DDP training (PyTorch 1.13 or 2.x, torchvision 0.14 or later) |");
        sb.AppendLine("| check.pth | an input and the zoo model's logits for it (`train.py --check`) |");
        sb.AppendLine("| spec.json | the zoo's description of the model (what `zoo import` needs besides the weights) |").AppendLine();
        sb.AppendLine("## 1. Check the rebuild").AppendLine();
        sb.AppendLine("```").AppendLine($"python3 {train} --check").AppendLine("```").AppendLine();
        sb.AppendLine("It rebuilds the model from torchvision, replays the surgery, loads weights.pth strictly and compares the logits with the zoo's (≤ 1e-4).").AppendLine();
        sb.AppendLine("## 2. Train").AppendLine();
        sb.AppendLine("One machine, two processes (gloo on CPU; NCCL and one GPU per process when CUDA is there):").AppendLine();
        sb.AppendLine("```").AppendLine($"torchrun --nproc_per_node=2 {DebianFlags} {train}").AppendLine("```").AppendLine();
        sb.AppendLine($"`{DebianFlags}` works around torchrun of PyTorch 1.13 under Python 3.11 (Debian 12), which fails on its default `--redirects 0`; " +
            "on PyTorch 2.x the flags are harmless and may be left out. `python3 -m torch.distributed.run` is the same program where no `torchrun` is on the PATH. " +
            "On GPUs use `--nproc_per_node=<GPUs>`.").AppendLine();
        sb.AppendLine("Several machines (the same folder and data path on each, e.g. a shared file system; run on every node, NODE = 0…N-1):").AppendLine();
        sb.AppendLine("```").AppendLine($"torchrun --nnodes=N --node_rank=NODE --nproc_per_node=GPUS --master_addr=HOST0 --master_port=29500 {train}").AppendLine("```").AppendLine();
        sb.AppendLine("Rank 0 writes `checkpoints/epoch-N.pth`, `checkpoints/last.pth` (plain state dicts), `checkpoints/train-state.pt` (`--resume` continues from it) and `metrics.jsonl` " +
            "(a line per epoch with `train_loss` and, with a validation split, `valid_loss`, `valid_accuracy`, `valid_items`; with a test split, a last line `\"phase\": \"test\"` with `test_loss`, `test_accuracy`, `test_items`). " +
            "Validation and test count every item once, whatever the number of processes.");
        sb.AppendLine("`--epochs`, `--batch-size` (global), `--workers` (DataLoader processes per rank) and `--output` override the recipe.").AppendLine();
        sb.AppendLine("## 3. Bring the result back").AppendLine();
        sb.AppendLine("```").AppendLine($"zoo import {Path.Combine(folder, "checkpoints", "last.pth")} --like {folder}").AppendLine("```").AppendLine();
        sb.AppendLine("writes `checkpoints/last.ckpt`, which `zoo eval`, `zoo predict` and `TrainedModel.Load` read. `--like` takes this folder " +
            $"(its spec.json) or the run it came from ({source}).").AppendLine();
        sb.AppendLine("## What differs from the zoo's run").AppendLine();
        foreach (var n in notes) sb.AppendLine("- " + n);
        return sb.ToString();
    }
}
