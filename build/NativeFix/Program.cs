using ModelZoo.Native;

// Usage: NativeFix [--always] <folder-or-file>...  — patches every libLibTorchSharp.so found.
// Default: only where this machine's libstdc++ lacks the marker version (a no-op elsewhere).
// --always: mark the marker version need weak whatever this machine has (outputs meant for other machines).
bool always = args.Contains("--always");
var targets = args.Where(a => a != "--always").ToArray();
if (targets.Length == 0)
{
    Console.Error.WriteLine("usage: NativeFix [--always] <output-folder-or-library>...");
    return 2;
}
int found = 0;
try
{
    foreach (var arg in targets)
    {
        var files = File.Exists(arg) ? [arg]
            : Directory.Exists(arg) ? Directory.EnumerateFiles(arg, LibStdCxxCompat.TorchSharpLibrary, SearchOption.AllDirectories).ToArray()
            : [];
        foreach (var file in files)
        {
            found++;
            if (always)
            {
                int changed = LibStdCxxCompat.ApplyForAnyMachine(file);
                Console.WriteLine($"native-fix: always: {(changed > 0 ? "marked" : "already")} weak: {string.Join(", ", LibStdCxxCompat.MarkerVersions)} in {file}");
                continue;
            }
            var report = LibStdCxxCompat.Apply(file);
            Console.WriteLine($"native-fix: {report.State}: {report.Message}");
        }
    }
}
catch (Exception e) when (e is NativeFixException or InvalidDataException or IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"error NATIVEFIX: {e.Message}");
    return 1;
}
if (found == 0)
    Console.WriteLine($"native-fix: no {LibStdCxxCompat.TorchSharpLibrary} under {string.Join(", ", targets)}; nothing to do.");
return 0;
