using System.Text;
using ModelZoo.Weights;

namespace ModelZoo.Tests.Fuzz;

/// <summary>
/// Hand-crafted pickles that try to run code through every route the pickle format offers (GLOBAL / STACK_GLOBAL +
/// REDUCE, INST, OBJ, NEWOBJ, EXT, BUILD/__setstate__, persistent_load). The restricted unpickler must refuse each
/// with <see cref="UnsafePickleException"/> naming the file and what it refused. The .pth fixtures built by Python's
/// own pickler (evil_*.pth, see WeightFileTests) cover the same routes end to end through the zip reader.
/// </summary>
public class CraftedPickleTests
{
    private const string File = "crafted.pkl";

    private static object? Load(string latin1) => new RestrictedUnpickler(Encoding.Latin1.GetBytes(latin1), File).Load();

    [Theory]
    // GLOBAL + REDUCE (protocol 0/2): os.system('id'), subprocess.Popen(['id']), builtins.eval
    [InlineData("cos\nsystem\n(X\u0002\u0000\u0000\u0000idtR.", "os.system")]
    [InlineData("\u0080\u0002csubprocess\nPopen\n]X\u0002\u0000\u0000\u0000id\u0061\u0085R.", "subprocess.Popen")]
    [InlineData("c__builtin__\neval\n(X\u0001\u0000\u0000\u00001tR.", "__builtin__.eval")]
    // STACK_GLOBAL (protocol 4) + REDUCE: builtins.exec / builtins.getattr
    [InlineData("\u0080\u0004\u008c\u0008builtins\u008c\u0004exec\u0093\u008c\u0005print\u0085R.", "builtins.exec")]
    [InlineData("\u0080\u0004\u008c\u0008builtins\u008c\u0007getattr\u0093.", "builtins.getattr")]
    // A whole nn.Module (torch.save(model)) rebuilds arbitrary classes: refused with the class name.
    [InlineData("\u0080\u0002ctorch.nn.modules.linear\nLinear\n)\u0081.", "torch.nn.modules.linear.Linear")]
    // INST / OBJ / NEWOBJ / NEWOBJ_EX / EXT build objects without REDUCE
    [InlineData("(X\u0002\u0000\u0000\u0000idios\nsystem\n.", "INST")]
    [InlineData("(ccollections\nOrderedDict\no.", "OBJ")]
    [InlineData("\u0080\u0002ccollections\nOrderedDict\n)\u0081.", "NEWOBJ")]
    [InlineData("\u0080\u0004ccollections\nOrderedDict\n)}\u0092.", "NEWOBJ")]
    [InlineData("\u0080\u0002\u0082\u0001.", "EXT")]
    [InlineData("\u0080\u0002\u0083\u0001\u0000.", "EXT")]
    // REDUCE on something that is not an allowed function: a storage class, or an allowed global with unsafe arguments
    [InlineData("\u0080\u0002ctorch\nFloatStorage\n)R.", "torch.FloatStorage")]
    [InlineData("\u0080\u0002c_codecs\nencode\nX\u0001\u0000\u0000\u0000aX\u0005\u0000\u0000\u0000utf-8\u0086R.", "_codecs.encode")]
    [InlineData("\u0080\u0002ccollections\nOrderedDict\nX\u0001\u0000\u0000\u0000a\u0085R.", "collections.OrderedDict")]
    // BUILD (the __setstate__ route) on anything but a plain dict
    [InlineData("\u0080\u0002ccollections\nOrderedDict\n}b.", "setting the state of collections.OrderedDict")]
    [InlineData("\u0080\u0002]}b.", "setting the state of")]
    // persistent_load abuse: torch.load hands persistent ids to its own loader; ours accepts only ('storage', torch.XStorage, key, location, numel)
    [InlineData("\u0080\u0002(X\u0007\u0000\u0000\u0000storageX\u0009\u0000\u0000\u0000os.systemX\u0001\u0000\u0000\u00000X\u0003\u0000\u0000\u0000cpuK\u0001tQ.", "persistent id")]
    [InlineData("\u0080\u0002X\u0002\u0000\u0000\u0000idQ.", "persistent id")]
    [InlineData("Pos.system\n.", "PERSID")]
    public void Code_execution_attempts_are_refused_naming_the_file(string pickle, string expected)
    {
        var e = Assert.Throws<UnsafePickleException>(() => Load(pickle));
        Assert.Contains(File, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_plain_state_dict_pickle_still_loads()
    {
        // OrderedDict() with one entry 'n' -> 3, with the _metadata BUILD that state_dict() pickles carry.
        var d = Load("\u0080\u0002ccollections\nOrderedDict\n)R(X\u0001\u0000\u0000\u0000nK\u0003u}b.");
        var dict = Assert.IsType<PyDict>(d);
        var item = Assert.Single(dict.Items);
        Assert.Equal("n", item.Key);
        Assert.Equal(3L, item.Value);
    }
}
