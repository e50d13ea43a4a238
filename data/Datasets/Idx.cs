using System.IO.Compression;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Data;

/// <summary>The IDX format of the MNIST family (unsigned-byte data), raw or gzip-compressed.</summary>
public static class Idx
{
    /// <summary>Reads an IDX file of unsigned bytes: its dimensions and data.</summary>
    public static (int[] Dims, byte[] Data) Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file not found: {path}", path);
        try { return ReadCore(path); }
        catch (EndOfStreamException) { throw new InvalidDataException($"{path}: the IDX file is truncated (shorter than its header says)."); }
        catch (InvalidDataException e) when (!e.Message.Contains(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{path}: corrupt gzip data ({e.Message}).", e);
        }
    }

    private static (int[] Dims, byte[] Data) ReadCore(string path)
    {
        using var file = File.OpenRead(path);
        var head = new byte[2];
        file.ReadExactly(head);
        file.Position = 0;
        bool gz = head[0] == 0x1f && head[1] == 0x8b;
        using Stream s = gz ? new GZipStream(file, CompressionMode.Decompress) : file;
        var magic = new byte[4];
        s.ReadExactly(magic);
        if (magic[0] != 0 || magic[1] != 0)
            throw new InvalidDataException($"{path} is not an IDX file (bad magic {magic[0]:x2}{magic[1]:x2}).");
        if (magic[2] != 0x08)
            throw new InvalidDataException($"{path}: IDX element type 0x{magic[2]:x2} is not supported (only unsigned bytes, 0x08).");
        if (magic[3] is 0 or > 8)
            throw new InvalidDataException($"{path}: IDX header claims {magic[3]} dimensions (expected 1 to 8).");
        var dims = new int[magic[3]];
        var buf = new byte[4];
        long total = 1;
        for (var i = 0; i < dims.Length; i++)
        {
            s.ReadExactly(buf);
            dims[i] = (buf[0] << 24) | (buf[1] << 16) | (buf[2] << 8) | buf[3];
            if (dims[i] < 0) throw new InvalidDataException($"{path}: IDX dimension {i} is negative ({dims[i]}).");
            total *= dims[i];
            if (total > Array.MaxLength) throw new InvalidDataException($"{path}: IDX dimensions [{string.Join("x", dims[..(i + 1)])}] describe more than {Array.MaxLength} bytes.");
        }
        // Size fields are checked against what is there before allocating: the file length, or for gzip the bytes
        // actually decompressed (read in chunks, never more than the header claims).
        byte[] data;
        if (!gz)
        {
            if (total > file.Length - file.Position)
                throw new InvalidDataException($"{path}: IDX header claims {total} data bytes but the file holds {file.Length - file.Position}.");
            data = new byte[total];
            s.ReadExactly(data);
        }
        else
        {
            using var ms = new MemoryStream();
            var chunk = new byte[81920];
            while (ms.Length < total)
            {
                int n = s.Read(chunk, 0, (int)Math.Min(chunk.Length, total - ms.Length));
                if (n == 0) throw new EndOfStreamException();
                ms.Write(chunk, 0, n);
            }
            data = ms.ToArray();
        }
        return (dims, data);
    }
}

/// <summary>
/// Grayscale images held in memory as bytes (MNIST family), with labels. Items are 1×H×W float tensors in [0, 1];
/// <see cref="ToTensors"/> gives the whole set as uint8 tensors for <see cref="TensorDataLoader"/>, the fast path.
/// </summary>
public sealed class IdxDataset : Dataset<ImageTensor>
{
    private readonly string[] _classes;
    private readonly string _source;

    /// <summary>Creates a dataset from N×H×W bytes and N labels.</summary>
    public IdxDataset(byte[] pixels, byte[] labels, int height, int width, IReadOnlyList<string> classNames, string source)
    {
        if (pixels.Length != (long)labels.Length * height * width)
            throw new InvalidDataException($"{source}: {labels.Length} labels but {pixels.Length} pixel bytes ({height}x{width} each).");
        int bad = Array.FindIndex(labels, l => l >= classNames.Count);
        if (bad >= 0)
            throw new InvalidDataException($"{source}: item {bad} has label {labels[bad]}, outside the {classNames.Count} classes ({string.Join(", ", classNames.Take(12))}{(classNames.Count > 12 ? ", …" : "")}). " +
                "Fix the labels file (a label must be below the number of classes).");
        Pixels = pixels;
        LabelBytes = labels;
        Height = height;
        Width = width;
        _classes = classNames.ToArray();
        _source = source;
    }

