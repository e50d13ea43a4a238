using System.Buffers.Binary;
using System.Text;

namespace ModelZoo.Tests.Build;

/// <summary>
/// Writes minimal 64-bit little-endian ELF files with a string table and GNU version-need / version-definition
/// sections, as a linker lays them out, so the patcher can be tested without a real shared library.
/// </summary>
internal static class SyntheticElf
{
    /// <summary>One needed library with its versions (name, weak?).</summary>
    public sealed record Need(string File, params (string Version, bool Weak)[] Versions);

    public static byte[] Build(IReadOnlyList<Need> needs, IReadOnlyList<string>? definitions = null)
    {
        var strtab = new MemoryStream();
        strtab.WriteByte(0);
        var offsets = new Dictionary<string, uint>();
        uint Str(string s)
        {
            if (offsets.TryGetValue(s, out var o)) return o;
            o = (uint)strtab.Length;
            strtab.Write(Encoding.ASCII.GetBytes(s));
            strtab.WriteByte(0);
            return offsets[s] = o;
        }

        // .gnu.version_r: Verneed (16 bytes) followed by its Vernaux entries (16 bytes each).
        var verneed = new MemoryStream();
        for (int i = 0; i < needs.Count; i++)
        {
            var n = needs[i];
            var entry = new byte[16 + 16 * n.Versions.Length];
            BinaryPrimitives.WriteUInt16LittleEndian(entry.AsSpan(0), 1);
            BinaryPrimitives.WriteUInt16LittleEndian(entry.AsSpan(2), (ushort)n.Versions.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(4), Str(n.File));
            BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(8), 16);
            BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(12), i == needs.Count - 1 ? 0u : (uint)entry.Length);
            for (int j = 0; j < n.Versions.Length; j++)
            {
                var a = entry.AsSpan(16 + 16 * j);
                BinaryPrimitives.WriteUInt32LittleEndian(a, (uint)n.Versions[j].Version.GetHashCode(StringComparison.Ordinal));
                BinaryPrimitives.WriteUInt16LittleEndian(a[4..], n.Versions[j].Weak ? (ushort)2 : (ushort)0);
                BinaryPrimitives.WriteUInt16LittleEndian(a[6..], (ushort)(2 + j));
                BinaryPrimitives.WriteUInt32LittleEndian(a[8..], Str(n.Versions[j].Version));
                BinaryPrimitives.WriteUInt32LittleEndian(a[12..], j == n.Versions.Length - 1 ? 0u : 16u);
            }
            verneed.Write(entry);
        }

        // .gnu.version_d: Verdef (20 bytes) + one Verdaux (8 bytes) per definition.
        var defs = definitions ?? [];
        var verdef = new MemoryStream();
        for (int i = 0; i < defs.Count; i++)
        {
            var entry = new byte[28];
            BinaryPrimitives.WriteUInt16LittleEndian(entry.AsSpan(0), 1);
            BinaryPrimitives.WriteUInt16LittleEndian(entry.AsSpan(4), (ushort)(i + 1));
            BinaryPrimitives.WriteUInt16LittleEndian(entry.AsSpan(6), 1);
            BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(12), 20);
            BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(16), i == defs.Count - 1 ? 0u : 28u);
            BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(20), Str(defs[i]));
            verdef.Write(entry);
        }

        var dynstr = strtab.ToArray();
        var vr = verneed.ToArray();
        var vd = verdef.ToArray();
        var file = new MemoryStream();
        file.Write(new byte[64]);
        long dynstrOff = file.Position; file.Write(dynstr);
        long vrOff = Align(file); file.Write(vr);
        long vdOff = Align(file); file.Write(vd);
        long shoff = Align(file);
        // Section headers: 0 null, 1 .dynstr, 2 .gnu.version_r, 3 .gnu.version_d
        var sh = new byte[64 * 4];
        Section(sh.AsSpan(64), 3, dynstrOff, dynstr.Length, 0, 0);
        Section(sh.AsSpan(128), 0x6ffffffe, vrOff, vr.Length, 1, (uint)needs.Count);
        Section(sh.AsSpan(192), 0x6ffffffd, vdOff, vd.Length, 1, (uint)defs.Count);
        file.Write(sh);
        var bytes = file.ToArray();
        "\u007fELF"u8.CopyTo(bytes);
        bytes[4] = 2; bytes[5] = 1; bytes[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x10), 3);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x12), 62);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(0x28), (ulong)shoff);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x34), 64);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x3A), 64);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x3C), 4);
        return bytes;
    }

    private static long Align(MemoryStream s)
    {
        while (s.Position % 8 != 0) s.WriteByte(0);
        return s.Position;
    }

    private static void Section(Span<byte> h, uint type, long offset, long size, uint link, uint info)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], type);
        BinaryPrimitives.WriteUInt64LittleEndian(h[24..], (ulong)offset);
        BinaryPrimitives.WriteUInt64LittleEndian(h[32..], (ulong)size);
        BinaryPrimitives.WriteUInt32LittleEndian(h[40..], link);
        BinaryPrimitives.WriteUInt32LittleEndian(h[44..], info);
    }
}
