using static TorchSharp.torch;

namespace ModelZoo;

public abstract partial class ZooModel
{
    private List<Action>? _transaction;

    /// <summary>
    /// Applies several surgery edits as one: the individual edits are not dry-run (their intermediate states may be
    /// inconsistent), the result is checked once with an input of <paramref name="dryRunShape"/> (default
    /// <see cref="DryRunInputShape"/>), and if that fails every edit is undone in reverse order.
    /// </summary>
    /// <example>Detaching a frozen prefix whose outputs are cached, so the model runs from cached features:
    /// <code>model.EditTogether(m => { m.Replace("conv1", nn.Identity()); m.Replace("layer1", nn.Identity()); }, [1, 64, 14, 14]);</code></example>
    /// <exception cref="SurgeryException">The edited model does not run on the dry-run input; nothing was changed.</exception>
    public ZooModel EditTogether(Action<ZooModel> edits, long[]? dryRunShape = null)
    {
        if (_transaction is not null) throw new InvalidOperationException("EditTogether calls cannot be nested.");
        var undo = new List<Action>();
        _transaction = undo;
        try
        {
            edits(this);
        }
        catch
        {
            _transaction = null;
            Undo(undo);
            throw;
        }
        _transaction = null;
        try
        {
            DryRun(dryRunShape);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Undo(undo);
            throw new SurgeryException($"The {undo.Count} edits together break the model, so they were undone. " +
                $"The dry run with input [{string.Join(", ", dryRunShape ?? DryRunInputShape)}] failed: {FirstLine(e.Message)}", e);
        }
        return this;
    }

    private static void Undo(List<Action> undo)
    {
        for (int i = undo.Count - 1; i >= 0; i--) undo[i]();
    }

    /// <summary>Runs the model once on random input of <paramref name="shape"/> in eval mode without gradients.</summary>
    public void DryRun(long[]? shape)
    {
        if (shape is null) DryRun();
        else InEvalWithoutGrad(device => forward(rand(shape, device: device)).shape);
    }
}
