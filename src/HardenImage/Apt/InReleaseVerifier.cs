using System.Text;
using HardenImage.Common;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;

namespace HardenImage.Apt;

/// <summary>What a verified InRelease yields: the signed Release text and who signed it.</summary>
/// <param name="ReleaseText">The signed text only (dash-escaping undone, trailing blanks stripped, LF line ends,
/// final LF). Nothing outside the signed part ever reaches the Release parser.</param>
/// <param name="GoodSigners">Key ids (16 hex digits) whose signature verified.</param>
/// <param name="IgnoredSignatures">Signatures that did not count and why (unknown key, expired key, weak digest).</param>
public sealed record VerifiedInRelease(string ReleaseText, IReadOnlyList<string> GoodSigners, IReadOnlyList<string> IgnoredSignatures);

/// <summary>
/// Where signatures that verified are remembered across runs: "key fingerprint, signature packet digest, signed-bytes
/// digest" → verified, authenticated so that whoever writes the cache cannot claim a signature holds.
/// </summary>
public interface ISignatureRecords
{
    bool Verified(string id);
    void Record(string id);
}

/// <summary>
/// Verifies a clear-signed InRelease (RFC 4880 §7) against a keyring, with apt's rule: the file is trusted when at
/// least one signature verifies with a key of the keyring, and a BAD signature by a key we know is an error even
/// when another signature is good (apt: "At least one invalid signature was encountered"); a good signature must not
/// launder a forged one. Signatures by keys not in the keyring are ignored when a good one exists (Debian signs
/// with several keys; a keyring may hold only one of them); so are signatures by expired or revoked keys and those
/// over weak digests (MD5, SHA-1, RIPEMD-160), which apt calls "worthless".
/// Answers Spoofing (metadata from someone else than the archive) and Tampering (metadata changed in transit or on a
/// mirror): every hash of every index and package flows from this signature.
/// </summary>
public sealed class InReleaseVerifier
{
    private const string BeginSigned = "-----BEGIN PGP SIGNED MESSAGE-----";
    private const string BeginSignature = "-----BEGIN PGP SIGNATURE-----";
    private const string EndSignature = "-----END PGP SIGNATURE-----";

    private readonly TimeProvider _clock;
    private readonly ISignatureRecords? _records;

    /// <param name="records">Authenticated records of signatures that verified before (the parsed-index cache), so a
    /// relock of an unchanged InRelease skips the RSA arithmetic; without it every signature is computed.</param>
    public InReleaseVerifier(TimeProvider? clock = null, ISignatureRecords? records = null)
    {
        _clock = clock ?? TimeProvider.System;
        _records = records;
    }

    /// <summary>Verifies <paramref name="inRelease"/>; <paramref name="source"/> names the repository in errors.</summary>
    /// <exception cref="HardenException">not clear-signed, no signature, only unknown/worthless signers, or a BAD signature.</exception>
    public VerifiedInRelease Verify(ReadOnlySpan<byte> inRelease, OpenPgpKeyring keyring, string source)
    {
        var (signedLines, armour) = SplitClearSigned(inRelease, source);

        // RFC 4880 §7.1: trailing spaces/tabs are not signed; lines end in CRLF; the last line break belongs to the armour.
        var canonical = string.Join("\r\n", signedLines);
        var signedBytes = Encoding.Latin1.GetBytes(canonical);

        var signatures = ReadSignatures(armour, source);
        if (signatures.Count == 0)
            throw new HardenException($"InRelease of {source} carries no OpenPGP signature. The repository is not signed or the file was truncated: refusing to trust it.");

        var good = new List<string>();
        var ignored = new List<string>();
        var bad = new List<string>();
        var unknown = new List<string>();
        var now = _clock.GetUtcNow();
        foreach (var sig in signatures)
        {
            var keyId = OpenPgpKeyring.FormatKeyId(sig.KeyId);
            if (!keyring.KeysById.TryGetValue(sig.KeyId, out var key))
            {
                unknown.Add(keyId);
                ignored.Add($"{keyId}: key not in keyring");
                continue;
            }
            if (sig.SignatureType != PgpSignature.CanonicalTextDocument)
            {
                bad.Add($"{keyId} (signature type 0x{sig.SignatureType:x2} is not a text signature)");
                continue;
            }
            if (IsWeakDigest(sig.HashAlgorithm))
            {
                ignored.Add($"{keyId}: weak digest {sig.HashAlgorithm}");
                continue;
            }
            bool ok = false; // assigned here, not only in the try: a mutation tool can then mutate this method (CS0165 otherwise)
            try
            {
                ok = SignatureHolds(sig, key, signedBytes);
            }
            catch (Exception e) when (e is PgpException or ArgumentException or InvalidOperationException or NotSupportedException)
            {
                ignored.Add($"{keyId}: cannot verify ({e.Message})");
                continue;
            }
            if (!ok)
            {
                bad.Add(keyId);
                continue;
            }
            var primary = keyring.PrimaryOf(sig.KeyId);
            if (key.HasRevocation() || primary.HasRevocation())
            {
                ignored.Add($"{keyId}: key revoked");
                continue;
            }
            if (IsExpired(key, now) || IsExpired(primary, now))
            {
                ignored.Add($"{keyId}: key expired");
                continue;
            }
            good.Add(keyId);
        }

        if (bad.Count > 0)
            throw new HardenException(
                $"BAD signature on InRelease of {source} by key {string.Join(", ", bad)} from keyring {keyring.Description}: " +
                "the file was altered or corrupted after signing. Not trusting it; retry, or use another mirror.");
        if (good.Count == 0)
        {
            if (unknown.Count == signatures.Count)
                throw new HardenException(
                    $"InRelease of {source} is signed by key {string.Join(", ", unknown)}, which is not in keyring {keyring.Description}. " +
                    "Add the repository's signing key to the keyring (after checking its fingerprint out of band) or fix the source's keyring path.");
            throw new HardenException(
                $"InRelease of {source} has no valid signature from keyring {keyring.Description}: {string.Join("; ", ignored)}. " +
                "Refresh the keyring (e.g. a newer debian-archive-keyring) or the repository.");
        }
        return new VerifiedInRelease(string.Join("\n", signedLines) + "\n", good, ignored);
    }

