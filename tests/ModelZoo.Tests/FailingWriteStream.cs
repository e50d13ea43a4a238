namespace ModelZoo.Tests;

/// <summary>
/// A write-only stream that passes writes through until <paramref name="failAfter"/> bytes, then throws what
/// <paramref name="error"/> makes: a crash in the middle of a write, or a full disk (ENOSPC).
/// </summary>
internal sealed class FailingWriteStream(Stream inner, long failAfter, Func<IOException> error) : Stream
{
    private long _written;
    public override bool CanRead => false;
    public override bool CanSeek => inner.CanSeek;
    public override bool CanWrite => true;
    public override long Length => inner.Length;
    public override long Position { get => inner.Position; set => inner.Position = value; }
    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
    public override void SetLength(long value) => inner.SetLength(value);
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_written + buffer.Length > failAfter) throw error();
        _written += buffer.Length;
        inner.Write(buffer);
    }
    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
