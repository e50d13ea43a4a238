using System.Buffers.Binary;
using System.Text;

namespace ModelZoo.Weights;

/// <summary>A pickle tried to use something a state dict does not need (a global outside the allow-list, or an opcode that builds arbitrary objects); nothing was executed.</summary>
public sealed class UnsafePickleException(string message) : Exception(message);

/// <summary>A Python global the restricted unpickler allowed (module and name).</summary>
internal sealed record PyGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A Python dict (insertion-ordered), as built by the restricted unpickler.</summary>
internal sealed class PyDict
{
    public List<KeyValuePair<object, object?>> Items { get; } = [];
    private readonly Dictionary<object, int> _index = [];

    public void Set(object key, object? value)
    {
        if (_index.TryGetValue(key, out int i)) Items[i] = new(key, value);
        else { _index[key] = Items.Count; Items.Add(new(key, value)); }
    }

    public object? Get(object key) => _index.TryGetValue(key, out int i) ? Items[i].Value : null;

    public bool ContainsKey(object key) => _index.ContainsKey(key);
}

/// <summary>A Python tuple.</summary>
internal sealed record PyTuple(object?[] Items);

/// <summary>The persistent id torch.save writes for a storage: ('storage', type, key, location, numel).</summary>
internal sealed record StorageRef(TorchStorageType Type, string Key, string Location, long NumElements);

/// <summary>A storage class such as <c>torch.FloatStorage</c>.</summary>
internal sealed record TorchStorageType(string Name, TorchSharp.torch.ScalarType DType);

/// <summary>A tensor as <c>torch._utils._rebuild_tensor_v2</c> describes it: a view of a storage (not read yet).</summary>
internal sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride);

