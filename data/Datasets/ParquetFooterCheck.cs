namespace ModelZoo.Data;

/// <summary>
/// Checks Thrift-encoded Parquet metadata (the footer's FileMetaData, page headers) before Parquet.Net reads it.
/// Parquet.Net 6.1's Thrift reader trusts the bytes: past the end of its buffer <c>ReadByte</c> returns -1, which it
/// takes as 0xFF, so a varint never ends (a hang); list sizes and binary lengths are allocated as claimed; a field is
/// read as the type the schema says whatever type the wire says. This walk consumes the bytes exactly as Parquet.Net
/// will (known fields by their schema type, unknown ones as its <c>SkipField</c> does) and refuses metadata that would
/// run past the end, claims a list or binary larger than the bytes left, nests too deep, or puts a known field on the
/// wire with another type. The field types come from the Parquet format's <c>parquet.thrift</c>
/// (<see cref="ThriftStructs"/>, generated).
/// </summary>
internal static partial class ParquetFooterCheck
{
    private const int MaxDepth = 64;

    // Compact protocol wire types.
    private const int BoolTrue = 1, BoolFalse = 2, Byte = 3, I16 = 4, I32 = 5, I64 = 6, Double = 7, Binary = 8, ListType = 9, StructType = 12;

    private static readonly Dictionary<string, Dictionary<int, string>> Schema = ThriftStructs.ToDictionary(
        s => s.Name,
        s => s.Fields.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(f => f.Split(' '))
            .ToDictionary(p => int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture), p => p[1]));

    /// <summary>Checks a footer (FileMetaData); throws <see cref="InvalidDataException"/> naming <paramref name="file"/>.</summary>
    public static void CheckFileMetaData(ReadOnlySpan<byte> footer, string file)
    {
        var c = new Cursor(footer, file, "footer");
        c.Struct("FileMetaData", 0, null);
    }

    /// <summary>
    /// Checks the page header at the start of <paramref name="bytes"/> and returns its length in bytes and its
    /// top-level fields (type, uncompressed_page_size, compressed_page_size) and the value count of its data page header.
    /// </summary>
    public static (int Length, long Type, long Uncompressed, long Compressed, long Values) CheckPageHeader(ReadOnlySpan<byte> bytes, string file, long offset)
    {
        var values = new Dictionary<string, long>();
        var c = new Cursor(bytes, file, $"page header at byte {offset}");
        c.Struct("PageHeader", 0, values);
        return (c.Pos, values.GetValueOrDefault("PageHeader.1", -1), values.GetValueOrDefault("PageHeader.2", -1), values.GetValueOrDefault("PageHeader.3", -1),
            values.GetValueOrDefault("DataPageHeader.1", 0) + values.GetValueOrDefault("DataPageHeaderV2.1", 0));
    }

    private ref struct Cursor(ReadOnlySpan<byte> bytes, string file, string what)
    {
        private readonly ReadOnlySpan<byte> _b = bytes;
        public int Pos;

        private readonly InvalidDataException Error(string why) =>
            new($"{file} is corrupt: its {what} {why} (byte {Pos} of it); re-download or re-export the file.");

        private int Remaining => _b.Length - Pos;

        private byte ReadByte() => Pos < _b.Length ? _b[Pos++] : throw Error("ends in the middle of a field");

        private ulong Varint()
        {
            ulong r = 0;
            for (int shift = 0; ; shift += 7)
            {
                if (shift > 63) throw Error("has a variable-length number longer than 10 bytes");
                byte x = ReadByte();
                r |= (ulong)(x & 0x7f) << shift;
                if ((x & 0x80) == 0) return r;
            }
        }

        private void Skip(long n)
        {
            if (n < 0 || n > Remaining) throw Error($"claims {n} bytes where {Remaining} are left");
            Pos += (int)n;
        }

        private int Count(int minBytesEach)
        {
            byte h = ReadByte();
            long n = (h >> 4) & 0x0f;
            if (n == 15) n = (int)(uint)Varint(); // Parquet.Net casts the 32-bit varint to int
            if (n < 0 || n * Math.Max(minBytesEach, 1) > Remaining) throw Error($"claims a list of {n} elements where {Remaining} bytes are left");
            return (int)n;
        }

        public void Struct(string name, int depth, Dictionary<string, long>? record)
        {
            if (depth > MaxDepth) throw Error($"nests structures more than {MaxDepth} deep");
            var fields = Schema[name];
            short last = 0;
            while (true)
            {
                byte h = ReadByte();
                if (h == 0) return;
                int delta = h >> 4, wire = h & 0x0f;
                short id = delta == 0 ? (short)ZigZag32(Varint()) : (short)(last + delta);
                last = id;
                if (!fields.TryGetValue(id, out var type))
                {
                    SkipUnknown(wire, depth + 1);
                    continue;
                }
                if (WireType(type) != wire && !(type == "bool" && wire == BoolFalse))
                    throw Error($"has field {id} of {name} with wire type {wire}, but the format says {type}");
                long v = Value(type, depth, wire, record);
                if (record is not null) record[$"{name}.{id}"] = v;
            }
        }

        private long Value(string type, int depth, int wire, Dictionary<string, long>? record)
        {
            switch (type)
            {
                case "bool": return wire == BoolTrue ? 1 : 0; // the value is in the field header
                case "i8": return (sbyte)ReadByte();
                case "i16":
                case "i32": return ZigZag32(Varint());
                case "i64": return ZigZag64(Varint());
                case "double": Skip(8); return 0;
                case "string":
                case "binary":
                {
                    long n = (int)(uint)Varint();
                    Skip(n);
                    return n;
                }
            }
            if (type.StartsWith("list<", StringComparison.Ordinal))
            {
                var elem = type[5..^1];
                byte h = _b.Length > Pos ? _b[Pos] : (byte)0;
                int n = Count(1); // every element Parquet.Net reads takes at least one byte (a bool takes one)
                int elemWire = h & 0x0f;
                if (n > 0 && elemWire != WireType(elem) && !(elem == "bool" && elemWire == BoolFalse))
                    throw Error($"has a list of wire type {elemWire} where the format says {type}");
                for (int i = 0; i < n; i++)
                {
                    if (elem == "bool") ReadByte();
                    else Value(elem, depth + 1, WireType(elem), null);
                }
                return n;
            }
            Struct(type, depth + 1, record);
            return 0;
        }

        /// <summary>Consumes an unknown field as Parquet.Net 6.1's <c>SkipField</c> does (its struct skip reads field headers only).</summary>
        private void SkipUnknown(int wire, int depth)
        {
            if (depth > MaxDepth) throw Error($"nests structures more than {MaxDepth} deep");
            switch (wire)
            {
                case BoolTrue or BoolFalse: return;
                case Byte: Skip(1); return;
                case I16 or I32 or I64: Varint(); return;
                case Double: Skip(8); return;
                case Binary: Skip((int)(uint)Varint()); return;
                case StructType:
                    while (true)
                    {
                        byte h = ReadByte();
                        if (h == 0) return;
                        if (h >> 4 == 0) Varint();
                    }
                case ListType:
                {
                    byte h = _b.Length > Pos ? _b[Pos] : (byte)0;
                    int n = Count(0);
                    for (int i = 0; i < n; i++) SkipUnknown(h & 0x0f, depth + 1);
                    return;
                }
                default: throw Error($"has an unknown field of wire type {wire}");
            }
        }
    }

    private static int WireType(string type) => type switch
    {
        "bool" => BoolTrue,
        "i8" => Byte,
        "i16" => I16,
        "i32" => I32,
        "i64" => I64,
        "double" => Double,
        "string" or "binary" => Binary,
        _ when type.StartsWith("list<", StringComparison.Ordinal) => ListType,
        _ => StructType,
    };

    private static int ZigZag32(ulong v) => (int)((uint)v >> 1) ^ -(int)((uint)v & 1);

    private static long ZigZag64(ulong v) => (long)(v >> 1) ^ -(long)(v & 1);
}
