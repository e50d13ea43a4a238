#:package Parquet.Net@6.1.0
// Writes a JSON Lines staging file of the evaluation set as Parquet (run by scripts/evalset/make.sh):
//   dotnet run scripts/evalset/ToParquet.cs -- text  IN.jsonl OUT.parquet   {"text": ..., "label": "..."}  → text, label (strings)
//   dotnet run scripts/evalset/ToParquet.cs -- image IN.jsonl OUT.parquet   {"bytes": "<hex>", "label": k} → image{bytes,path}, label (int64),
// the image layout as the Hugging Face datasets library writes it (label names in the "huggingface" metadata).
using System.Text.Json;
using Parquet;
using Parquet.Schema;

if (args.Length != 3 || args[0] is not ("text" or "image"))
{
    Console.Error.WriteLine("usage: ToParquet.cs text|image IN.jsonl OUT.parquet");
    return 2;
}
var (kind, input, output) = (args[0], args[1], args[2]);
var lines = File.ReadLines(input).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement).ToList();
const int RowsPerGroup = 1000;
await using var fs = File.Create(output);
if (kind == "text")
{
    var text = new DataField<string>("text");
    var label = new DataField<string>("label");
    await using var w = await ParquetWriter.CreateAsync(new ParquetSchema(text, label), fs);
    foreach (var chunk in lines.Chunk(RowsPerGroup))
    {
        using var rg = w.CreateRowGroup();
        await rg.WriteAsync(text, chunk.Select(r => r.GetProperty("text").GetString()!).ToArray());
        await rg.WriteAsync(label, chunk.Select(r => r.GetProperty("label").GetString()!).ToArray());
    }
}
else
{
    var bytes = new DataField<byte[]>("bytes");
    var path = new DataField<string>("path");
    var label = new DataField<long>("label");
    var labels = lines.Select(r => r.GetProperty("label").GetInt64()).ToList();
    var names = Enumerable.Range(0, (int)labels.Max() + 1).Select(k => $"\"{k}\"");
    await using var w = await ParquetWriter.CreateAsync(new ParquetSchema(new StructField("image", bytes, path), label), fs);
    w.CustomMetadata = new Dictionary<string, string>
    {
        ["huggingface"] = "{\"info\": {\"features\": {\"image\": {\"_type\": \"Image\"}, \"label\": {\"names\": [" + string.Join(",", names) + "], \"_type\": \"ClassLabel\"}}}}",
    };
    int row = 0;
    foreach (var chunk in lines.Chunk(RowsPerGroup))
    {
        using var rg = w.CreateRowGroup();
        await rg.WriteAsync(bytes, chunk.Select(r => Convert.FromHexString(r.GetProperty("bytes").GetString()!)).ToArray());
        await rg.WriteAsync(path, chunk.Select((_, i) => $"{row + i:D5}.png").ToArray());
        await rg.WriteAsync<long>(label, chunk.Select(r => r.GetProperty("label").GetInt64()).ToArray().AsMemory());
        row += chunk.Length;
    }
}
Console.WriteLine($"{output}: {lines.Count} rows");
return 0;