/// <summary>
/// A restricted unpickler for the pickles <c>torch.save</c> writes (protocols 2–5, as far as state dicts use them).
/// It never calls into Python semantics: the only callables are an allow-list of globals it interprets itself
/// (<c>collections.OrderedDict</c>, <c>torch._utils._rebuild_tensor_v2</c>, <c>_rebuild_parameter</c>, the
/// <c>torch.*Storage</c> classes, <c>_codecs.encode</c> for latin-1 bytes). Any other global, and opcodes that build
/// arbitrary objects (INST, OBJ, NEWOBJ, EXT*), raise <see cref="UnsafePickleException"/> naming the file and the global.
/// </summary>
internal sealed class RestrictedUnpickler
{
    private const int MaxStack = 1 << 20;
    private const int MaxMemo = 1 << 22;
    private readonly byte[] _data;
    private readonly string _file;
    private int _pos;
    private readonly List<object?> _stack = [];
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];

    public RestrictedUnpickler(byte[] data, string file)
    {
        _data = data;
        _file = file;
    }

    private static readonly HashSet<string> AllowedCallables =
    [
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "_codecs.encode",
    ];

    private Exception Bad(string what) => new InvalidDataException($"{_file}: not a valid state-dict pickle at byte {_pos}: {what}.");

    private UnsafePickleException Refuse(string what) => new(
        $"{_file}: refused to unpickle {what}. Only tensors and (ordered) dicts of them are read from PyTorch files; nothing in the file was executed. " +
        "If you trust the file, re-save just the state dict in Python (torch.save(model.state_dict(), path)) or convert it to .safetensors.");

    public object? Load()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Bad("unexpected end of data (no STOP opcode)");
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: Byte(); break; // PROTO
                case 0x95: Bytes(8); break; // FRAME (protocol 4+)
                case (byte)'.': // STOP
                    if (_stack.Count != 1) throw Bad($"{_stack.Count} values left on the stack at STOP");
                    return _stack[0];
                case (byte)'(': _marks.Push(_stack.Count); break; // MARK
                case (byte)'}': Push(new PyDict()); break; // EMPTY_DICT
                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)')': Push(new PyTuple([])); break; // EMPTY_TUPLE
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'K': Push((long)Byte()); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2))); break; // BININT2
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Bytes(4))); break; // BININT
                case 0x8a: Push(Long(Byte())); break; // LONG1
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Bytes(8))); break; // BINFLOAT
                case (byte)'X': Push(Utf8(Len32())); break; // BINUNICODE
                case 0x8c: Push(Utf8(Byte())); break; // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(Len64())); break; // BINUNICODE8
                case (byte)'T': Push(Latin1(Len32())); break; // BINSTRING (py2 str)
                case (byte)'U': Push(Latin1(Byte())); break; // SHORT_BINSTRING
                case (byte)'B': Push(Bytes(Len32()).ToArray()); break; // BINBYTES
                case (byte)'C': Push(Bytes(Byte()).ToArray()); break; // SHORT_BINBYTES
                case 0x8e: Push(Bytes(Len64()).ToArray()); break; // BINBYTES8
                case (byte)'q': Memo(Byte()); break; // BINPUT
                case (byte)'r': Memo(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4))); break; // LONG_BINPUT
                case 0x94: Memo(_memo.Count); break; // MEMOIZE
                case (byte)'h': Push(Recall(Byte())); break; // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)))); break; // LONG_BINGET
                case (byte)'t': Push(new PyTuple(PopMark().ToArray())); break; // TUPLE
                case 0x85: Push(new PyTuple([Pop()])); break; // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PyTuple([a, b])); break; } // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PyTuple([a, b, c])); break; } // TUPLE3
                case (byte)'l': Push(PopMark()); break; // LIST
                case (byte)'d': { var items = PopMark(); var d = new PyDict(); SetItems(d, items); Push(d); break; } // DICT
                case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; } // APPEND
                case (byte)'e': { var items = PopMark(); AsList(Peek()).AddRange(items); break; } // APPENDS
                case (byte)'s': { var v = Pop(); var k = Pop(); SetItems(AsDict(Peek()), [k, v]); break; } // SETITEM
                case (byte)'u': { var items = PopMark(); SetItems(AsDict(Peek()), items); break; } // SETITEMS
                case (byte)'c': { string module = Line(); string name = Line(); Push(Global(module, name)); break; } // GLOBAL
                case 0x93: { var name = Pop(); var module = Pop(); // STACK_GLOBAL
                        if (module is not string m || name is not string n) throw Bad("STACK_GLOBAL needs two strings");
                        Push(Global(m, n)); break; }
                case (byte)'R': { var args = Pop(); var f = Pop(); Push(Call(f, args)); break; } // REDUCE
                case (byte)'Q': Push(PersistentLoad(Pop())); break; // BINPERSID
                case (byte)'b': { var state = Pop(); Build(Peek(), state); break; } // BUILD
                case (byte)'0': Pop(); break; // POP
                case (byte)'1': PopMark(); break; // POP_MARK
                case (byte)'2': Push(Peek()); break; // DUP
                case (byte)'i': throw Refuse($"an INST opcode ('{Line()}.{Line()}'), which creates an arbitrary object");
                case (byte)'o': throw Refuse("an OBJ opcode, which creates an arbitrary object");
                case 0x81 or 0x92: throw Refuse("a NEWOBJ opcode, which creates an arbitrary object");
                case 0x82 or 0x83 or 0x84: throw Refuse("an EXT opcode (extension registry global)");
                case (byte)'P': throw Refuse("a text persistent id (PERSID), which torch.save does not write");
                default: throw Bad($"unsupported pickle opcode 0x{op:x2}");
            }
        }
    }

    private object Global(string module, string name)
    {
        string full = $"{module}.{name}";
        if (AllowedCallables.Contains(full)) return new PyGlobal(module, name);
        if (module == "torch" && TensorBytes.FromStorageName(name) is { } dtype) return new TorchStorageType(name, dtype);
        throw Refuse($"the global '{full}'");
    }

    private object? Call(object? f, object? args)
    {
        if (f is not PyGlobal g) throw Refuse($"a call of {Describe(f)}");
        if (args is not PyTuple t) throw Bad($"arguments of {g} are not a tuple");
        var a = t.Items;
        switch (g.ToString())
        {
            case "collections.OrderedDict":
                if (a.Length != 0) throw Refuse("collections.OrderedDict called with arguments");
                return new PyDict();
            case "torch._utils._rebuild_tensor_v2":
                if (a.Length < 6 || a[0] is not StorageRef s || a[1] is not long offset || a[2] is not PyTuple size || a[3] is not PyTuple stride)
                    throw Bad("torch._utils._rebuild_tensor_v2 with unexpected arguments");
                return new TensorRef(s, offset, Longs(size, "size"), Longs(stride, "stride"));
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                if (a.Length < 1 || a[0] is not TensorRef tr) throw Bad($"{g} without a tensor");
                return tr;
            case "_codecs.encode":
                if (a.Length != 2 || a[0] is not string text || a[1] is not "latin1") throw Refuse("_codecs.encode with arguments other than (str, 'latin1')");
                return Encoding.Latin1.GetBytes(text);
            default:
                throw Refuse($"a call of {g}");
        }
    }

    private long[] Longs(PyTuple t, string what) =>
        t.Items.Select(o => o is long v ? v : throw Bad($"tensor {what} holds a {Describe(o)}, not an integer")).ToArray();

    private object PersistentLoad(object? pid)
    {
        if (pid is PyTuple { Items: [string tag, TorchStorageType type, string key, string location, long numel] } && tag == "storage")
        {
            if (numel < 0) throw Bad($"storage '{key}' has a negative size");
            return new StorageRef(type, key, location, numel);
        }
        throw new UnsafePickleException($"{_file}: refused the persistent id {Describe(pid)}: torch.save writes ('storage', torch.XStorage, key, location, numel); nothing in the file was executed.");
    }

    private void Build(object? target, object? state)
    {
        // OrderedDict state from state_dict(): {'_metadata': ...} as instance attributes. Kept harmlessly aside.
        if (target is PyDict && state is PyDict or null) return;
        throw Refuse($"setting the state of {Describe(target)}");
    }

    private static string Describe(object? o) => o switch
    {
        null => "None",
        PyGlobal g => g.ToString(),
        TorchStorageType s => "torch." + s.Name,
        PyTuple t => $"a tuple of {t.Items.Length}",
        _ => "a " + o.GetType().Name,
    };

    private void SetItems(PyDict d, List<object?> items)
    {
        if (items.Count % 2 != 0) throw Bad("odd number of items for a dict");
        for (int i = 0; i < items.Count; i += 2)
        {
            var key = items[i] ?? throw Bad("None as a dict key");
            if (key is not (string or long or bool or double)) throw Bad($"unsupported dict key {Describe(key)}");
            d.Set(key, items[i + 1]);
        }
    }

    private PyDict AsDict(object? o) => o as PyDict ?? throw Bad($"SETITEM on {Describe(o)}");
    private List<object?> AsList(object? o) => o as List<object?> ?? throw Bad($"APPEND on {Describe(o)}");

    private void Push(object? o)
    {
        if (_stack.Count >= MaxStack) throw Bad("stack too deep");
        _stack.Add(o);
    }

    private object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count <= _marks.Peek())) throw Bad("stack underflow");
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return o;
    }

    private object? Peek() => _stack.Count > 0 ? _stack[^1] : throw Bad("stack underflow");

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Bad("no MARK");
        int m = _marks.Pop();
        var items = _stack.GetRange(m, _stack.Count - m);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    private void Memo(long index)
    {
        if (_memo.Count >= MaxMemo) throw Bad("memo too large");
        _memo[index] = Peek();
    }

    private object? Recall(long index) => _memo.TryGetValue(index, out var v) ? v : throw Bad($"memo key {index} was never stored");

    private byte Byte() => Bytes(1)[0];

    private ReadOnlySpan<byte> Bytes(long n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Bad($"a field of {n} bytes runs past the end of the pickle");
        var s = _data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return s;
    }

    private long Len32() => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4));
    private long Len64()
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8));
        return n > int.MaxValue ? throw Bad("field too large") : (long)n;
    }

    private string Utf8(long n) => Encoding.UTF8.GetString(Bytes(n));
    private string Latin1(long n) => Encoding.Latin1.GetString(Bytes(n));

    private string Line()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0 || end - _pos > 1024) throw Bad("unterminated GLOBAL name");
        string s = Encoding.UTF8.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private object Long(int n)
    {
        var b = Bytes(n);
        if (n == 0) return 0L;
        if (n > 8) throw Bad("integer wider than 64 bits");
        long v = 0;
        for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
        if (n < 8 && (b[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
        return v;
    }
}
