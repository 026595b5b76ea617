using HardenImage.Common;

namespace HardenImage.Tests.Infrastructure;

/// <summary>A content-store pack of two files, for tests that tamper with packs.</summary>
internal static class TestPacks
{
    /// <summary>Stores <paramref name="first"/> then <paramref name="second"/> as one pack; returns their SHA-256s and the pack's.</summary>
    public static (string First, string Second, string Pack) TwoFiles(ContentStore store, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        using var writer = store.NewPack();
        var a = writer.Add(first).Sha256;
        var b = writer.Add(second).Sha256;
        return (a, b, writer.Commit().Sha256);
    }
}
