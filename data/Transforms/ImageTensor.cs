namespace ModelZoo.Data;

/// <summary>A transformed image ready for batching: C×H×W floats plus its class label.</summary>
/// <param name="Data">Values, channel-major (C×H×W).</param>
/// <param name="Channels">Number of channels.</param>
/// <param name="Height">Height.</param>
/// <param name="Width">Width.</param>
/// <param name="Label">Class index.</param>
public sealed record ImageTensor(float[] Data, int Channels, int Height, int Width, int Label);

/// <summary>An image that has not been decoded yet, with its label.</summary>
/// <param name="Source">Where the encoded bytes are.</param>
/// <param name="Label">Class index.</param>
public sealed record ImageSample(ImageSource Source, int Label)
{
    /// <summary>Decodes the image at full resolution.</summary>
    public RgbImage Decode() => ImageDecoder.Decode(Source);
}

/// <summary>A text item with its label.</summary>
/// <param name="Text">The text.</param>
/// <param name="Label">Class index.</param>
public sealed record TextSample(string Text, int Label);

/// <summary>A tokenized text item with its label.</summary>
/// <param name="Tokens">Token ids.</param>
/// <param name="Label">Class index.</param>
public sealed record TokenizedSample(int[] Tokens, int Label);
