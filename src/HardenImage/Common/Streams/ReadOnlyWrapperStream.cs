namespace HardenImage.Common.Streams;

/// <summary>
/// A read-only stream over <paramref name="inner"/> that it owns (disposes): the base of the wrappers that pass
/// reads through and check or count them on the way (decompression limit, error translation, zip entry limit).
/// </summary>
public abstract class ReadOnlyWrapperStream(Stream inner) : ReadOnlyStream
{
    protected Stream Inner { get; } = inner;

    protected override void Dispose(bool disposing)
    {
        if (disposing) Inner.Dispose();
        base.Dispose(disposing);
    }
}