    // Signatures that verified, per process (and across runs through _records): a pure function of the key, the
    // signature packet and the signed bytes. A lock verifies each InRelease twice (resolve, then prove), and BouncyCastle re-validates an RSA
    // key (a Miller-Rabin test on its 4096-bit modulus, ~0.1 s) on every InitVerify. Revocation and expiry are still
    // checked on every call, against the clock.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> Checked = new(StringComparer.Ordinal);

    private bool SignatureHolds(PgpSignature sig, PgpPublicKey key, byte[] signedBytes)
    {
        var id = Convert.ToHexString(key.GetFingerprint()) + " " + Sha256Hex.Of(sig.GetEncoded()) + " " + Sha256Hex.Of(signedBytes);
        // Only good outcomes are remembered (a bad signature is an error, computed again each time it is seen), and a
        // record that does not authenticate is not one.
        if (Checked.ContainsKey(id)) return true;
        if (_records?.Verified(id) == true) return Checked[id] = true;
        sig.InitVerify(key);
        sig.Update(signedBytes);
        if (!sig.Verify()) return false;
        Checked[id] = true;
        _records?.Record(id);
        return true;
    }

    private static bool IsWeakDigest(HashAlgorithmTag tag) =>
        tag is HashAlgorithmTag.MD5 or HashAlgorithmTag.Sha1 or HashAlgorithmTag.RipeMD160 or HashAlgorithmTag.MD2
            or HashAlgorithmTag.Tiger192 or HashAlgorithmTag.Haval5pass160;

    private static bool IsExpired(PgpPublicKey key, DateTimeOffset now)
    {
        var valid = key.GetValidSeconds();
        if (valid <= 0) return false; // 0 = never expires
        return new DateTimeOffset(DateTime.SpecifyKind(key.CreationTime, DateTimeKind.Utc)).AddSeconds(valid) < now;
    }

    /// <summary>
    /// Splits the clear-signed message into its (un-escaped, right-trimmed) text lines and the signature armour.
    /// Strict like apt: nothing but blank lines may surround the message, so unsigned text cannot ride along.
    /// </summary>
    internal static (List<string> Lines, string Armour) SplitClearSigned(ReadOnlySpan<byte> bytes, string source)
    {
        // Latin-1 maps each byte to one char, so the signed bytes can be rebuilt exactly.
        var text = Encoding.Latin1.GetString(bytes);
        var lines = text.Split('\n');
        int i = 0;
        while (i < lines.Length && TrimEnd(lines[i]).Length == 0) i++;
        if (i >= lines.Length || TrimEnd(lines[i]) != BeginSigned)
            throw new HardenException($"InRelease of {source} is not an OpenPGP clear-signed message (no '{BeginSigned}' line). The server sent something else (an error page?) or the repository is unsigned.");
        i++;
        for (; i < lines.Length && TrimEnd(lines[i]).Length > 0; i++)
        {
            if (!TrimEnd(lines[i]).StartsWith("Hash:", StringComparison.Ordinal))
                throw Malformed(source, $"unexpected armour header '{Short(lines[i])}'");
        }
        if (i >= lines.Length) throw Malformed(source, "no text after the header");
        i++; // the blank line ending the header
        var signed = new List<string>(lines.Length);
        for (; ; i++)
        {
            if (i >= lines.Length) throw Malformed(source, $"no '{BeginSignature}' line");
            var line = TrimEnd(lines[i]);
            if (line == BeginSignature) break;
            if (line.StartsWith('-'))
            {
                if (!line.StartsWith("- ", StringComparison.Ordinal))
                    throw Malformed(source, $"line {i + 1} starts with '-' but is not dash-escaped");
                line = line[2..];
            }
            signed.Add(line);
        }
        var armour = new StringBuilder();
        for (; i < lines.Length; i++)
        {
            var line = TrimEnd(lines[i]);
            armour.Append(line).Append('\n');
            if (line == EndSignature) break;
        }
        if (i >= lines.Length) throw Malformed(source, $"no '{EndSignature}' line");
        for (i++; i < lines.Length; i++)
            if (TrimEnd(lines[i]).Length > 0) throw Malformed(source, "text after the signature");
        return (signed, armour.ToString());
    }

    private static List<PgpSignature> ReadSignatures(string armour, string source)
    {
        var result = new List<PgpSignature>();
        try
        {
            using var input = new ArmoredInputStream(new MemoryStream(Encoding.ASCII.GetBytes(armour)));
            var factory = new PgpObjectFactory(input);
            PgpObject? obj;
            while ((obj = factory.NextPgpObject()) != null)
            {
                if (obj is PgpSignatureList list)
                    for (int k = 0; k < list.Count; k++) result.Add(list[k]);
            }
        }
        catch (Exception e) when (e is IOException or PgpException)
        {
            throw Malformed(source, "the signature block does not decode: " + e.Message);
        }
        return result;
    }

    private static string TrimEnd(string line) => line.TrimEnd(' ', '\t', '\r');

    private static string Short(string s) => s.Length > 40 ? s[..40] + "…" : s;

    private static HardenException Malformed(string source, string what) =>
        new($"InRelease of {source} is a malformed clear-signed message: {what}. Not trusting it; retry, or check the repository URL.");
}
