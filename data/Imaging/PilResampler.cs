using System.Numerics;

namespace ModelZoo.Data;

/// <summary>
/// Separable convolution resampling with the same arithmetic as Pillow's <c>ImagingResample</c> for 8-bit images
/// (what torchvision's PIL path runs): the filter support is widened by the downscale factor (antialiasing), weights
/// are normalised per output pixel and turned into 22-bit fixed point, rows are filtered horizontally first, then
/// vertically, each pass rounding to uint8. Written from the algorithm's description; results equal Pillow's.
/// </summary>
internal static class PilResampler
{
    private const int PrecisionBits = 32 - 8 - 2;

    private static double BilinearFilter(double x)
    {
        x = Math.Abs(x);
        return x < 1 ? 1 - x : 0;
    }

    private static double BicubicFilter(double x)
    {
        const double a = -0.5;
        x = Math.Abs(x);
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    private readonly record struct Coeffs(int KSize, int[] Bounds, int[] K);

    private static Coeffs Precompute(int inSize, double in0, double in1, int outSize, Func<double, double> filter, double filterSupport)
    {
        var scale = (in1 - in0) / outSize;
        var filterScale = Math.Max(scale, 1.0);
        var support = filterSupport * filterScale;
        var ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var kk = new int[outSize * ksize];
        var k = new double[ksize];
        var ss = 1.0 / filterScale;
        for (var xx = 0; xx < outSize; xx++)
        {
            var center = in0 + (xx + 0.5) * scale;
            var xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            var xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            var ww = 0.0;
            for (var x = 0; x < xmax; x++)
            {
                var w = filter((x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (var x = 0; x < xmax; x++)
            {
                var w = ww != 0 ? k[x] / ww : k[x];
                kk[xx * ksize + x] = w < 0 ? (int)(-0.5 + w * (1 << PrecisionBits)) : (int)(0.5 + w * (1 << PrecisionBits));
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = Math.Max(xmax, 0);
        }
        return new Coeffs(ksize, bounds, kk);
    }

    private static byte Clip8(int v)
    {
        v >>= PrecisionBits;
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }

    /// <summary>
    /// Resizes the region (<paramref name="rx"/>, <paramref name="ry"/>, <paramref name="rw"/>, <paramref name="rh"/>) of
    /// <paramref name="src"/> — treated as if it had been cropped out first, so edge pixels clamp at the region — to
    /// <paramref name="outW"/>×<paramref name="outH"/>, sampling the box (<paramref name="box"/>) in region coordinates.
    /// </summary>
    public static RgbImage Resize(RgbImage src, int rx, int ry, int rw, int rh, (double X0, double Y0, double X1, double Y1) box,
        int outW, int outH, Interpolation interpolation)
    {
        if (rx < 0 || ry < 0 || rw <= 0 || rh <= 0 || rx + rw > src.Width || ry + rh > src.Height)
            throw new ArgumentOutOfRangeException(nameof(rx), $"Region {rx},{ry} {rw}x{rh} is outside the {src.Width}x{src.Height} image.");
        if (outW <= 0 || outH <= 0) throw new ArgumentOutOfRangeException(nameof(outW), $"Output size {outW}x{outH} must be positive.");
        if (interpolation == Interpolation.Nearest) return Nearest(src, rx, ry, rw, rh, box, outW, outH);
        Func<double, double> filter = interpolation == Interpolation.Bicubic ? BicubicFilter : BilinearFilter;
        var support = interpolation == Interpolation.Bicubic ? 2.0 : 1.0;
        var needH = outW != rw || box.X0 != 0 || box.X1 != outW;
        var needV = outH != rh || box.Y0 != 0 || box.Y1 != outH;

        var cv = Precompute(rh, box.Y0, box.Y1, outH, filter, support);
        var ch = Precompute(rw, box.X0, box.X1, outW, filter, support);
        var yFirst = cv.Bounds[0];
        var yLast = cv.Bounds[outH * 2 - 2] + cv.Bounds[outH * 2 - 1];
        var s = src.Pixels;
        var sw = src.Width;

        if (!needH && !needV)
        {
            return src.Crop(rx, ry, rw, rh);
        }

        // Horizontal pass over the rows the vertical pass needs.
        byte[] tmp;
        int tmpW, tmpX, tmpY, tmpRowOffset;
        if (needH)
        {
            var rows = needV ? yLast - yFirst : outH;
            var rowStart = needV ? yFirst : 0;
            tmp = new byte[outW * rows * 3];
            HorizontalPass(s, sw, rx, ry + rowStart, rows, ch, outW, tmp);
            if (!needV) return new RgbImage(outW, outH, tmp);
            tmpW = outW; tmpX = 0; tmpY = 0; tmpRowOffset = yFirst;
        }
        else
        {
            tmp = s; tmpW = sw; tmpX = rx; tmpY = ry; tmpRowOffset = 0;
        }

        // Vertical pass.
        var outPix = new byte[outW * outH * 3];
        var kv = cv.KSize;
        var stride = tmpW * 3;
        var rowLen = outW * 3;
        var acc = new int[rowLen];
        for (var yy = 0; yy < outH; yy++)
        {
            var ymin = cv.Bounds[yy * 2] - tmpRowOffset;
            var ymax = cv.Bounds[yy * 2 + 1];
            var kOff = yy * kv;
            Array.Fill(acc, 1 << (PrecisionBits - 1));
            for (var y = 0; y < ymax; y++)
            {
                var w = cv.K[kOff + y];
                var p = (tmpY + ymin + y) * stride + tmpX * 3;
                AccumulateRow(tmp.AsSpan(p, rowLen), acc, w);
            }
            var d = yy * rowLen;
            for (var i = 0; i < rowLen; i++) outPix[d + i] = Clip8(acc[i]);
        }
        return new RgbImage(outW, outH, outPix);
    }

    private static unsafe void HorizontalPass(byte[] src, int srcW, int rx, int firstRow, int rows, Coeffs ch, int outW, byte[] dst)
    {
        var ks = ch.KSize;
        fixed (byte* sp0 = src)
        fixed (byte* dp0 = dst)
        fixed (int* kk = ch.K)
        fixed (int* bounds = ch.Bounds)
        {
            for (var yy = 0; yy < rows; yy++)
            {
                var srcRow = sp0 + ((long)(firstRow + yy) * srcW + rx) * 3;
                var d = dp0 + (long)yy * outW * 3;
                for (var xx = 0; xx < outW; xx++, d += 3)
                {
                    var xmin = bounds[xx * 2];
                    var xmax = bounds[xx * 2 + 1];
                    var k = kk + xx * ks;
                    int s0 = 1 << (PrecisionBits - 1), s1 = s0, s2 = s0;
                    var p = srcRow + xmin * 3;
                    for (var x = 0; x < xmax; x++, p += 3)
                    {
                        var w = k[x];
                        s0 += p[0] * w;
                        s1 += p[1] * w;
                        s2 += p[2] * w;
                    }
                    d[0] = Clip8(s0);
                    d[1] = Clip8(s1);
                    d[2] = Clip8(s2);
                }
            }
        }
    }

    /// <summary>acc[i] += row[i] × w, vectorized (bytes widened to 32-bit lanes); exact integer arithmetic.</summary>
    private static void AccumulateRow(ReadOnlySpan<byte> row, int[] acc, int w)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var wv = new Vector<int>(w);
            var n = Vector<int>.Count;
            for (; i <= row.Length - Vector<byte>.Count; i += Vector<byte>.Count)
            {
                var b = new Vector<byte>(row[i..]);
                Vector.Widen(b, out Vector<ushort> lo, out Vector<ushort> hi);
                Vector.Widen(lo, out Vector<uint> a0, out Vector<uint> a1);
                Vector.Widen(hi, out Vector<uint> a2, out Vector<uint> a3);
                var s = acc.AsSpan(i);
                (new Vector<int>(s) + Vector.AsVectorInt32(a0) * wv).CopyTo(s);
                s = s[n..];
                (new Vector<int>(s) + Vector.AsVectorInt32(a1) * wv).CopyTo(s);
                s = s[n..];
                (new Vector<int>(s) + Vector.AsVectorInt32(a2) * wv).CopyTo(s);
                s = s[n..];
                (new Vector<int>(s) + Vector.AsVectorInt32(a3) * wv).CopyTo(s);
            }
        }
        for (; i < row.Length; i++) acc[i] += row[i] * w;
    }

    private static RgbImage Nearest(RgbImage src, int rx, int ry, int rw, int rh, (double X0, double Y0, double X1, double Y1) box, int outW, int outH)
    {
        var sx = (box.X1 - box.X0) / outW;
        var sy = (box.Y1 - box.Y0) / outH;
        var dst = new byte[outW * outH * 3];
        for (var y = 0; y < outH; y++)
        {
            var yi = Math.Clamp((int)Math.Floor(box.Y0 + (y + 0.5) * sy), 0, rh - 1) + ry;
            for (var x = 0; x < outW; x++)
            {
                var xi = Math.Clamp((int)Math.Floor(box.X0 + (x + 0.5) * sx), 0, rw - 1) + rx;
                var sp = (yi * src.Width + xi) * 3;
                var dp = (y * outW + x) * 3;
                dst[dp] = src.Pixels[sp];
                dst[dp + 1] = src.Pixels[sp + 1];
                dst[dp + 2] = src.Pixels[sp + 2];
            }
        }
        return new RgbImage(outW, outH, dst);
    }
}
