using System.Globalization;
using System.Reflection;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace ModelZoo.Tasks.Recipes;

/// <summary>A recipe could not be read: the message names the file, the key path and what is allowed.</summary>
public sealed class RecipeException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Reads YAML recipes into <see cref="Recipe"/> (YamlDotNet), applies <c>--set key=value</c> overrides, and checks
/// every key and value before anything runs, so a typo fails at once with its path and the allowed choices.
/// </summary>
public static class RecipeLoader
{
    /// <summary>Data sources the runner knows.</summary>
    public static readonly IReadOnlyList<string> DataSources = ["fashion-mnist", "image-folder", "image-csv", "parquet-images", "text-csv", "text-jsonl", "text-parquet", "spam-assassin"];

    /// <summary>Training modes.</summary>
    public static readonly IReadOnlyList<string> Modes = ["linear-probe", "fine-tune", "fine-tune-fastai"];

    /// <summary>Optimizers.</summary>
    public static readonly IReadOnlyList<string> Optimizers = ["adamw", "sgd"];

    /// <summary>Learning-rate schedules.</summary>
    public static readonly IReadOnlyList<string> Schedules = ["one-cycle", "cosine", "step", "plateau", "constant"];

    /// <summary>Metrics.</summary>
    public static readonly IReadOnlyList<string> Metrics = ["accuracy", "top5", "macro_f1"];

    /// <summary>Augmentations.</summary>
    public static readonly IReadOnlyList<string> Augmentations = ["hflip", "vflip", "random-resized-crop", "random-crop", "pad-crop", "color-jitter", "trivial-augment", "rand-augment", "random-erasing", "mixup", "cutmix"];

    /// <summary>Test-time augmentations (views whose predicted probabilities are averaged).</summary>
    public static readonly IReadOnlyList<string> TestTimeAugmentations = ["hflip"];

    /// <summary>Class weightings of the loss.</summary>
    public static readonly IReadOnlyList<string> ClassWeightings = ["none", "balanced"];

    /// <summary>Feature-cache settings.</summary>
    public static readonly IReadOnlyList<string> FeatureCacheModes = ["auto", "on", "off"];

    private static readonly INamingConvention Naming = UnderscoredNamingConvention.Instance;

    /// <summary>Reads the recipe at <paramref name="path"/> and applies <paramref name="overrides"/> (<c>key.path=value</c>).</summary>
    /// <exception cref="RecipeException">The file is missing, is not valid YAML, or has unknown keys or bad values.</exception>
    public static Recipe Load(string path, IEnumerable<string>? overrides = null)
    {
        if (!File.Exists(path))
            throw new RecipeException($"Recipe file '{path}' does not exist. Shipped recipes are in recipes/ (e.g. recipes/resnet18-cntk-fine-tune.yaml).");
        return Parse(File.ReadAllText(path), path, overrides);
    }

    /// <summary>Parses recipe YAML text; <paramref name="source"/> names it in errors.</summary>
    public static Recipe Parse(string yaml, string source = "<recipe>", IEnumerable<string>? overrides = null)
    {
        var root = ReadRoot(yaml, source);
        foreach (var o in overrides ?? []) ApplyOverride(root, o, source);
        CheckKeys(root, typeof(Recipe), "", source);
        Recipe recipe;
        try
        {
            var serializer = new SerializerBuilder().Build();
            var text = serializer.Serialize(ToPlain(root));
            recipe = new DeserializerBuilder().WithNamingConvention(Naming).Build().Deserialize<Recipe>(text) ?? new Recipe();
        }
        catch (YamlException e)
        {
            throw new RecipeException($"{source}: {e.Message}", e);
        }
        Validate(recipe, source);
        return recipe;
    }

    /// <summary>Writes a recipe back to YAML (the resolved recipe stored in each run folder).</summary>
    public static string ToYaml(Recipe recipe) =>
        new SerializerBuilder().WithNamingConvention(Naming).Build().Serialize(recipe);

