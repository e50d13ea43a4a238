using System.Buffers.Binary;
using System.Text;

namespace ModelZoo.Native;

/// <summary>One symbol-version requirement (<c>Vernaux</c>) of an ELF shared object.</summary>
/// <param name="File">The library the version is needed from, e.g. <c>libstdc++.so.6</c>.</param>
/// <param name="Version">The version name, e.g. <c>GLIBCXX_3.4.32</c>.</param>
/// <param name="IsWeak">Whether the entry carries <c>VER_FLG_WEAK</c>, so a loader that lacks it only warns.</param>
/// <param name="FlagsOffset">File offset of the entry's 16-bit <c>vna_flags</c> field.</param>
internal sealed record ElfVersionNeed(string File, string Version, bool IsWeak, long FlagsOffset);

/// <summary>
/// Reads and edits the GNU symbol-versioning sections of 64-bit little-endian ELF files:
/// <c>.gnu.version_r</c> (versions a library needs) and <c>.gnu.version_d</c> (versions a library defines).
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>libLibTorchSharp.so</c> needs <c>GLIBCXX_3.4.32</c> only for a marker symbol; marking that
/// single need weak lets it load against an older libstdc++ (Debian 12 ships up to 3.4.30). This class does the
/// marking on a copy of the library; it never touches anything but the file it is given.
/// </remarks>
internal static class ElfVersionNeeds
{
    /// <summary><c>VER_FLG_WEAK</c> from <c>elf.h</c>.</summary>
    public const ushort WeakFlag = 0x2;
    private const uint ShtGnuVerdef = 0x6ffffffd;
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const int MaxEntries = 1 << 16;

    /// <summary>Lists every version need of the ELF file at <paramref name="path"/>.</summary>
    public static IReadOnlyList<ElfVersionNeed> ReadNeeds(string path) => ReadNeeds(File.ReadAllBytes(path), path);

    /// <summary>Lists every version need of an ELF image held in memory.</summary>
    public static IReadOnlyList<ElfVersionNeed> ReadNeeds(ReadOnlySpan<byte> elf, string nameForErrors = "<memory>")
    {
        var sections = ReadSections(elf, nameForErrors);
        var needs = new List<ElfVersionNeed>();
        foreach (var sec in sections.Where(s => s.Type == ShtGnuVerneed))
        {
            var strtab = StringTable(elf, sections, sec.Link, nameForErrors);
            long at = sec.Offset;
            for (int i = 0; i < sec.Info; i++)
            {
                Check(at >= sec.Offset && at + 16 <= sec.Offset + sec.Size, nameForErrors, "a Verneed entry lies outside .gnu.version_r");
                var e = elf.Slice((int)at);
                ushort count = U16(e, 2);
                string file = CString(elf, strtab, U32(e, 4), nameForErrors);
                long aux = at + U32(e, 8);
                for (int j = 0; j < count; j++)
                {
                    Check(aux >= sec.Offset && aux + 16 <= sec.Offset + sec.Size, nameForErrors, "a Vernaux entry lies outside .gnu.version_r");
                    var a = elf.Slice((int)aux);
                    ushort flags = U16(a, 4);
                    string name = CString(elf, strtab, U32(a, 8), nameForErrors);
                    needs.Add(new ElfVersionNeed(file, name, (flags & WeakFlag) != 0, aux + 4));
                    uint nextAux = U32(a, 12);
                    if (nextAux == 0) break;
                    aux += nextAux;
                }
                uint next = U32(e, 12);
                if (next == 0) break;
                at += next;
            }
        }
        return needs;
    }

