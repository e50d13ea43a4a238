namespace ModelZoo.Onnx;

/// <summary>
/// An ONNX model read from a file: header fields and the main graph (nodes, initializers, inputs, outputs).
/// Only what weight import needs is read; functions, training info and subgraph bodies are skipped.
/// </summary>
/// <example><code>
/// var onnx = OnnxModel.Load("ResNet18.onnx");
/// foreach (var conv in onnx.Graph.ConvUnits()) Console.WriteLine($"{conv.Conv.Name}: {conv.Weight.ShapeText}");
/// </code></example>
public sealed class OnnxModel
{
    internal OnnxModel(string file, long irVersion, string producerName, string producerVersion, string domain, long modelVersion,
        IReadOnlyDictionary<string, long> opsets, OnnxGraph graph)
    {
        File = file;
        IrVersion = irVersion;
        ProducerName = producerName;
        ProducerVersion = producerVersion;
        Domain = domain;
        ModelVersion = modelVersion;
        OpsetImports = opsets;
        Graph = graph;
    }

    /// <summary>Reads an ONNX file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="OnnxFormatException">The file is not valid ONNX or uses unsupported features (external data, sparse initializers).</exception>
    public static OnnxModel Load(string path) => OnnxReader.ReadFile(path);

    /// <summary>Reads an ONNX model from bytes; <paramref name="sourceName"/> names it in errors.</summary>
    /// <exception cref="OnnxFormatException">The bytes are not valid ONNX or use unsupported features.</exception>
    public static OnnxModel Parse(byte[] bytes, string sourceName = "(bytes)")
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return OnnxReader.Read(bytes, sourceName);
    }

    /// <summary>Reads an ONNX model from a stream (read to the end); <paramref name="sourceName"/> names it in errors.</summary>
    /// <exception cref="OnnxFormatException">The content is not valid ONNX or uses unsupported features.</exception>
    public static OnnxModel Parse(Stream stream, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream.CanSeek && stream.Length - stream.Position > OnnxReader.MaxFileBytes)
            throw new OnnxFormatException(sourceName, "more than 2 GiB; external data is not supported.");
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        return OnnxReader.Read(ms.ToArray(), sourceName);
    }

    /// <summary>Full path of the file read (or the source name given to <see cref="Parse(byte[], string)"/>).</summary>
    public string File { get; }

    /// <summary>ONNX IR version.</summary>
    public long IrVersion { get; }

    /// <summary>Producer, e.g. <c>pytorch</c> or <c>CNTK</c>.</summary>
    public string ProducerName { get; }

    /// <summary>Producer version.</summary>
    public string ProducerVersion { get; }

    /// <summary>Model domain.</summary>
    public string Domain { get; }

    /// <summary>Model version.</summary>
    public long ModelVersion { get; }

    /// <summary>Operator set versions by domain (the default domain is the empty string).</summary>
    public IReadOnlyDictionary<string, long> OpsetImports { get; }

    /// <summary>Version of the default operator set, or 0 when not declared.</summary>
    public long Opset => OpsetImports.GetValueOrDefault("", OpsetImports.GetValueOrDefault("ai.onnx", 0));

    /// <summary>The main graph.</summary>
    public OnnxGraph Graph { get; }

    /// <summary>Initializers by name (shortcut for <see cref="OnnxGraph.Initializers"/>).</summary>
    public IReadOnlyDictionary<string, OnnxTensor> Initializers => Graph.Initializers;

    /// <inheritdoc />
    public override string ToString() =>
        $"{Path.GetFileName(File)}: {ProducerName} {ProducerVersion}, IR {IrVersion}, opset {Opset}, {Graph.Nodes.Count} nodes, {Graph.Initializers.Count} initializers";
}