    private static YamlMappingNode ReadRoot(string yaml, string source)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new RecipeException($"{source}: not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.Message}", e);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // YamlDotNet reports some malformed input (plain scalars, unexpected events) this way instead of as a YamlException.
            throw new RecipeException($"{source}: not valid YAML ({e.Message}).", e);
        }
        if (stream.Documents.Count == 0) return new YamlMappingNode();
        return stream.Documents[0].RootNode as YamlMappingNode
            ?? throw new RecipeException($"{source}: a recipe must be a mapping of sections (model:, data:, train:, …), not a {stream.Documents[0].RootNode.NodeType}.");
    }

    private static void ApplyOverride(YamlMappingNode root, string assignment, string source)
    {
        int eq = assignment.IndexOf('=');
        if (eq <= 0)
            throw new RecipeException($"--set '{assignment}': expected key.path=value, e.g. --set train.epochs=3.");
        var keys = assignment[..eq].Trim().Split('.');
        var valueText = assignment[(eq + 1)..];
        YamlNode value;
        if (valueText.TrimStart().StartsWith('[') || valueText.TrimStart().StartsWith('{'))
        {
            var s = new YamlStream();
            try { s.Load(new StringReader(valueText)); }
            catch (YamlException e) { throw new RecipeException($"--set '{assignment}': the value is not valid YAML: {e.Message}", e); }
            value = s.Documents[0].RootNode;
        }
        else
        {
            value = new YamlScalarNode(valueText);
        }
        var node = root;
        for (int i = 0; i < keys.Length - 1; i++)
        {
            var key = new YamlScalarNode(keys[i]);
            if (!node.Children.TryGetValue(key, out var child))
                node.Children[key] = child = new YamlMappingNode();
            node = child as YamlMappingNode
                ?? throw new RecipeException($"--set '{assignment}': '{string.Join('.', keys[..(i + 1)])}' is a value, not a section.");
        }
        node.Children[new YamlScalarNode(keys[^1])] = value;
    }

    private static void CheckKeys(YamlNode node, Type type, string path, string source)
    {
        if (node is YamlScalarNode scalar && IsEmpty(scalar)) return;
        if (type == typeof(string)) { RequireScalar(node, path, source, "a text value"); return; }
        if (type == typeof(int)) { RequireParse(node, path, source, "an integer", s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)); return; }
        if (type == typeof(double)) { RequireParse(node, path, source, "a number", s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _)); return; }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
        {
            if (node is not YamlSequenceNode seq)
                throw new RecipeException($"{source}: '{path}' must be a list{Line(node)}, e.g. [{ExampleItem(type)}].");
            int i = 0;
            foreach (var item in seq) CheckKeys(item, type.GetGenericArguments()[0], $"{path}[{i++}]", source);
            return;
        }
        if (node is not YamlMappingNode map)
            throw new RecipeException($"{source}: '{path}' must be a section with keys {string.Join(", ", KeysOf(type))}{Line(node)}.");
        var props = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).ToDictionary(p => Naming.Apply(p.Name), StringComparer.Ordinal);
        foreach (var (k, v) in map.Children)
        {
            var key = ((YamlScalarNode)k).Value ?? "";
            var full = path.Length == 0 ? key : $"{path}.{key}";
            if (!props.TryGetValue(key, out var prop))
                throw new RecipeException($"{source}: unknown key '{full}'{Line(k)}. Allowed keys{(path.Length == 0 ? "" : $" under '{path}'")}: {string.Join(", ", props.Keys)}.");
            CheckKeys(v, prop.PropertyType, full, source);
        }
    }

    private static bool IsEmpty(YamlScalarNode s) => s.Value is null or "" or "~" or "null";

    private static void RequireScalar(YamlNode node, string path, string source, string what)
    {
        if (node is not YamlScalarNode)
            throw new RecipeException($"{source}: '{path}' must be {what}{Line(node)}.");
    }

    private static void RequireParse(YamlNode node, string path, string source, string what, Func<string, bool> ok)
    {
        RequireScalar(node, path, source, what);
        var v = ((YamlScalarNode)node).Value ?? "";
        if (!ok(v)) throw new RecipeException($"{source}: '{path}' must be {what}, got '{v}'{Line(node)}.");
    }

    private static string Line(YamlNode node) => node.Start.Line > 0 ? $" (line {node.Start.Line})" : "";

    private static IEnumerable<string> KeysOf(Type t) => t.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => Naming.Apply(p.Name));

    private static string ExampleItem(Type listType) =>
        listType.GetGenericArguments()[0] == typeof(string) ? "a, b" : "{" + string.Join(", ", KeysOf(listType.GetGenericArguments()[0]).Take(2).Select(k => k + ": …")) + "}";

    private static object? ToPlain(YamlNode node) => node switch
    {
        YamlScalarNode s => IsEmpty(s) ? null : s.Value,
        YamlSequenceNode q => q.Children.Select(ToPlain).ToList(),
        YamlMappingNode m => m.Children.ToDictionary(kv => ((YamlScalarNode)kv.Key).Value ?? "", kv => ToPlain(kv.Value)),
        _ => null,
    };

    private static readonly NullabilityInfoContext Nullability = new();

    // An empty value (`model:` or `surgery:` with nothing after it) binds to null; refuse it before Validate
    // dereferences it. Walks the recipe's own record types (namespace ModelZoo.Tasks.Recipes) and lists of them.
    private static void CheckNoNulls(object o, string path, string source)
    {
        foreach (var p in o.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.GetIndexParameters().Length > 0 || !p.CanRead) continue;
            object? v = p.GetValue(o);
            string key = (path.Length > 0 ? path + "." : "") + Naming.Apply(p.Name);
            if (v is null)
            {
                if (Nullability.Create(p).ReadState == NullabilityState.NotNull)
                    throw new RecipeException($"{source}: '{key}' is empty; give it a value or remove the key.");
                continue;
            }
            if (v is System.Collections.IList list)
            {
                for (int i = 0; i < list.Count; i++)
                {
                    if (list[i] is null) throw new RecipeException($"{source}: item {i} of '{key}' is empty.");
                    if (list[i]!.GetType().Namespace == typeof(Recipe).Namespace) CheckNoNulls(list[i]!, $"{key}[{i}]", source);
                }
            }
            else if (v.GetType().Namespace == typeof(Recipe).Namespace && !v.GetType().IsEnum) CheckNoNulls(v, key, source);
        }
    }

    private static void Validate(Recipe r, string source)
    {
        CheckNoNulls(r, "", source);
        void OneOf(string path, string value, IReadOnlyList<string> allowed)
        {
            if (!allowed.Contains(value))
                throw new RecipeException($"{source}: '{path}' is '{value}'; allowed values: {string.Join(", ", allowed)}.");
        }
        void Range(string path, double value, double min, double max)
        {
            if (value < min || value > max || double.IsNaN(value))
                throw new RecipeException($"{source}: '{path}' is {value.ToString(CultureInfo.InvariantCulture)}; it must lie between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}.");
        }
        if (Zoo.Catalog.TryGet(r.Model.Name) is null)
            throw new RecipeException($"{source}: 'model.name' is '{r.Model.Name}', which is not in the catalog. Run 'zoo list' to see the models.");
        Range("model.in_chans", r.Model.InChans, 1, 64);
        Range("model.head_dropout", r.Model.HeadDropout, 0, 0.99);
        for (int i = 0; i < r.Model.Surgery.Count; i++)
        {
            var s = r.Model.Surgery[i];
            int set = new[] { s.Replace, s.Remove, s.InsertAfter, s.InsertBefore }.Count(x => x is not null);
            if (set != 1)
                throw new RecipeException($"{source}: 'model.surgery[{i}]' must have exactly one of replace, remove, insert_after, insert_before.");
            if (s.Replace is not null || s.InsertAfter is not null || s.InsertBefore is not null)
            {
                if (s.With is null) throw new RecipeException($"{source}: 'model.surgery[{i}]' needs 'with:' (one of {string.Join(", ", SurgeryModules.Names)}).");
                SurgeryModules.Check(s.With, $"{source}: 'model.surgery[{i}].with'");
            }
            if ((s.InsertAfter is not null || s.InsertBefore is not null) && string.IsNullOrWhiteSpace(s.Name))
                throw new RecipeException($"{source}: 'model.surgery[{i}]' inserts a module and needs 'name:' for it.");
        }
        OneOf("data.source", r.Data.Source, DataSources);
        Range("data.val_split", r.Data.ValSplit, 0, 0.9);
        Range("data.limit", r.Data.Limit, 0, int.MaxValue);
        Range("data.image_size", r.Data.ImageSize, 0, 4096);
        Range("data.max_length", r.Data.MaxLength, 2, 8192);
        Range("data.batch_size", r.Data.BatchSize, 0, 65536);
        Range("data.workers", r.Data.Workers, 0, 256);
        foreach (var a in r.Data.Augment) OneOf("data.augment", a, Augmentations);
        OneOf("train.mode", r.Train.Mode, Modes);
        Range("train.epochs", r.Train.Epochs, 0, 100_000);
        Range("train.freeze_epochs", r.Train.FreezeEpochs, 0, 100_000);
        Range("train.lr", r.Train.Lr, 0, 10);
        OneOf("train.optimizer", r.Train.Optimizer, Optimizers);
        Range("train.weight_decay", r.Train.WeightDecay, 0, 10);
        Range("train.momentum", r.Train.Momentum, 0, 1);
        OneOf("train.schedule", r.Train.Schedule, Schedules);
        Range("train.warmup", r.Train.Warmup, 0, 1);
        Range("train.label_smoothing", r.Train.LabelSmoothing, 0, 1);
        Range("train.lr_spread", r.Train.LrSpread, 1, 1e6);
        Range("train.clip_grad_norm", r.Train.ClipGradNorm, 0, 1e6);
        OneOf("train.feature_cache", r.Train.FeatureCache, FeatureCacheModes);
        OneOf("train.class_weights", r.Train.ClassWeights, ClassWeightings);
        foreach (var m in r.Train.Metrics) OneOf("train.metrics", m, Metrics);
        Range("train.early_stopping_patience", r.Train.EarlyStoppingPatience, 0, 10_000);
        Range("train.time_budget_seconds", r.Train.TimeBudgetSeconds, 0, int.MaxValue);
        Range("train.checkpoint_every_steps", r.Train.CheckpointEverySteps, 0, int.MaxValue);
        if (r.Train.Budget is { } budget)
        {
            if (DurationText.TryParseSeconds(budget) is not { } seconds)
                throw new RecipeException($"{source}: 'train.budget' is '{budget}', which is not a duration. Write it like 90s, 30m, 2h or 1h30m (plain numbers are seconds).");
            if (seconds < 10) throw new RecipeException($"{source}: 'train.budget' is {budget}: at least 10s are needed to measure the speed and plan. Give a longer budget.");
            if (r.Train.TimeBudgetSeconds > 0)
                throw new RecipeException($"{source}: both 'train.budget' ({budget}) and 'train.time_budget_seconds' ({r.Train.TimeBudgetSeconds}) are set. Keep train.budget to plan the epochs from measured speed, or time_budget_seconds to only stop at a time.");
        }
        if (r.Train.Ema != 0) Range("train.ema", r.Train.Ema, 0.5, 0.999999);
        foreach (var a in r.Eval.Tta) OneOf("eval.tta", a, TestTimeAugmentations);
        try
        {
            DeviceSelector.Parse(r.Device);
        }
        catch (ArgumentException e)
        {
            throw new RecipeException($"{source}: 'device': {e.Message}", e);
        }
    }
}
