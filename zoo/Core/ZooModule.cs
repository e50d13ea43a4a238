using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo;

/// <summary>
/// Base class of every module in a zoo model tree. Children are registered by name and looked up by name each time
/// <c>forward</c> runs (<see cref="Run"/>), never kept in fields, so surgery (<see cref="ZooModel.Replace"/>,
/// <see cref="ZooModel.InsertAfter"/>, …) changes what actually runs.
/// </summary>
/// <remarks>
/// Rules for subclasses: register children with <see cref="Add{T}"/> in the constructor, call them with
/// <see cref="Run"/> (or <see cref="RunIfPresent"/>), and keep no <c>Module</c>-typed fields.
/// </remarks>
public abstract class ZooModule : nn.Module<Tensor, Tensor>
{
    private readonly Dictionary<string, List<string>> _before = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _after = new(StringComparer.Ordinal);

    static ZooModule() => Native.TorchRuntime.EnsureConfigured();

    /// <summary>Creates a module; <paramref name="name"/> is the type name TorchSharp reports.</summary>
    protected ZooModule(string name) : base(name) { }

    /// <summary>Registers <paramref name="module"/> as the child <paramref name="name"/> and returns it.</summary>
    protected T Add<T>(string name, T module) where T : nn.Module
    {
        register_module(name, module);
        return module;
    }

    /// <summary>Runs the child <paramref name="name"/>, with any modules inserted before or after it
    /// (each through <see cref="OneDnnConvGuard.Forward"/>).</summary>
    protected Tensor Run(string name, Tensor x)
    {
        if (_before.Count > 0 && _before.TryGetValue(name, out var pre))
            foreach (var p in pre) x = OneDnnConvGuard.Forward(Callable(p), x);
        x = OneDnnConvGuard.Forward(Callable(name), x);
        if (_after.Count > 0 && _after.TryGetValue(name, out var post))
            foreach (var p in post) x = OneDnnConvGuard.Forward(Callable(p), x);
        return x;
    }

    /// <summary>Runs the child <paramref name="name"/> if it is registered, else returns <paramref name="x"/>.</summary>
    protected Tensor RunIfPresent(string name, Tensor x) => HasChild(name) ? Run(name, x) : x;

    /// <summary>True when a child called <paramref name="name"/> is registered now.</summary>
    public bool HasChild(string name) => _internal_submodules.ContainsKey(name);

    /// <summary>The child called <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such child; the message lists the children there are.</exception>
    public nn.Module GetChild(string name) =>
        _internal_submodules.TryGetValue(name, out var m) ? m
        : throw new KeyNotFoundException($"'{GetType().Name}' has no child '{name}'. Children: {string.Join(", ", _internal_submodules.Keys)}.");

    /// <summary>The names of the registered children, in registration order.</summary>
    public IReadOnlyList<string> ChildNames => _internal_submodules.Keys.ToList();

    /// <summary>Whether children can be removed outright (true for sequences, whose order is their wiring).</summary>
    public virtual bool IsSequence => false;

    private nn.Module<Tensor, Tensor> Callable(string name) =>
        GetChild(name) as nn.Module<Tensor, Tensor>
        ?? throw new InvalidOperationException($"Child '{name}' of '{GetType().Name}' does not map a tensor to a tensor.");

    /// <summary>Puts <paramref name="module"/> in place of the child <paramref name="name"/>, keeping its position.</summary>
    internal void SetChild(string name, nn.Module module)
    {
        int index = IndexOf(name);
        if (index < 0) throw new KeyNotFoundException($"'{GetType().Name}' has no child '{name}'.");
        Reorder(list => list[index] = (name, module));
    }

    /// <summary>Registers <paramref name="module"/> as a new child that runs just before or after <paramref name="anchor"/>.</summary>
    internal void InsertChild(string anchor, string name, nn.Module module, bool after)
    {
        if (HasChild(name)) throw new InvalidOperationException($"'{GetType().Name}' already has a child '{name}'; choose another name.");
        int index = IndexOf(anchor);
        if (index < 0) throw new KeyNotFoundException($"'{GetType().Name}' has no child '{anchor}'.");
        Reorder(list => list.Insert(after ? index + 1 : index, (name, module)));
        if (!IsSequence)
        {
            var map = after ? _after : _before;
            if (!map.TryGetValue(anchor, out var names)) map[anchor] = names = [];
            if (after) names.Add(name); else names.Insert(0, name);
        }
    }

