using System.IO.Compression;
using ModelZoo.Data;

namespace ModelZoo.Tests.Data;

public class RealDatasetTests
{
    private static void WriteIdx(string path, byte[] header, byte[] data, bool gzip)
    {
        using var f = File.Create(path);
        using Stream s = gzip ? new GZipStream(f, CompressionLevel.Fastest) : f;
        s.Write(header);
        s.Write(data);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void IdxReadsGzipAndRawFiles(bool gzip)
    {
        using var d = new TempDir();
        var px = Enumerable.Range(0, 3 * 2 * 4).Select(i => (byte)(i * 10)).ToArray();
        var ext = gzip ? ".gz" : "";
        WriteIdx(Path.Combine(d.Path, "train-images-idx3-ubyte" + ext), [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 4], px, gzip);
        WriteIdx(Path.Combine(d.Path, "train-labels-idx1-ubyte" + ext), [0, 0, 8, 1, 0, 0, 0, 3], [2, 0, 9], gzip);
        WriteIdx(Path.Combine(d.Path, "t10k-images-idx3-ubyte" + ext), [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4], px[..8], gzip);
        WriteIdx(Path.Combine(d.Path, "t10k-labels-idx1-ubyte" + ext), [0, 0, 8, 1, 0, 0, 0, 1], [5], gzip);
        var (train, test) = FashionMnist.Load(d.Path);
        Assert.Equal((3, 1), (train.Count, test.Count));
        Assert.Equal((2, 4), (train.Height, train.Width));
        Assert.Equal("Ankle boot", train.ClassNames[train.LabelOf(2)]);
        var item = train[1];
        Assert.Equal((1, 2, 4), (item.Channels, item.Height, item.Width));
        Assert.Equal(80 / 255f, item.Data[0], 6);
        var bad = Path.Combine(d.Path, "bad");
        File.WriteAllBytes(bad, [1, 2, 3, 4]);
        Assert.Contains("not an IDX", Assert.Throws<InvalidDataException>(() => Idx.Read(bad)).Message);
    }

    /// <summary>The real Fashion-MNIST from Debian's dataset-fashion-mnist (installed on the dev machine).</summary>
    [Fact]
    public void FashionMnistFromDebianPackage()
    {
        if (!Directory.Exists(FashionMnist.DebianPath)) return; // package not installed here: covered by the IDX test above
        var (train, test) = FashionMnist.Load();
        Assert.Equal((60000, 10000), (train.Count, test.Count));
        Assert.Equal(10, train.ClassNames.Count);
        Assert.All(train.ClassBalance().Counts, c => Assert.Equal(6000, c));
        Assert.All(test.ClassBalance().Counts, c => Assert.Equal(1000, c));
    }

    private static string Json(string raw) => System.Text.Json.JsonSerializer.Serialize(new { id = 1, group = "x", checksum = "0", text = raw });

    [Fact]
    public void SpamAssassinParsesHeadersMultipartQuotedPrintableBase64AndHtml()
    {
        using var d = new TempDir();
        var root = Path.Combine("node_modules", "@stdlib", "datasets-spam-assassin", "data");
        d.File(Path.Combine(root, "easy-ham-1", "00001.json"), Json(
            "From a@b\nSubject: Re: meeting\n =?utf-8?q?tomorrow_=C3=A9t=C3=A9?=\nContent-Type: text/plain; charset=utf-8\n" +
            "Content-Transfer-Encoding: quoted-printable\n\nSee you at 10=3A00, caf=C3=A9 on the corner.=\nBye\n"));
        var b64 = Convert.ToBase64String("Cheap pills <b>now</b>!"u8.ToArray());
        d.File(Path.Combine(root, "spam-2", "00002.json"), Json(
            "Subject: =?iso-8859-1?B?" + Convert.ToBase64String(System.Text.Encoding.Latin1.GetBytes("Gagnez €")) + "?=\n" +
            "Content-Type: multipart/alternative; boundary=\"XYZ\"\n\npreamble\n--XYZ\nContent-Type: text/html\n\n" +
            "<html><style>p{}</style><p>Hello &amp; <a href=x>click</a></p></html>\n--XYZ\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" +
            b64 + "\n--XYZ--\n"));
        d.File(Path.Combine(root, "spam-1", "00003.json"), Json(
            "Subject: only html\nContent-Type: text/html\n\n<div>Win <i>big</i></div><script>x()</script>"));
        var ds = SpamAssassin.Load(d.Path);
        Assert.Equal(["ham", "spam"], ds.ClassNames);
        Assert.Equal(3, ds.Count);
        Assert.Equal([1, 2], ds.ClassBalance().Counts);
        Assert.Equal("Re: meeting tomorrow été\n\nSee you at 10:00, café on the corner.Bye", ds[0].Text);
        var spam = Enumerable.Range(0, 3).Select(i => ds[i]).Where(s => s.Label == 1).Select(s => s.Text).ToArray();
        Assert.Contains(spam, s => s.StartsWith("Gagnez", StringComparison.Ordinal) && s.Contains("Cheap pills <b>now</b>!") && !s.Contains("Hello"));
        Assert.Contains(spam, s => s.Contains("Win big") && !s.Contains("x()") && !s.Contains('<'));
        Assert.Contains("get-spamassassin.sh", Assert.Throws<DirectoryNotFoundException>(() => SpamAssassin.Load(Path.Combine(d.Path, "none"))).Message);
    }

    /// <summary>The real corpus, when scripts/get-spamassassin.sh has been run (ZOO_HOME cache).</summary>
    [Fact]
    public void SpamAssassinRealCorpusWhenInstalled()
    {
        if (!Directory.Exists(Path.Combine(SpamAssassin.DefaultDir, "node_modules"))) return;
        var ds = SpamAssassin.Load();
        Assert.Equal(6046, ds.Count);
        var bal = ds.ClassBalance();
        Assert.Equal([4150, 1896], bal.Counts);
        for (var i = 0; i < ds.Count; i += 97) Assert.False(string.IsNullOrWhiteSpace(ds[i].Text));
    }
}
