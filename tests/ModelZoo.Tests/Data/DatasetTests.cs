using ModelZoo.Data;
using Parquet;
using Parquet.Schema;

namespace ModelZoo.Tests.Data;

public class DatasetTests
{
    [Fact]
    public void ImageFolderListsClassesInOrderAndCountsThem()
    {
        using var d = DataTestHelpers.ImageFolderFixture();
        var ds = ImageFolder.Open(d.Path);
        Assert.Equal(["cat", "cup", "rocket"], ds.ClassNames);
        Assert.Equal(7, ds.Count);
        Assert.Equal([3, 2, 2], ds.ClassBalance().Counts);
        Assert.Equal(0, ds[0].Label);
        Assert.EndsWith("a.png", ds.Describe(0));
        Assert.Contains("cat", ds.ClassBalance().ToString());
        var img = ds[2].Decode();
        Assert.Equal((32, 24), (img.Width, img.Height));
    }

    [Fact]
    public void EmptyOrMissingFolderIsAClearError()
    {
        using var d = new TempDir();
        Directory.CreateDirectory(Path.Combine(d.Path, "cls"));
        var e = Assert.Throws<InvalidDataException>(() => ImageFolder.Open(d.Path));
        Assert.Contains(d.Path, e.Message);
        var m = Assert.Throws<DirectoryNotFoundException>(() => ImageFolder.Open(Path.Combine(d.Path, "nope")));
        Assert.Contains("nope", m.Message);
    }

    [Fact]
    public void StratifiedSplitKeepsClassesAndIsSeeded()
    {
        var labels = Enumerable.Range(0, 100).Select(i => i < 80 ? 0 : 1).ToArray();
        var ds = TextDataset.FromTexts(Enumerable.Range(0, 100).Select(i => "t" + i).ToArray(), labels, ["a", "b"]);
        var (train, val) = ds.Split(0.25, stratified: true, seed: 7);
        Assert.Equal(75, train.Count);
        Assert.Equal(25, val.Count);
        Assert.Equal([20, 5], val.ClassBalance().Counts);
        var (_, val2) = ds.Split(0.25, stratified: true, seed: 7);
        Assert.Equal(Enumerable.Range(0, val.Count).Select(i => val[i].Text), Enumerable.Range(0, val2.Count).Select(i => val2[i].Text));
        var (_, val3) = ds.Split(0.25, stratified: true, seed: 8);
        Assert.NotEqual(Enumerable.Range(0, val.Count).Select(i => val[i].Text), Enumerable.Range(0, val3.Count).Select(i => val3[i].Text));
        var all = Enumerable.Range(0, train.Count).Select(i => train[i].Text).Concat(Enumerable.Range(0, val.Count).Select(i => val[i].Text));
        Assert.Equal(100, all.Distinct().Count());
        var (tr, va) = ds.Split(0.1, stratified: false, seed: 1);
        Assert.Equal((90, 10), (tr.Count, va.Count));
        Assert.Equal(4.0, ds.ClassBalance().ImbalanceRatio);
    }

    [Fact]
    public void ImageCsvReadsCsvAndTsvWithStringLabels()
    {
        using var d = DataTestHelpers.ImageFolderFixture();
        var csv = d.File("labels.csv", "path,label\ncat/a.png,cat\ncup/a.png,cup\nrocket/a.jpg,rocket\n");
        var ds = ImageCsv.Open(csv);
        Assert.Equal(["cat", "cup", "rocket"], ds.ClassNames);
        Assert.Equal(2, ds.LabelOf(2));
        Assert.Equal(200, ds[2].Decode().Width);
        var tsv = d.File("sub/labels.tsv", "file\tclass\ncat/a.png\t1\ncup/a.png\t0\n");
        var ds2 = ImageCsv.Open(tsv, root: d.Path, pathColumn: "file", labelColumn: "class");
        Assert.Equal(["0", "1"], ds2.ClassNames);
        Assert.Equal(1, ds2.LabelOf(0));
        var e = Assert.Throws<InvalidDataException>(() => ImageCsv.Open(tsv));
        Assert.Contains("file, class", e.Message);
    }