    /// <summary>Loads an images file and a labels file (IDX, raw or gzip).</summary>
    public static IdxDataset Load(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null)
    {
        var (d, px) = Idx.Read(imagesPath);
        var (dl, lb) = Idx.Read(labelsPath);
        if (d.Length != 3) throw new InvalidDataException($"{imagesPath}: expected N×H×W images, got {d.Length} dimensions.");
        if (dl.Length != 1 || dl[0] != d[0]) throw new InvalidDataException($"{labelsPath}: expected {d[0]} labels, got [{string.Join("x", dl)}].");
        var names = classNames ?? Enumerable.Range(0, lb.Length == 0 ? 0 : lb.Max() + 1).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return new IdxDataset(px, lb, d[1], d[2], names, Path.GetDirectoryName(Path.GetFullPath(imagesPath))!);
    }

    /// <summary>All pixels, N×H×W.</summary>
    public byte[] Pixels { get; }

    /// <summary>All labels.</summary>
    public byte[] LabelBytes { get; }

    /// <summary>Image height.</summary>
    public int Height { get; }

    /// <summary>Image width.</summary>
    public int Width { get; }

    /// <inheritdoc />
    public override int Count => LabelBytes.Length;

    /// <inheritdoc />
    public override IReadOnlyList<string> ClassNames => _classes;

    /// <inheritdoc />
    public override string Source => _source;

    /// <inheritdoc />
    public override int LabelOf(int index) => LabelBytes[index];

    /// <summary>Item <paramref name="index"/> as an RGB image (gray replicated), e.g. to run an image pipeline on it.</summary>
    public RgbImage Image(int index) => RgbImage.FromGray(Width, Height, Pixels.AsSpan(index * Height * Width, Height * Width));

    /// <inheritdoc />
    protected override ImageTensor GetCore(int index, Random rng)
    {
        var n = Height * Width;
        var data = new float[n];
        for (var i = 0; i < n; i++) data[i] = Pixels[index * n + i] / 255f;
        return new ImageTensor(data, 1, Height, Width, LabelBytes[index]);
    }

    /// <summary>The whole set as tensors: uint8 N×1×H×W images and int64 labels (caller owns them).</summary>
    public (Tensor Images, Tensor Labels) ToTensors() =>
        (tensor(Pixels, [Count, 1, Height, Width], ScalarType.Byte), tensor(LabelBytes.Select(b => (long)b).ToArray()));
}

/// <summary>Fashion-MNIST (Zalando): 60,000 training and 10,000 test grayscale 28×28 images of 10 clothing classes.</summary>
public static class FashionMnist
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the files.</summary>
    public const string DebianPath = "/usr/share/datasets/fashion-mnist";

    /// <summary>The official download location of the four IDX files.</summary>
    public const string DownloadUrl = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

    /// <summary>Class names, as the dataset's README lists them (label 0..9).</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// Loads the training and test sets from <paramref name="dir"/> (default: <see cref="DebianPath"/>), which holds
    /// <c>{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]</c>. Install with <c>apt-get install dataset-fashion-mnist</c>
    /// or download the four files from <see cref="DownloadUrl"/>.
    /// </summary>
    public static (IdxDataset Train, IdxDataset Test) Load(string? dir = null)
    {
        dir ??= DebianPath;
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"Fashion-MNIST folder not found: {dir}. Install it with 'apt-get install dataset-fashion-mnist' or download the IDX files from {DownloadUrl}.");
        string Find(string stem)
        {
            foreach (var name in new[] { stem + ".gz", stem })
                if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
            throw new FileNotFoundException($"{stem}(.gz) not found in {dir}. Get it from {DownloadUrl}.");
        }
        var train = IdxDataset.Load(Find("train-images-idx3-ubyte"), Find("train-labels-idx1-ubyte"), ClassNames);
        var test = IdxDataset.Load(Find("t10k-images-idx3-ubyte"), Find("t10k-labels-idx1-ubyte"), ClassNames);
        return (train, test);
    }
}
