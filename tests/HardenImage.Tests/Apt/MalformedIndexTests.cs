using System.Text;
using HardenImage.Apt;
using HardenImage.Common;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Apt;

/// <summary>
/// Issue 17: a Packages index with a line that has no colon or a Size beyond Int64, and a keyring that is
/// /dev/zero, end in one HardenException naming the index or file — not a FormatException, an OverflowException
/// or an endless read.
/// </summary>
public sealed class MalformedIndexTests
{
    private const string Stanza = "Package: a\nVersion: 1\nArchitecture: amd64\nFilename: pool/a.deb\nSHA256: 00\nSize: 1\n";

    private static HardenException ReadIndex(string text) => Assert.Throws<HardenException>(() =>
        PackagesIndex.Read(new MemoryStream(Encoding.UTF8.GetBytes(text)), "debian/trixie", "http://127.0.0.1/debian").ToList());

    [Fact]
    public void PackagesLine_WithoutColon_IsRefused_WithItsLine()
    {
        var e = ReadIndex(Stanza + "\n" + "Package: b\nthis line has no colon\n");
        Assert.Equal("Packages of source 'debian/trixie': line 9: expected 'Field: value', got 'this line has no colon'. The index is malformed.", e.Message);
    }

    [Theory]
    [InlineData("99999999999999999999")]
    [InlineData("-1")]
    [InlineData("12 MB")]
    public void PackagesSize_NotAnInt64ByteCount_IsRefused(string size)
    {
        var e = ReadIndex(Stanza.Replace("Size: 1", "Size: " + size));
        Assert.Contains($"Size '{size}' is not a byte count", e.Message);
        Assert.StartsWith("Packages of source 'debian/trixie': stanza at line 1 (a)", e.Message);
    }

    [Fact]
    public void Keyring_ThatIsDevZero_StopsAtTheBound()
    {
        Assert.True(File.Exists("/dev/zero"), "this test needs /dev/zero (Linux)");
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<HardenException>(() => OpenPgpKeyring.Load("/dev/zero"));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16L << 20);
        Assert.Equal("/dev/zero: the keyring is larger than 1 MiB, the limit for it (docs/limits.md); refusing it as hostile or corrupt.", e.Message);
    }

    [Fact]
    public void Keyring_OfGarbage_IsRefused_AsNotAKeyring()
    {
        using var dir = new TempDir("hi-keyring");
        var file = dir.Combine("debian.gpg");
        File.WriteAllBytes(file, [0x99, 0xFF, 0xFF, 0xFF, 0xFF, 0x04, 1, 2, 3]);
        var e = Assert.Throws<HardenException>(() => OpenPgpKeyring.Load(file));
        Assert.Contains(file, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