    internal static async Task WriteHfParquet(string path, (byte[] Bytes, long Label)[] rows, int rowsPerGroup, string[] names)
    {
        var bytesField = new DataField<byte[]>("bytes");
        var pathField = new DataField<string>("path");
        var labelField = new DataField<long>("label");
        var schema = new ParquetSchema(new StructField("image", bytesField, pathField), labelField);
        await using var fs = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(schema, fs);
        writer.CustomMetadata = new Dictionary<string, string>
        {
            ["huggingface"] = "{\"info\": {\"features\": {\"image\": {\"_type\": \"Image\"}, \"label\": {\"names\": [" +
                              string.Join(",", names.Select(n => $"\"{n}\"")) + "], \"_type\": \"ClassLabel\"}}}}",
        };
        foreach (var chunk in rows.Chunk(rowsPerGroup))
        {
            using var rg = writer.CreateRowGroup();
            await rg.WriteAsync(bytesField, chunk.Select(r => r.Bytes).ToArray());
            await rg.WriteAsync(pathField, chunk.Select((_, i) => $"img{i}.png").ToArray());
            await rg.WriteAsync<long>(labelField, chunk.Select(r => r.Label).ToArray().AsMemory());
        }
    }

    [Fact]
    public async Task ParquetImagesStreamsRowGroupsOfHuggingFaceFiles()
    {
        using var d = new TempDir();
        var png = File.ReadAllBytes(Path.Combine(PixelParityTests.Dir, "fmt_rgb.bmp"));
        var jpg = File.ReadAllBytes(Path.Combine(PixelParityTests.Dir, "photo_rocket.jpg"));
        var rows = Enumerable.Range(0, 10).Select(i => (i % 2 == 0 ? png : jpg, (long)(i % 3))).ToArray();
        await WriteHfParquet(Path.Combine(d.Path, "train-00000-of-00002.parquet"), rows[..6], 2, ["ant", "bee", "cat"]);
        await WriteHfParquet(Path.Combine(d.Path, "train-00001-of-00002.parquet"), rows[6..], 3, ["ant", "bee", "cat"]);
        File.WriteAllText(Path.Combine(d.Path, "test-00000.parquet"), "not parquet");

        var ds = ParquetImages.Open(Path.Combine(d.Path, "train-*.parquet"), cacheRowGroups: 2);
        Assert.Equal(10, ds.Count);
        Assert.Equal(2, ds.Files.Count);
        Assert.Equal(5, ds.RowGroups);
        Assert.Equal(["ant", "bee", "cat"], ds.ClassNames);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i % 3), Enumerable.Range(0, 10).Select(ds.LabelOf));
        Assert.Equal(32, ds[4].Decode().Width);
        Assert.Equal(200, ds[7].Decode().Width);
        Assert.Contains("row group", ds.Describe(7));

        // A shuffled epoch visits row groups one at a time: each is read once.
        var before = ds.RowGroupReads;
        var loader = new DataLoader(ds.Map(VisionTransforms.Eval(DataTestHelpers.Tiny)),
            new DataLoaderOptions { BatchSize = 3, Shuffle = true, Workers = 1, Seed = 3 });
        var seen = loader.SelectMany(b => b.Indices).ToList();
        Assert.Equal(Enumerable.Range(0, 10), seen.Order());
        Assert.True(ds.RowGroupReads - before <= 5, $"row groups read {ds.RowGroupReads - before} times");
    }

    [Fact]
    public async Task TextDatasetsFromCsvJsonlAndParquet()
    {
        using var d = new TempDir();
        var csv = d.File("r.csv", "review,sentiment\n\"great, really\",pos\nawful,neg\nfine,pos\n");
        var t = TextDataset.FromCsv(csv, text: "review", label: "sentiment");
        Assert.Equal(["neg", "pos"], t.ClassNames);
        Assert.Equal(new TextSample("great, really", 1), t[0]);
        var jsonl = d.File("r.jsonl", "{\"text\":\"hello\",\"label\":1}\n\n{\"text\":\"bye\",\"label\":0}\n");
        var j = TextDataset.FromJsonl(jsonl);
        Assert.Equal(2, j.Count);
        Assert.Equal(["0", "1"], j.ClassNames);
        Assert.Equal("bye", j[1].Text);
        var bad = d.File("bad.jsonl", "{\"text\":\"x\"}\n");
        Assert.Contains("line 1", Assert.Throws<InvalidDataException>(() => TextDataset.FromJsonl(bad)).Message);

        var tf = new DataField<string>("text");
        var lf = new DataField<string>("label");
        var pq = Path.Combine(d.Path, "t.parquet");
        await using (var fs = File.Create(pq))
        await using (var w = await ParquetWriter.CreateAsync(new ParquetSchema(tf, lf), fs))
        {
            using var rg = w.CreateRowGroup();
            await rg.WriteAsync(tf, new[] { "a", "b", "c" });
            await rg.WriteAsync(lf, new[] { "spam", "ham", "spam" });
        }
        var p = TextDataset.FromParquet(pq);
        Assert.Equal(["ham", "spam"], p.ClassNames);
        Assert.Equal(new TextSample("c", 1), p[2]);
    }
}