    /// <summary>Unregisters the child <paramref name="name"/> (sequences, or modules that were inserted by surgery).</summary>
    internal void RemoveChild(string name)
    {
        bool inserted = _before.Values.Concat(_after.Values).Any(l => l.Contains(name));
        if (!IsSequence && !inserted)
            throw new InvalidOperationException($"'{name}' is wired into the forward pass of '{GetType().Name}'; replace it with nn.Identity() instead of removing it.");
        if (IndexOf(name) < 0) throw new KeyNotFoundException($"'{GetType().Name}' has no child '{name}'.");
        foreach (var l in _before.Values.Concat(_after.Values)) l.Remove(name);
        Reorder(list => list.RemoveAll(c => c.Name == name));
    }

    /// <summary>True when <paramref name="name"/> was inserted by surgery rather than built in.</summary>
    internal bool IsInserted(string name) => _before.Values.Concat(_after.Values).Any(l => l.Contains(name));

    /// <summary>The children and surgery wiring as they are now, for undoing an edit with <see cref="Restore"/>.</summary>
    internal ChildSnapshot Snapshot() => new(
        ChildNames.Select(n => (n, _internal_submodules[n])).ToList(),
        _before.ToDictionary(kv => kv.Key, kv => kv.Value.ToList()),
        _after.ToDictionary(kv => kv.Key, kv => kv.Value.ToList()));

    /// <summary>Puts children and wiring back as <paramref name="snapshot"/> recorded them.</summary>
    internal void Restore(ChildSnapshot snapshot)
    {
        _internal_submodules.Clear();
        foreach (var (n, m) in snapshot.Children) register_module(n, m);
        _before.Clear();
        foreach (var (k, v) in snapshot.Before) _before[k] = v.ToList();
        _after.Clear();
        foreach (var (k, v) in snapshot.After) _after[k] = v.ToList();
    }

    /// <summary>Children and surgery wiring of a module at one moment.</summary>
    internal sealed record ChildSnapshot(List<(string Name, nn.Module Module)> Children, Dictionary<string, List<string>> Before, Dictionary<string, List<string>> After);

    private int IndexOf(string name) => ChildNames.ToList().IndexOf(name);

    private void Reorder(Action<List<(string Name, nn.Module Module)>> edit)
    {
        var list = ChildNames.Select(n => (Name: n, Module: _internal_submodules[n])).ToList();
        edit(list);
        _internal_submodules.Clear();
        foreach (var (n, m) in list) register_module(n, m);
    }
}

/// <summary>An ordered container whose <c>forward</c> runs its children in their current order (names "0", "1", … by default).</summary>
public sealed class ZooSequential : ZooModule
{
    /// <summary>Creates a sequence of <paramref name="modules"/> named "0", "1", ….</summary>
    public ZooSequential(params nn.Module<Tensor, Tensor>[] modules) : base(nameof(ZooSequential))
    {
        for (int i = 0; i < modules.Length; i++) Add(i.ToString(System.Globalization.CultureInfo.InvariantCulture), modules[i]);
    }

    /// <summary>Creates a sequence of named modules.</summary>
    public ZooSequential(IEnumerable<(string Name, nn.Module<Tensor, Tensor> Module)> modules) : base(nameof(ZooSequential))
    {
        foreach (var (n, m) in modules) Add(n, m);
    }

    /// <summary>Appends a child at the end.</summary>
    public ZooSequential Append(string name, nn.Module<Tensor, Tensor> module)
    {
        Add(name, module);
        return this;
    }

    /// <summary>Number of children.</summary>
    public int Count => ChildNames.Count;

    /// <inheritdoc />
    public override bool IsSequence => true;

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => ForwardRange(x, 0, Count);

    /// <summary>Runs the children at positions <paramref name="start"/> to <paramref name="end"/> (exclusive) in order,
    /// as <c>forward</c> would run that part of the sequence.</summary>
    public Tensor ForwardRange(Tensor x, int start, int end)
    {
        var names = ChildNames;
        if (start < 0 || end > names.Count || start > end)
            throw new ArgumentOutOfRangeException(nameof(start), $"Range {start}..{end} is outside this sequence of {names.Count} children.");
        for (int i = start; i < end; i++) x = Run(names[i], x);
        return x;
    }
}
