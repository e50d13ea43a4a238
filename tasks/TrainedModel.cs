using System.Text.Json;
using System.Text.Json.Serialization;
using ModelZoo.FineTune;
using ModelZoo.Tasks.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks;

/// <summary>
/// Everything needed to rebuild a trained classifier from its checkpoint: the catalog model, the surgery applied, the
/// head size, class names and input preparation. Stored as the checkpoint's config (<see cref="CheckpointInfo.Config"/>),
/// so <c>zoo eval</c>, <c>zoo predict</c> and <c>zoo export</c> work on checkpoints from any recipe or quickstart.
/// </summary>
public sealed record TrainedModelSpec
{
    /// <summary>Format tag.</summary>
    public string Kind { get; init; } = "modelzoo-trained/1";

    /// <summary><c>vision</c> or <c>nlp</c>.</summary>
    public string Task { get; init; } = "vision";

    /// <summary>Catalog name of the architecture.</summary>
    public string Model { get; init; } = "";

    /// <summary>Input channels of the stem.</summary>
    public int InChans { get; init; } = 3;

    /// <summary>Surgery applied after loading, in order.</summary>
    public List<SurgeryStep> Surgery { get; init; } = [];

    /// <summary>Class names; their count is the head size.</summary>
    public List<string> ClassNames { get; init; } = [];

    /// <summary>Square input side for vision models.</summary>
    public int ImageSize { get; init; }

    /// <summary>Input preparation (vision).</summary>
    public Preprocessing? Preprocessing { get; init; }

    /// <summary>Longest token sequence (text).</summary>
    public int MaxLength { get; init; }

    /// <summary>Tokens kept from the end of a long text (head+tail truncation, <c>TextTokenizer.EncodeHeadTail</c>); 0 = keep the start only.</summary>
    public int TailTokens { get; init; }

    /// <summary>
    /// Tokens read by the classifier's token bag (<c>TextEncoder.UseTokenBag</c>), counted from the start of the text;
    /// 0 = no token bag. With a bag the transformer still reads the first <see cref="MaxLength"/> of them.
    /// </summary>
    public int BagTokens { get; init; }

    /// <summary>Token ids of <paramref name="text"/> as this model was trained to read it (length and truncation).</summary>
    public int[] TokenIds(ModelZoo.Tokenizers.TextTokenizer tokenizer, string text) => Recipes.InputPlan.From(this).TokenIds(tokenizer, text);

    /// <summary>Pooling of a text encoder's sequence head (a <c>TextPooling</c> name); null = the catalog's default.</summary>
    public string? Pooling { get; init; }

    /// <summary>The resolved recipe that trained it, if a recipe did.</summary>
    public string? Recipe { get; init; }

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>Serializes the spec.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads a spec; <paramref name="source"/> names the checkpoint in errors.</summary>
    public static TrainedModelSpec FromJson(string? json, string source)
    {
        if (string.IsNullOrWhiteSpace(json))
            throw new InvalidDataException($"Checkpoint '{source}' carries no model description; it was not written by a zoo recipe or quickstart.");
        var spec = JsonSerializer.Deserialize<TrainedModelSpec>(json, Json) ?? throw new InvalidDataException($"Checkpoint '{source}': empty model description.");
        if (spec.Kind != "modelzoo-trained/1")
            throw new InvalidDataException($"Checkpoint '{source}': model description of kind '{spec.Kind}', expected 'modelzoo-trained/1'.");
        return spec;
    }

    /// <summary>Builds the architecture with its surgery and head (random weights): load a state into it next.</summary>
    public ZooModel BuildArchitecture()
    {
        if (Task == "nlp")
        {
            // Text encoders: the encoder with its own sequence classifier (mean/CLS pooling as the catalog defines).
            var encoder = Zoo.Create(Model, new ModelOptions(NumClasses: 0)) as ModelZoo.Models.Nlp.TextEncoder
                ?? throw new InvalidDataException($"Model description says task 'nlp' but '{Model}' is not a text encoder.");
            ApplySurgery(encoder, Surgery);
            if (Pooling is not null)
                encoder.Pooling = Enum.TryParse<ModelZoo.Models.Nlp.TextPooling>(Pooling, ignoreCase: true, out var pooling) ? pooling
                    : throw new InvalidDataException($"Model description names pooling '{Pooling}'; known: {string.Join(", ", Enum.GetNames<ModelZoo.Models.Nlp.TextPooling>())}.");
            if (BagTokens > 0)
            {
                encoder.UseTokenBag();
                encoder.EncoderWindow = MaxLength;
            }
            encoder.ReplaceSequenceHead(ClassNames.Count);
            return encoder;
        }
        var model = Zoo.Create(Model, new ModelOptions(NumClasses: 0, InChans: InChans));
        ApplySurgery(model, Surgery);
        model.ReplaceHead(ClassNames.Count);
        return model;
    }

    /// <summary>Applies recipe surgery steps to <paramref name="model"/> in order.</summary>
    public static void ApplySurgery(ZooModel model, IEnumerable<SurgeryStep> steps)
    {
        foreach (var s in steps)
        {
            if (s.Replace is not null) model.Replace(s.Replace, SurgeryModules.Create(s.With!));
            else if (s.Remove is not null) model.Remove(s.Remove);
            else if (s.InsertAfter is not null) model.InsertAfter(s.InsertAfter, s.Name!, SurgeryModules.Create(s.With!));
            else if (s.InsertBefore is not null) model.InsertBefore(s.InsertBefore, s.Name!, SurgeryModules.Create(s.With!));
        }
    }
}

/// <summary>A trained classifier loaded from a checkpoint, with its spec.</summary>
/// <param name="Model">The model, in eval mode.</param>
/// <param name="Spec">How it was built and what its classes are.</param>
/// <param name="Path">The checkpoint it came from.</param>
public sealed record TrainedModel(ZooModel Model, TrainedModelSpec Spec, string Path)
{
    /// <summary>Loads a checkpoint written by a recipe run or quickstart (a run folder is accepted and its <c>best.ckpt</c> used).</summary>
    public static TrainedModel Load(string path, Device? device = null)
    {
        if (Directory.Exists(path)) path = System.IO.Path.Combine(path, "best.ckpt");
        var info = Checkpoint.ReadInfo(path);
        var spec = TrainedModelSpec.FromJson(info.Config, path);
        var model = spec.BuildArchitecture();
        var state = Checkpoint.ReadModelState(path);
        var own = model.state_dict();
        var missing = own.Keys.Except(state.Keys).ToList();
        var extra = state.Keys.Except(own.Keys).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new InvalidDataException($"Checkpoint '{path}' does not match its own description ({spec.Model}): missing {string.Join(", ", missing.Take(5))}; unexpected {string.Join(", ", extra.Take(5))}.");
        using (no_grad())
            foreach (var (name, t) in own) t.copy_(state[name]);
        foreach (var t in state.Values) t.Dispose();
        if (device is not null) model.to(device);
        model.eval();
        return new TrainedModel(model, spec, path);
    }
}
