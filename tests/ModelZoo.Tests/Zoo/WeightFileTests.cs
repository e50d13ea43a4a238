using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using ModelZoo.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo;

/// <summary>Reading and writing .pth / safetensors / .dat, and refusing unsafe or malformed files.</summary>
public sealed class WeightFileTests : IDisposable
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "weights", name);
    private readonly string _dir = Directory.CreateTempSubdirectory("zoo-weights-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static double[] Values(Tensor t)
    {
        if (t.numel() == 0) return [];
        using var d = t.to(ScalarType.Float64).contiguous().flatten();
        return d.data<double>().ToArray();
    }

    [Fact]
    public void TorchSaveFixtureReadsEveryDtypeViewAndSharedStorage()
    {
        using var expected = JsonDocument.Parse(File.ReadAllText(Fixture("tiny.json")));
        using var sd = StateDictFile.Read(Fixture("tiny.pth"));
        Assert.Contains(sd.Notes, n => n.Contains("'state_dict'", StringComparison.Ordinal));
        Assert.Equal(expected.RootElement.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal), sd.Keys.Order(StringComparer.Ordinal));
        var dtypes = new Dictionary<string, ScalarType>
        {
            ["float32"] = ScalarType.Float32, ["float16"] = ScalarType.Float16, ["bfloat16"] = ScalarType.BFloat16, ["float64"] = ScalarType.Float64,
            ["int64"] = ScalarType.Int64, ["int32"] = ScalarType.Int32, ["uint8"] = ScalarType.Byte, ["bool"] = ScalarType.Bool,
        };
        foreach (var p in expected.RootElement.EnumerateObject())
        {
            var t = sd[p.Name];
            Assert.Equal(dtypes[p.Value.GetProperty("dtype").GetString()!], t.dtype);
            Assert.Equal(p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()), t.shape);
            Assert.Equal(p.Value.GetProperty("values").EnumerateArray().Select(e => e.GetDouble()), Values(t));
        }
        // the transposed view really is the transpose of the stored matrix
        Assert.Equal(Values(sd["conv.weight"].t()), Values(sd["conv.weight_t"]));
        Assert.Equal(1L << 40, sd["long"][2].item<long>());
    }

    [Fact]
    public void PlainStateDictAndExplicitUnwrap()
    {
        using var plain = StateDictFile.Read(Fixture("tiny_plain.pth"));
        Assert.Empty(plain.Notes);
        using var wrapped = StateDictFile.Read(Fixture("tiny.pth"), unwrap: "state_dict");
        Assert.Equal(plain.Keys, wrapped.Keys);
        var e = Assert.Throws<InvalidDataException>(() => StateDictFile.Read(Fixture("tiny.pth"), unwrap: "model"));
        Assert.Contains("state_dict", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("evil_global.pth", "posix.system")]
    [InlineData("evil_stack_global.pth", "builtins.eval")]
    [InlineData("evil_inst.pth", "INST")]
    [InlineData("evil_nested.pth", "os.system")]
    public void MaliciousPicklesAreRefusedWithoutRunningAnything(string file, string named)
    {
        File.Delete("/tmp/modelzoo_pwned");
        var e = Assert.Throws<UnsafePickleException>(() => StateDictFile.Read(Fixture(file)));
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists("/tmp/modelzoo_pwned"));
    }

    private static Dictionary<string, Tensor> Sample() => new()
    {
        ["f32"] = arange(12, dtype: ScalarType.Float32).reshape(3, 4) * 0.5f,
        ["f16"] = tensor(new float[] { 1.5f, -2.25f }).to(ScalarType.Float16),
        ["bf16"] = tensor(new float[] { 1f, -3.5f }).to(ScalarType.BFloat16),
        ["f64"] = tensor(new double[] { 1e-300, 2.5 }),
        ["i64"] = tensor(new long[] { 1, -2, 1L << 40 }),
        ["i32"] = tensor(new int[] { 7, -7 }),
        ["u8"] = tensor(new byte[] { 0, 255 }),
        ["mask"] = tensor(new bool[] { true, false, true }),
        ["scalar"] = tensor(3.25f),
        ["noncontig"] = arange(6, dtype: ScalarType.Float32).reshape(2, 3).t(),
        ["empty"] = zeros(0, 3),
    };

    [Theory]
    [InlineData("w.safetensors")]
    [InlineData("w.pth")]
    [InlineData("w.dat")]
    public void RoundTripKeepsNamesDtypesShapesAndValues(string name)
    {
        using var scope = NewDisposeScope();
        var sample = Sample();
        string path = Path.Combine(_dir, name);
        StateDictFile.Write(path, sample);
        using var back = StateDictFile.Read(path);
        Assert.Equal(sample.Keys, back.Keys);
        foreach (var (k, t) in sample)
        {
            Assert.Equal(t.dtype, back[k].dtype);
            Assert.Equal(t.shape, back[k].shape);
            Assert.Equal(Values(t), Values(back[k]));
        }
    }

    [Fact]
    public void DatIsCompatibleWithTorchSharpModuleSaveAndLoad()
    {
        using var scope = NewDisposeScope();
        var a = nn.Sequential(("conv", nn.Conv2d(3, 4, 3)), ("bn", nn.BatchNorm2d(4)));
        string path = Path.Combine(_dir, "ts.dat");
        a.save(path);
        using var read = StateDictFile.Read(path);
        Assert.Equal(a.state_dict().Keys.Order(), read.Keys.Order());
        Assert.Equal(Values(a.state_dict()["conv.weight"]), Values(read["conv.weight"]));

        string ours = Path.Combine(_dir, "ours.dat");
        StateDictFile.Write(ours, read);
        var b = nn.Sequential(("conv", nn.Conv2d(3, 4, 3)), ("bn", nn.BatchNorm2d(4)));
        b.load(ours, strict: true);
        Assert.Equal(Values(a.state_dict()["conv.weight"]), Values(b.state_dict()["conv.weight"]));
    }

    private string SafeTensors(string header, int dataBytes, long? declaredLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)(declaredLength ?? json.Length));
        json.CopyTo(bytes, 8);
        string path = Path.Combine(_dir, Guid.NewGuid() + ".safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, "outside")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "needs 12 bytes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlap")]
    [InlineData("""{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}""", 8, "dtype")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "non-negative")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2]}}""", 8, "lacks")]
    [InlineData("""{"a":""", 8, "not valid JSON")]
    public void MalformedSafeTensorsHeadersAreRejected(string header, int dataBytes, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => StateDictFile.Read(SafeTensors(header, dataBytes)));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SafeTensorsHeaderLengthIsBoundedBeforeAllocating()
    {
        string path = SafeTensors("{}", 0, declaredLength: 1L << 40);
        var e = Assert.Throws<InvalidDataException>(() => StateDictFile.Read(path));
        Assert.Contains("header length", e.Message, StringComparison.Ordinal);
    }

    private string Zip(params (string Name, byte[] Data)[] entries)
    {
        string path = Path.Combine(_dir, Guid.NewGuid() + ".pth");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (n, d) in entries)
        {
            using var s = zip.CreateEntry(n).Open();
            s.Write(d);
        }
        return path;
    }

    private static byte[] PickleOf(string storageKey, long numel, long offset, long size) =>
        [0x80, 2, .. "ccollections\nOrderedDict\n)R("u8, (byte)'X', 1, 0, 0, 0, (byte)'w', .. "ctorch._utils\n_rebuild_tensor_v2\n(("u8,
         (byte)'X', 7, 0, 0, 0, .. "storage"u8, .. "ctorch\nFloatStorage\n"u8, (byte)'X', 1, 0, 0, 0, (byte)storageKey[0], (byte)'X', 3, 0, 0, 0, .. "cpu"u8,
         (byte)'J', .. BitConverter.GetBytes((int)numel), (byte)'t', (byte)'Q', (byte)'J', .. BitConverter.GetBytes((int)offset),
         (byte)'J', .. BitConverter.GetBytes((int)size), 0x85, (byte)'K', 1, 0x85, 0x89, (byte)'N', (byte)'t', (byte)'R', (byte)'u', (byte)'.'];

    [Fact]
    public void HandWrittenPickleReadsAndViewsOutsideTheirStorageAreRejected()
    {
        var floats = MemoryMarshalBytes([1f, 2f, 3f, 4f]);
        using (var ok = StateDictFile.Read(Zip(("archive/data.pkl", PickleOf("0", 4, 1, 3)), ("archive/data/0", floats))))
            Assert.Equal(new double[] { 2, 3, 4 }, Values(ok["w"]));
        var e = Assert.Throws<InvalidDataException>(() => StateDictFile.Read(Zip(("archive/data.pkl", PickleOf("0", 4, 2, 3)), ("archive/data/0", floats))));
        Assert.Contains("reaches element 4", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InvalidDataException>(() => StateDictFile.Read(Zip(("archive/data.pkl", PickleOf("0", 8, 0, 3)), ("archive/data/0", floats))));
        Assert.Contains("should hold 32 bytes", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InvalidDataException>(() => StateDictFile.Read(Zip(("archive/data.pkl", PickleOf("0", 4, 0, 3)), ("archive/../data/0", floats))));
        Assert.Contains("unsafe path", e.Message, StringComparison.Ordinal);
    }

    private static byte[] MemoryMarshalBytes(float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    [Fact]
    public void UnknownAndLegacyFormatsGiveClearErrors()
    {
        string junk = Path.Combine(_dir, "x.pth");
        File.WriteAllBytes(junk, [0x80, 2, 0x8a, 0x0a, 1, 2, 3]);
        Assert.Contains("legacy", Assert.Throws<InvalidDataException>(() => StateDictFile.Read(junk)).Message, StringComparison.Ordinal);
        File.WriteAllText(junk, "hello world, not weights");
        Assert.Contains("unrecognised", Assert.Throws<InvalidDataException>(() => StateDictFile.Read(junk)).Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => StateDictFile.Read(Path.Combine(_dir, "missing.pth")));
        Assert.Throws<ArgumentException>(() => StateDictFile.Write(Path.Combine(_dir, "x.h5"), new Dictionary<string, Tensor>()));
    }
}
