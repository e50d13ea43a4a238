using ModelZoo.Native;

// Usage: NativeFix <folder-or-file>...  — patches every libLibTorchSharp.so found (no-op where not needed).
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: NativeFix <output-folder-or-library>...");
    return 2;
}
int found = 0;
try
{
    foreach (var arg in args)
    {
        var files = File.Exists(arg) ? [arg]
            : Directory.Exists(arg) ? Directory.EnumerateFiles(arg, LibStdCxxCompat.TorchSharpLibrary, SearchOption.AllDirectories).ToArray()
            : [];
        foreach (var file in files)
        {
            found++;
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
    Console.WriteLine($"native-fix: no {LibStdCxxCompat.TorchSharpLibrary} under {string.Join(", ", args)}; nothing to do.");
return 0;
