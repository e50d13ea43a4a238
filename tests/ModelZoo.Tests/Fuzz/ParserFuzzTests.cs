using System.IO.Compression;
using System.Text;
using ModelZoo.Data;
using ModelZoo.Onnx;
using ModelZoo.Tasks.Recipes;
using ModelZoo.Tokenizers;
using ModelZoo.Weights;
using Parquet;
using Parquet.Schema;
using Xunit.Abstractions;
using static ModelZoo.Tests.Zoo.Onnx.OnnxTestWriter;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Fuzz;

/// <summary>
/// Mutation fuzzing of every parser that reads files from strangers. Each input must either parse or raise one of
/// the parser's documented exception types with a message naming the file; anything else (NullReference,
/// IndexOutOfRange, a hang, > 256 MB allocated for one input) fails the test and saves the input under
/// /tmp/zoo-fuzz-failures/&lt;parser&gt;/. CI runs 300 inputs per parser; set ZOO_FUZZ_ITERATIONS for a long run.
/// </summary>
public class ParserFuzzTests(ITestOutputHelper output)
{
    private static string Fixture(string area, string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", area, name);

    public static TheoryData<string> TargetNames => new(Targets.Keys.Order(StringComparer.Ordinal));

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void Parser_survives_mutated_inputs(string name)
    {
        var target = Targets[name]();
        // Every seed must parse: otherwise the fuzzer only exercises the first error check.
        foreach (var (seed, i) in target.Seeds.Select((s, i) => (s, i)))
        {
            var dir = Directory.CreateTempSubdirectory("zoo-fuzz-seed");
            try
            {
                var path = Path.Combine(dir.FullName, target.FileName);
                File.WriteAllBytes(path, seed);
                target.Parse(seed, path);
            }
            catch (Exception e) { Assert.Fail($"seed {i} of {name} does not parse: {e}"); }
            finally { dir.Delete(true); }
        }
        var result = FuzzRunner.Run(target, FuzzRunner.Iterations(), FuzzRunner.Seed);
        output.WriteLine(result.ToString());
        File.AppendAllText(Path.Combine(Path.GetTempPath(), "zoo-fuzz-summary.log"), $"{DateTime.UtcNow:u} seed {FuzzRunner.Seed}: {result}\n");
        Assert.True(result.Failures.Count == 0, $"{result}\n{string.Join("\n\n", result.Failures.Take(4).Select(f => string.Join("\n", f.Split('\n').Take(6))))}");
        Assert.True(result.Inputs >= FuzzRunner.Iterations());
    }

    private static readonly Type[] WeightErrors = [typeof(InvalidDataException), typeof(UnsafePickleException)];

    internal static readonly Dictionary<string, Func<FuzzTarget>> Targets = new()
    {
        ["safetensors"] = () => new("safetensors", [WeightFile(".safetensors", 0), WeightFile(".safetensors", 1)], ReadWeights, WeightErrors, "w.safetensors"),
        ["pth-zip"] = () => new("pth-zip",
            [File.ReadAllBytes(Fixture("weights", "tiny_plain.pth")), File.ReadAllBytes(Fixture("weights", "tiny.pth")), WeightFile(".pth", 0)],
            ReadWeights, WeightErrors, "w.pth"),
        ["pickle"] = () => new("pickle",
            [DataPkl(Fixture("weights", "tiny.pth")), DataPkl(Fixture("weights", "tiny_plain.pth")), DataPkl(WeightFile(".pth", 1))],
            (bytes, path) => new RestrictedUnpickler(bytes, path).Load(), WeightErrors, "data.pkl"),
        ["torchsharp-dat"] = () => new("torchsharp-dat", [WeightFile(".dat", 0), WeightFile(".dat", 1)], ReadWeights, WeightErrors, "w.dat"),
        ["onnx"] = () => new("onnx", [OnnxSeed(false), OnnxSeed(true)], (bytes, path) =>
        {
            var m = OnnxModel.Parse(bytes, path);
            foreach (var t in m.Initializers.Values) _ = t.ToFloatArray();
        }, [typeof(OnnxFormatException), typeof(InvalidDataException)], "m.onnx"),
        ["idx"] = () => new("idx", [IdxSeed(3, 4, 4), IdxSeed(5)], (_, path) => Idx.Read(path), [typeof(InvalidDataException)], "x-idx3-ubyte"),
        ["csv"] = () => new("csv",
            [Utf8("text,label\nhello world,spam\n\"quoted, \"\"text\"\"\",ham\nthird,spam\n"), Utf8("label;text\r\n1;a\r\n0;b\r\n")],
            (_, path) => TextDataset.FromCsv(path), [typeof(InvalidDataException)], "t.csv"),
        ["jsonl"] = () => new("jsonl",
            [Utf8("{\"text\":\"hello\",\"label\":\"spam\"}\n{\"text\":\"w\\u00e9\",\"label\":\"ham\"}\n\n{\"text\":\"x\",\"label\":3}\n")],
            (_, path) => TextDataset.FromJsonl(path), [typeof(InvalidDataException)], "t.jsonl"),
        ["image"] = () => new("image",
            new[] { "fmt_gray.png", "fmt_rgba.png", "fmt_rgb.bmp", "fmt_palette.gif", "oriented6.jpg", "fmt_lossless.webp" }.Select(f => File.ReadAllBytes(Fixture("Data", f))).ToList(),
            (bytes, path) => ImageDecoder.Decode(ImageSource.FromBytes(bytes, path)), [typeof(InvalidDataException)], "img.bin"),
        ["recipe-yaml"] = () => new("recipe-yaml", [Utf8(RecipeSeed)],
            (bytes, path) => RecipeLoader.Parse(Encoding.UTF8.GetString(bytes), path), [typeof(RecipeException)], "r.yaml"),
        ["tokenizer-json"] = () => new("tokenizer-json", [Utf8(WordPieceJson), Utf8(BpeJson)],
            (bytes, path) => TokenizerFiles.FromTokenizerJson(Encoding.UTF8.GetString(bytes), 64, path).EncodeOne("hello world, héllo"),
            [typeof(FormatException), typeof(NotSupportedException), typeof(InvalidDataException)], "tokenizer.json"),
        ["vocab-txt"] = () => new("vocab-txt", [Utf8("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n,\n")],
            (_, path) => WordPieceTextTokenizer.FromVocab(path, true, null, 64).EncodeOne("hello worlds, x"),
            [typeof(FormatException), typeof(InvalidDataException)], "vocab.txt"),
        ["parquet-text"] = () => new("parquet-text",
            [ParquetText(false, CompressionMethod.Snappy, 1), ParquetText(true, CompressionMethod.Gzip, 2), ParquetText(true, CompressionMethod.None, 1)],
            (_, path) => TextDataset.FromParquet(path), [typeof(InvalidDataException)], "t.parquet"),
        ["parquet-images"] = () => new("parquet-images", [ParquetImagesSeed(true, 2), ParquetImagesSeed(false, 1)], (_, path) =>
        {
            var ds = ParquetImages.Open(path, cacheRowGroups: 1);
            for (int i = 0; i < ds.Count; i++) _ = ds[i].Source.ReadAllBytes();
        }, [typeof(InvalidDataException)], "images.parquet"),
        ["bpe-vocab-merges"] = () => new("bpe-vocab-merges", [BpeFiles(BpeVocab, BpeMerges), BpeFiles(BpeVocab, "#version: 0.2\n" + BpeMerges)], (bytes, path) =>
        {
            // One input holds both files: vocab.json, a 0 byte, merges.txt (no 0 byte: merges.txt is empty).
            int cut = Array.IndexOf(bytes, (byte)0);
            var merges = Path.Combine(Path.GetDirectoryName(path)!, "merges.txt");
            File.WriteAllBytes(path, cut < 0 ? bytes : bytes[..cut]);
            File.WriteAllBytes(merges, cut < 0 ? [] : bytes[(cut + 1)..]);
            ByteLevelBpeTextTokenizer.FromFiles(path, merges, false, 64).EncodeOne("hello world, héllo");
        }, [typeof(FormatException)], "vocab.json"),
    };

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private const string BpeVocab = """{"<s>":0,"<pad>":1,"</s>":2,"<unk>":3,"h":4,"e":5,"l":6,"o":7,"he":8,"ll":9,"hell":10,"hello":11,"Ġ":12,"w":13,"Ġw":14}""";
    private const string BpeMerges = "h e\nl l\nhe ll\nhell o\nĠ w\n";

    private static byte[] BpeFiles(string vocab, string merges) => [.. Utf8(vocab), 0, .. Utf8(merges)];

    private static byte[] ParquetText(bool intLabels, CompressionMethod compression, int rowGroups)
    {
        var tf = new DataField<string>("text");
        DataField lf = intLabels ? new DataField<long?>("label") : new DataField<string>("label");
        using var ms = new MemoryStream();
        Task.Run(async () =>
        {
            await using var w = await ParquetWriter.CreateAsync(new ParquetSchema(tf, lf), ms, new ParquetOptions { CompressionMethod = compression });
            for (int g = 0; g < rowGroups; g++)
            {
                using var rg = w.CreateRowGroup();
                await rg.WriteAsync(tf, new[] { "hello world", $"group {g}", "" });
                if (intLabels) await rg.WriteAsync<long>(lf, new long?[] { 1, null, 0 }.AsMemory());
                else await rg.WriteAsync(lf, new[] { "spam", "ham", "spam" });
            }
        }).GetAwaiter().GetResult();
        return ms.ToArray();
    }

    private static byte[] ParquetImagesSeed(bool huggingFace, int rowsPerGroup)
    {
        var bmp = File.ReadAllBytes(Fixture("Data", "fmt_rgb.bmp"))[..64]; // the bytes are not decoded here: keep seeds small
        var gif = File.ReadAllBytes(Fixture("Data", "fmt_palette.gif"))[..48];
        var rows = new[] { (bmp, 0L), (gif, 1L), (bmp, 2L) };
        var dir = Directory.CreateTempSubdirectory("zoo-fuzz-pq");
        try
        {
            var path = Path.Combine(dir.FullName, "i.parquet");
            if (huggingFace) ModelZoo.Tests.Data.DatasetTests.WriteHfParquet(path, rows, rowsPerGroup, ["ant", "bee", "cat"]).GetAwaiter().GetResult();
            else
            {
                var img = new DataField<byte[]>("image");
                var lf = new DataField<string>("label");
                Task.Run(async () =>
                {
                    await using var fs = File.Create(path);
                    await using var w = await ParquetWriter.CreateAsync(new ParquetSchema(img, lf), fs);
                    using var rg = w.CreateRowGroup();
                    await rg.WriteAsync(img, rows.Select(r => r.Item1).ToArray());
                    await rg.WriteAsync(lf, rows.Select(r => $"class{r.Item2}").ToArray());
                }).GetAwaiter().GetResult();
            }
            return File.ReadAllBytes(path);
        }
        finally { dir.Delete(true); }
    }

    private static void ReadWeights(byte[] _, string path)
    {
        using var sd = StateDictFile.Read(path);
    }

    private static byte[] WeightFile(string ext, int variant)
    {
        var dir = Directory.CreateTempSubdirectory("zoo-fuzz-w");
        try
        {
            var path = Path.Combine(dir.FullName, "w" + ext);
            using var a = arange(6, dtype: ScalarType.Float32).reshape(2, 3);
            using var b = tensor(new long[] { 1, -2, 3 });
            using var c = ones(2, dtype: ScalarType.Float16);
            var list = variant == 0
                ? new List<KeyValuePair<string, Tensor>> { new("layer.weight", a), new("layer.bias", b) }
                : [new("a", a), new("num_batches_tracked", tensor(7L)), new("h", c)];
            StateDictFile.Write(path, list);
            return File.ReadAllBytes(path);
        }
        finally { dir.Delete(true); }
    }

    private static byte[] DataPkl(string pthPath) => DataPkl(File.ReadAllBytes(pthPath));

    private static byte[] DataPkl(byte[] pth)
    {
        using var zip = new ZipArchive(new MemoryStream(pth), ZipArchiveMode.Read);
        var entry = zip.Entries.Single(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal));
        using var s = entry.Open();
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    private static byte[] OnnxSeed(bool typed) => Model(Graph(
        nodes:
        [
            Node("Constant", [], ["w_const"], "const_w", TensorAttribute("value", FloatTensor("", [3, 2], [1, 2, 3, 4, 5, 6]))),
            Node("MatMul", ["x", "w_const"], ["mm"], "matmul"),
            Node("Add", ["b", "mm"], ["y"], "add"),
            Node("Transpose", ["y"], ["z"], "t", IntsAttribute("perm", [1, 0])),
        ],
        initializers: [FloatTensor("b", [2], [0.5f, -0.5f], typed)],
        inputs: [ValueInfo("x", [-1, 3])],
        outputs: [ValueInfo("z", [2, -1])]));

    private static byte[] IdxSeed(params int[] dims)
    {
        var header = new List<byte> { 0, 0, 8, (byte)dims.Length };
        foreach (int d in dims) header.AddRange(BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(d)));
        int n = dims.Aggregate(1, (x, y) => x * y);
        return [.. header, .. Enumerable.Range(0, n).Select(i => (byte)(i * 37))];
    }

    private const string RecipeSeed = ModelZoo.Tests.Tasks.RecipeLoaderTests.Minimal;

    private const string WordPieceJson = """
        {"version":"1.0","normalizer":{"type":"BertNormalizer","lowercase":true,"strip_accents":null},
         "model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,
          "vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3,"[MASK]":4,"hello":5,"world":6,"##s":7,",":8}}}
        """;

    private const string BpeJson = """
        {"version":"1.0","pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},"model":{"type":"BPE","dropout":null,"unk_token":null,
          "vocab":{"<s>":0,"<pad>":1,"</s>":2,"<unk>":3,"h":4,"e":5,"l":6,"o":7,"he":8,"ll":9,"hell":10,"hello":11,"Ġ":12,"w":13,"Ġw":14},
          "merges":["h e","l l","he ll","hell o","Ġ w"]}}
        """;
}
