using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

/// <summary>
/// Test-time augmentation: the model also sees transformed views of each input batch (e.g. mirrored images), and
/// the class probabilities of all views, the plain one included, are averaged. Evaluation reports the log of that
/// average as the logits, so losses and probabilities stay consistent.
/// </summary>
public sealed class TestTimeAugmentation
{
    private readonly IReadOnlyList<Func<Tensor, Tensor>> _views;

    private TestTimeAugmentation(string name, IReadOnlyList<Func<Tensor, Tensor>> views)
    {
        Name = name;
        _views = views;
    }

    /// <summary>Names of the views, e.g. <c>hflip</c>.</summary>
    public string Name { get; }

    /// <summary>Number of forward passes per batch (the plain view plus the extra ones).</summary>
    public int Passes => 1 + _views.Count;

    /// <summary>Mirrors N×C×H×W images left-right.</summary>
    public static TestTimeAugmentation HorizontalFlip { get; } = new("hflip", [x => x.flip(3)]);

    /// <summary>Views by name (<c>hflip</c>); null for an empty list.</summary>
    /// <exception cref="ArgumentException">An unknown name.</exception>
    public static TestTimeAugmentation? FromNames(IReadOnlyCollection<string> names)
    {
        if (names.Count == 0) return null;
        var views = new List<Func<Tensor, Tensor>>();
        foreach (var n in names)
            views.AddRange(n switch
            {
                "hflip" => HorizontalFlip._views,
                _ => throw new ArgumentException($"Unknown test-time augmentation '{n}'; known: hflip."),
            });
        return new TestTimeAugmentation(string.Join("+", names), views);
    }

    /// <summary>The log of the class probabilities averaged over all views of <paramref name="input"/>.</summary>
    public Tensor Predict(nn.Module<Tensor, Tensor> net, Tensor input)
    {
        using var scope = NewDisposeScope();
        var sum = nn.functional.softmax(net.call(input).to(ScalarType.Float32), 1);
        foreach (var view in _views)
        {
            var y = net.call(view(input));
            sum.add_(nn.functional.softmax(y.to(ScalarType.Float32), 1));
        }
        using var passes = ((double)Passes).ToScalar();
        using var floor = 1e-12.ToScalar();
        return sum.div_(passes).clamp_min_(floor).log_().MoveToOuterDisposeScope();
    }
}