    /// <summary>Lists the version names an ELF library defines (its <c>.gnu.version_d</c>), e.g. every <c>GLIBCXX_*</c>.</summary>
    public static IReadOnlySet<string> ReadDefinitions(string path)
    {
        var elf = File.ReadAllBytes(path);
        var sections = ReadSections(elf, path);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var sec in sections.Where(s => s.Type == ShtGnuVerdef))
        {
            var strtab = StringTable(elf, sections, sec.Link, path);
            long at = sec.Offset;
            for (int i = 0; i < Math.Min(sec.Info, MaxEntries); i++)
            {
                Check(at >= sec.Offset && at + 20 <= sec.Offset + sec.Size, path, "a Verdef entry lies outside .gnu.version_d");
                var d = elf.AsSpan((int)at);
                ushort count = U16(d, 6);
                long aux = at + U32(d, 12);
                if (count > 0)
                {
                    Check(aux >= sec.Offset && aux + 8 <= sec.Offset + sec.Size, path, "a Verdaux entry lies outside .gnu.version_d");
                    names.Add(CString(elf, strtab, U32(elf.AsSpan((int)aux), 0), path));
                }
                uint next = U32(d, 16);
                if (next == 0) break;
                at += next;
            }
        }
        return names;
    }

    /// <summary>
    /// Sets <c>VER_FLG_WEAK</c> on the need for <paramref name="version"/> in the file at <paramref name="path"/>,
    /// writing through a temporary file and an atomic rename (so a hard link to a shared cache is never written through).
    /// </summary>
    /// <returns>True when the file was changed; false when the version is not needed or already weak.</returns>
    public static bool MarkWeak(string path, string version)
    {
        var bytes = File.ReadAllBytes(path);
        if (!MarkWeak(bytes, version, path)) return false;
        string temp = path + ".weak-" + Environment.ProcessId + ".tmp";
        File.WriteAllBytes(temp, bytes);
        try
        {
            if (!OperatingSystem.IsWindows())
                File.SetUnixFileMode(temp, File.GetUnixFileMode(path));
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        return true;
    }

    /// <summary>Sets <c>VER_FLG_WEAK</c> on the need for <paramref name="version"/> in an ELF image held in memory.</summary>
    public static bool MarkWeak(Span<byte> elf, string version, string nameForErrors = "<memory>")
    {
        bool changed = false;
        foreach (var need in ReadNeeds(elf, nameForErrors).Where(n => n.Version == version && !n.IsWeak))
        {
            var field = elf.Slice((int)need.FlagsOffset, 2);
            BinaryPrimitives.WriteUInt16LittleEndian(field, (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(field) | WeakFlag));
            changed = true;
        }
        return changed;
    }

    private readonly record struct Section(uint Type, long Offset, long Size, uint Link, uint Info);

    private static List<Section> ReadSections(ReadOnlySpan<byte> elf, string name)
    {
        Check(elf.Length >= 64 && elf[0] == 0x7f && elf[1] == (byte)'E' && elf[2] == (byte)'L' && elf[3] == (byte)'F', name, "not an ELF file");
        Check(elf[4] == 2, name, "only 64-bit ELF files are supported");
        Check(elf[5] == 1, name, "only little-endian ELF files are supported");
        long shoff = (long)U64(elf, 0x28);
        int shentsize = U16(elf, 0x3A);
        int shnum = U16(elf, 0x3C);
        Check(shentsize >= 64 && shnum > 0 && shnum < MaxEntries, name, "the section header table is missing or malformed");
        Check(shoff > 0 && shoff + (long)shentsize * shnum <= elf.Length, name, "the section header table lies outside the file");
        var list = new List<Section>(shnum);
        for (int i = 0; i < shnum; i++)
        {
            var h = elf.Slice((int)(shoff + (long)i * shentsize), 64);
            var s = new Section(U32(h, 4), (long)U64(h, 24), (long)U64(h, 32), U32(h, 40), U32(h, 44));
            if (s.Type is ShtGnuVerneed or ShtGnuVerdef)
                Check(s.Offset >= 0 && s.Size >= 0 && s.Offset + s.Size <= elf.Length, name, "a versioning section lies outside the file");
            list.Add(s);
        }
        return list;
    }

    private static Section StringTable(ReadOnlySpan<byte> elf, List<Section> sections, uint index, string name)
    {
        Check(index < sections.Count, name, "a versioning section links to a missing string table");
        var s = sections[(int)index];
        Check(s.Offset >= 0 && s.Offset + s.Size <= elf.Length, name, "the string table lies outside the file");
        return s;
    }

    private static string CString(ReadOnlySpan<byte> elf, Section strtab, uint offset, string name)
    {
        Check(offset < strtab.Size, name, "a version name lies outside its string table");
        var bytes = elf.Slice((int)(strtab.Offset + offset), (int)(strtab.Size - offset));
        int end = bytes.IndexOf((byte)0);
        Check(end >= 0, name, "a version name is not terminated");
        return Encoding.ASCII.GetString(bytes[..end]);
    }

    private static void Check(bool ok, string file, string what)
    {
        if (!ok) throw new InvalidDataException($"{file}: {what}.");
    }

    private static ushort U16(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b.Slice(at, 2));
    private static uint U32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b.Slice(at, 4));
    private static ulong U64(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b.Slice(at, 8));
}
