namespace ModelZoo.Data;

/// <summary>Pixel operations on RGB images, with Pillow's arithmetic where torchvision's PIL path uses Pillow.</summary>
internal static class Pixels
{
    public static RgbImage FlipHorizontal(RgbImage img)
    {
        var w = img.Width;
        var s = img.Pixels;
        var d = new byte[s.Length];
        for (var y = 0; y < img.Height; y++)
        {
            var row = y * w * 3;
            for (var x = 0; x < w; x++)
            {
                var a = row + x * 3;
                var b = row + (w - 1 - x) * 3;
                d[b] = s[a]; d[b + 1] = s[a + 1]; d[b + 2] = s[a + 2];
            }
        }
        return new RgbImage(w, img.Height, d);
    }

    public static RgbImage FlipVertical(RgbImage img)
    {
        var stride = img.Width * 3;
        var d = new byte[img.Pixels.Length];
        for (var y = 0; y < img.Height; y++)
            Buffer.BlockCopy(img.Pixels, y * stride, d, (img.Height - 1 - y) * stride, stride);
        return new RgbImage(img.Width, img.Height, d);
    }

    /// <summary>PIL's RGB→L: (19595 R + 38470 G + 7471 B + 0x8000) >> 16.</summary>
    public static byte Luma(byte r, byte g, byte b) => (byte)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);

    public static byte[] LumaPlane(RgbImage img)
    {
        var s = img.Pixels;
        var l = new byte[img.Width * img.Height];
        for (int i = 0, p = 0; i < l.Length; i++, p += 3) l[i] = Luma(s[p], s[p + 1], s[p + 2]);
        return l;
    }

    public static RgbImage ToGray(RgbImage img) => RgbImage.FromGray(img.Width, img.Height, LumaPlane(img));

    /// <summary>PIL's Image.blend(degenerate, image, factor) with the result truncated and clipped to 0..255.</summary>
    private static byte Blend(int degenerate, int pixel, float factor)
    {
        var t = degenerate + factor * (pixel - degenerate);
        return t <= 0 ? (byte)0 : t >= 255 ? (byte)255 : (byte)t;
    }

    public static RgbImage AdjustBrightness(RgbImage img, double factor)
    {
        var f = (float)factor;
        var s = img.Pixels;
        var d = new byte[s.Length];
        for (var i = 0; i < s.Length; i++) d[i] = Blend(0, s[i], f);
        return new RgbImage(img.Width, img.Height, d);
    }

    public static RgbImage AdjustContrast(RgbImage img, double factor)
    {
        var l = LumaPlane(img);
        long sum = 0;
        foreach (var v in l) sum += v;
        var mean = (int)((double)sum / l.Length + 0.5);
        var f = (float)factor;
        var s = img.Pixels;
        var d = new byte[s.Length];
        for (var i = 0; i < s.Length; i++) d[i] = Blend(mean, s[i], f);
        return new RgbImage(img.Width, img.Height, d);
    }

    public static RgbImage AdjustSaturation(RgbImage img, double factor)
    {
        var f = (float)factor;
        var s = img.Pixels;
        var d = new byte[s.Length];
        for (var p = 0; p < s.Length; p += 3)
        {
            int g = Luma(s[p], s[p + 1], s[p + 2]);
            d[p] = Blend(g, s[p], f); d[p + 1] = Blend(g, s[p + 1], f); d[p + 2] = Blend(g, s[p + 2], f);
        }
        return new RgbImage(img.Width, img.Height, d);
    }

    /// <summary>Shifts hue by <paramref name="shift"/> of a full turn (−0.5..0.5) in HSV space.</summary>
    public static RgbImage AdjustHue(RgbImage img, double shift)
    {
        var s = img.Pixels;
        var d = new byte[s.Length];
        for (var p = 0; p < s.Length; p += 3)
        {
            double r = s[p] / 255.0, g = s[p + 1] / 255.0, b = s[p + 2] / 255.0;
            double max = Math.Max(r, Math.Max(g, b)), min = Math.Min(r, Math.Min(g, b)), c = max - min;
            double h = 0;
            if (c > 0)
            {
                if (max == r) h = ((g - b) / c) % 6;
                else if (max == g) h = (b - r) / c + 2;
                else h = (r - g) / c + 4;
                h /= 6;
            }
            h = (h + shift) % 1.0;
            if (h < 0) h += 1;
            var sat = max == 0 ? 0 : c / max;
            var (rr, gg, bb) = HsvToRgb(h, sat, max);
            d[p] = (byte)Math.Round(rr * 255); d[p + 1] = (byte)Math.Round(gg * 255); d[p + 2] = (byte)Math.Round(bb * 255);
        }
        return new RgbImage(img.Width, img.Height, d);
    }

    private static (double, double, double) HsvToRgb(double h, double s, double v)
    {
        var i = (int)Math.Floor(h * 6) % 6;
        var f = h * 6 - Math.Floor(h * 6);
        double p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
        return i switch { 0 => (v, t, p), 1 => (q, v, p), 2 => (p, v, t), 3 => (p, q, v), 4 => (t, p, v), _ => (v, p, q) };
    }

    /// <summary>PIL's ImageEnhance.Sharpness: blend with the SMOOTH-filtered image (3×3 kernel, centre 5, sum 13; border kept).</summary>
    public static RgbImage AdjustSharpness(RgbImage img, double factor)
    {
        int w = img.Width, h = img.Height;
        var s = img.Pixels;
        var smooth = (byte[])s.Clone();
        for (var y = 1; y < h - 1; y++)
            for (var x = 1; x < w - 1; x++)
                for (var c = 0; c < 3; c++)
                {
                    var sum = 0;
                    for (var dy = -1; dy <= 1; dy++)
                        for (var dx = -1; dx <= 1; dx++)
                            sum += s[((y + dy) * w + x + dx) * 3 + c] * (dx == 0 && dy == 0 ? 5 : 1);
                    smooth[(y * w + x) * 3 + c] = (byte)Math.Clamp((sum + 6) / 13, 0, 255);
                }
        var f = (float)factor;
        var d = new byte[s.Length];
        for (var i = 0; i < s.Length; i++) d[i] = Blend(smooth[i], s[i], f);
        return new RgbImage(w, h, d);
    }

    private static RgbImage Lut(RgbImage img, Func<int, int, byte> lut)
    {
        var table = new byte[3, 256];
        for (var c = 0; c < 3; c++) for (var v = 0; v < 256; v++) table[c, v] = lut(c, v);
        var s = img.Pixels;
        var d = new byte[s.Length];
        for (var i = 0; i < s.Length; i++) d[i] = table[i % 3, s[i]];
        return new RgbImage(img.Width, img.Height, d);
    }

    public static RgbImage Posterize(RgbImage img, int bits)
    {
        var mask = (byte)~((1 << (8 - Math.Clamp(bits, 0, 8))) - 1);
        return Lut(img, (_, v) => (byte)(v & mask));
    }

    public static RgbImage Solarize(RgbImage img, double threshold) => Lut(img, (_, v) => v < threshold ? (byte)v : (byte)(255 - v));

    private static int[,] Histogram(RgbImage img)
    {
        var h = new int[3, 256];
        var s = img.Pixels;
        for (var i = 0; i < s.Length; i++) h[i % 3, s[i]]++;
        return h;
    }

    /// <summary>PIL's ImageOps.autocontrast with no cutoff: stretch each channel's [min, max] to [0, 255].</summary>
    public static RgbImage AutoContrast(RgbImage img)
    {
        var h = Histogram(img);
        var lo = new int[3];
        var scale = new double[3];
        var ok = new bool[3];
        for (var c = 0; c < 3; c++)
        {
            int a = 0, b = 255;
            while (a < 256 && h[c, a] == 0) a++;
            while (b >= 0 && h[c, b] == 0) b--;
            if (b > a) { ok[c] = true; lo[c] = a; scale[c] = 255.0 / (b - a); }
        }
        return Lut(img, (c, v) => ok[c] ? (byte)Math.Clamp((int)(v * scale[c] - lo[c] * scale[c]), 0, 255) : (byte)v);
    }

    /// <summary>PIL's ImageOps.equalize, per channel.</summary>
    public static RgbImage Equalize(RgbImage img)
    {
        var h = Histogram(img);
        var lut = new byte[3, 256];
        for (var c = 0; c < 3; c++)
        {
            var nonzero = Enumerable.Range(0, 256).Where(v => h[c, v] > 0).ToArray();
            var step = nonzero.Length <= 1 ? 0 : (nonzero.Sum(v => h[c, v]) - h[c, nonzero[^1]]) / 255;
            var n = step / 2;
            for (var v = 0; v < 256; v++)
            {
                lut[c, v] = step == 0 ? (byte)v : (byte)Math.Min(255, n / step);
                n += h[c, v];
            }
        }
        return Lut(img, (c, v) => lut[c, v]);
    }

    /// <summary>PIL's AFFINE transform with nearest sampling: output (x, y) reads input
    /// (a·(x+½) + b·(y+½) + c, d·(x+½) + e·(y+½) + f); pixels from outside are <paramref name="fill"/>.</summary>
    public static RgbImage AffineNearest(RgbImage img, double[] m, byte fill = 0)
    {
        int w = img.Width, h = img.Height;
        var s = img.Pixels;
        var d = new byte[s.Length];
        if (fill != 0) Array.Fill(d, fill);
        for (var y = 0; y < h; y++)
        {
            var xx = m[0] * 0.5 + m[1] * (y + 0.5) + m[2];
            var yy = m[3] * 0.5 + m[4] * (y + 0.5) + m[5];
            for (var x = 0; x < w; x++, xx += m[0], yy += m[3])
            {
                var xi = xx < 0 ? -1 : (int)xx;
                var yi = yy < 0 ? -1 : (int)yy;
                if (xi < 0 || yi < 0 || xi >= w || yi >= h) continue;
                var sp = (yi * w + xi) * 3;
                var dp = (y * w + x) * 3;
                d[dp] = s[sp]; d[dp + 1] = s[sp + 1]; d[dp + 2] = s[sp + 2];
            }
        }
        return new RgbImage(w, h, d);
    }

    /// <summary>torchvision's inverse affine matrix (angle and shears in degrees) for PIL's transform.</summary>
    public static double[] InverseAffine(double cx, double cy, double angle, double tx, double ty, double scale, double shearX, double shearY)
    {
        var rot = angle * Math.PI / 180;
        var sx = shearX * Math.PI / 180;
        var sy = shearY * Math.PI / 180;
        var a = Math.Cos(rot - sy) / Math.Cos(sy);
        var b = -Math.Cos(rot - sy) * Math.Tan(sx) / Math.Cos(sy) - Math.Sin(rot);
        var c = Math.Sin(rot - sy) / Math.Cos(sy);
        var d = -Math.Sin(rot - sy) * Math.Tan(sx) / Math.Cos(sy) + Math.Cos(rot);
        double[] m = [d / scale, -b / scale, 0, -c / scale, a / scale, 0];
        m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
        m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
        m[2] += cx;
        m[5] += cy;
        return m;
    }

    /// <summary>PIL's Image.rotate (counter-clockwise degrees, about the center, same size).</summary>
    public static RgbImage Rotate(RgbImage img, double degrees, byte fill = 0)
    {
        var angle = -(degrees % 360) * Math.PI / 180;
        double cx = img.Width / 2.0, cy = img.Height / 2.0;
        double[] m = [Math.Cos(angle), Math.Sin(angle), 0, -Math.Sin(angle), Math.Cos(angle), 0];
        var (tx, ty) = (m[0] * -cx + m[1] * -cy + m[2], m[3] * -cx + m[4] * -cy + m[5]);
        m[2] = tx + cx;
        m[5] = ty + cy;
        return AffineNearest(img, m, fill);
    }
}
