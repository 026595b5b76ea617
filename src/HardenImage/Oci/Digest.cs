using System.Security.Cryptography;
using HardenImage.Common;

namespace HardenImage.Oci;

/// <summary>A content digest, "sha256:&lt;64 hex&gt;". Only sha256 is produced; others are rejected on read.</summary>
public readonly record struct Digest(string Hex)
{
    public const string Prefix = "sha256:";

    public static Digest Of(ReadOnlySpan<byte> bytes) => new(Convert.ToHexStringLower(SHA256.HashData(bytes)));

    public static Digest Parse(string text)
    {
        if (!TryParse(text, out var d)) throw new FormatException($"'{text}' is not a sha256 digest (sha256:<64 lower-case hex>)");
        return d;
    }

    public static bool TryParse(string? text, out Digest digest)
    {
        digest = default;
        if (text is null || !text.StartsWith(Prefix, StringComparison.Ordinal)) return false;
        var hex = text[Prefix.Length..];
        if (!Sha256Hex.IsValid(hex)) return false;
        digest = new Digest(hex);
        return true;
    }

    public override string ToString() => Prefix + Hex;
}
