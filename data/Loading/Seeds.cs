namespace ModelZoo.Data;

/// <summary>
/// Combines seeds into one, the same in every process. (<see cref="HashCode.Combine{T1, T2}"/> is randomised per process,
/// so orders seeded with it differed between a run and its resumed continuation.)
/// </summary>
public static class Seeds
{
    /// <summary>A 32-bit seed mixed from <paramref name="values"/> (SplitMix64 steps); stable across processes and platforms.</summary>
    public static int Combine(params ReadOnlySpan<int> values)
    {
        ulong h = 0x9E3779B97F4A7C15UL;
        foreach (int v in values)
        {
            h ^= (uint)v;
            h += 0x9E3779B97F4A7C15UL;
            h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9UL;
            h = (h ^ (h >> 27)) * 0x94D049BB133111EBUL;
            h ^= h >> 31;
        }
        return (int)(h ^ (h >> 32));
    }
}
