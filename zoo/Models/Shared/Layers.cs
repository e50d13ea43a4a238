using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models;

/// <summary>Building blocks and initialisation shared by model families.</summary>
public static class Layers
{
    /// <summary>3×3 convolution with padding 1 and no bias.</summary>
    public static Conv2d Conv3x3(int inPlanes, int outPlanes, int stride, int groups = 1, int dilation = 1) =>
        nn.Conv2d(inPlanes, outPlanes, 3, stride: stride, padding: dilation, dilation: dilation, groups: groups, bias: false);

    /// <summary>1×1 convolution without bias.</summary>
    public static Conv2d Conv1x1(int inPlanes, int outPlanes, int stride) =>
        nn.Conv2d(inPlanes, outPlanes, 1, stride: stride, bias: false);

    /// <summary>torchvision's residual shortcut: "0" = 1×1 conv with stride, "1" = BatchNorm.</summary>
    public static ZooSequential Downsample(int inPlanes, int outPlanes, int stride) =>
        new(Conv1x1(inPlanes, outPlanes, stride), nn.BatchNorm2d(outPlanes));

    /// <summary>torchvision's CNN initialisation: Kaiming-normal (fan-out, ReLU) convolutions, BatchNorm/GroupNorm weight 1 and bias 0.</summary>
    public static void InitConvNet(nn.Module model)
    {
        using var noGrad = no_grad();
        foreach (var (_, m) in model.named_modules())
        {
            switch (m)
            {
                case Conv2d conv:
                    nn.init.kaiming_normal_(conv.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
                    if (conv.bias is not null) nn.init.zeros_(conv.bias);
                    break;
                case BatchNorm2d bn:
                    if (bn.weight is not null) nn.init.ones_(bn.weight);
                    if (bn.bias is not null) nn.init.zeros_(bn.bias);
                    break;
                case GroupNorm gn:
                    if (gn.weight is not null) nn.init.ones_(gn.weight);
                    if (gn.bias is not null) nn.init.zeros_(gn.bias);
                    break;
            }
        }
    }

    /// <summary>Parameter groups from named prefixes, in the given order; parameters no prefix covers join the nearest earlier group.</summary>
    public static IReadOnlyList<ParameterGroup> GroupsByPrefix(nn.Module model, IEnumerable<(string Name, string[] Prefixes)> groups)
    {
        var spec = groups.ToList();
        var buckets = spec.Select(_ => new List<(string, Parameter)>()).ToList();
        int last = 0;
        foreach (var (name, p) in model.named_parameters())
        {
            int g = spec.FindIndex(s => s.Prefixes.Any(prefix => PathMatch.Covers(prefix, name)));
            if (g < 0) g = last;
            buckets[g].Add((name, p));
            last = g;
        }
        return spec.Select((s, i) => new ParameterGroup(s.Name, i, buckets[i])).Where(g => g.Parameters.Count > 0)
            .Select((g, i) => g with { Depth = i }).ToList();
    }
}
