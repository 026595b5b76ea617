using System.Text;
using HardenImage.Apt;
using HardenImage.Common;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.Security;

namespace HardenImage.Tests.Apt;

/// <summary>
/// Every way <see cref="InReleaseVerifier"/> refuses or discounts a signature, each built for real: OpenPGP keys,
/// revocations, expiries and clear-signed InRelease files crafted here with BouncyCastle, the clock injected (the
/// keys are dated 2025; "now" is whatever each test says, never the machine's clock). Each test asserts the specific
/// reason, so a refusal for another reason (or none) fails it.
/// </summary>
public sealed class InReleaseRejectionTests
{
    private static readonly DateTime Created = new(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    private const long Day = 86_400;

    // RSA-1024 keeps generation cheap (the size is irrelevant to the rules under test); generated once per run.
    private static readonly Lazy<PgpKeyPair> PrimaryPair = new(() => NewPair(1));
    private static readonly Lazy<PgpKeyPair> SubkeyPair = new(() => NewPair(2));
    private static readonly Lazy<PgpKeyPair> StrangerPair = new(() => NewPair(3));

    private static PgpKeyPair NewPair(int seed)
    {
        var gen = new RsaKeyPairGenerator();
        gen.Init(new RsaKeyGenerationParameters(BigInteger.ValueOf(0x10001), new SecureRandom(), 1024, 12));
        return new PgpKeyPair(PublicKeyAlgorithmTag.RsaGeneral, gen.GenerateKeyPair(), Created.AddSeconds(seed));
    }

    private const string ReleaseBody = "Origin: Test\nSuite: stable\nCodename: test\nDate: Wed, 01 Jan 2025 00:00:00 UTC\nSHA256:\n 0123 12 main/binary-amd64/Packages";

    private static InReleaseVerifier At(DateTimeOffset now) => new(new FixedClock(now));
    private static readonly InReleaseVerifier Mid2025 = At(new DateTimeOffset(2025, 6, 1, 0, 0, 0, TimeSpan.Zero));

    /// <summary>A keyring with the primary key (and optionally a signing subkey), expiries in seconds from creation.</summary>
    private static (OpenPgpKeyring Ring, PgpPublicKeyRing Public) Keyring(bool withSubkey = true, long? primaryValid = null, long? subkeyValid = null,
        bool revokePrimary = false, bool revokeSubkey = false)
    {
        var primary = PrimaryPair.Value;
        var hashed = new PgpSignatureSubpacketGenerator();
        hashed.SetKeyFlags(false, PgpKeyFlags.CanCertify | PgpKeyFlags.CanSign);
        if (primaryValid is { } pv) hashed.SetKeyExpirationTime(false, pv);
        var gen = new PgpKeyRingGenerator(PgpSignature.PositiveCertification, primary, "Test Archive <archive@example.org>",
            SymmetricKeyAlgorithmTag.Aes128, "unused".ToCharArray(), true, hashed.Generate(), null, new SecureRandom());
        if (withSubkey)
        {
            var subHashed = new PgpSignatureSubpacketGenerator();
            subHashed.SetKeyFlags(false, PgpKeyFlags.CanSign);
            if (subkeyValid is { } sv) subHashed.SetKeyExpirationTime(false, sv);
            gen.AddSubKey(SubkeyPair.Value, subHashed.Generate(), null);
        }
        var ring = gen.GeneratePublicKeyRing();
        if (revokePrimary)
        {
            var rev = new PgpSignatureGenerator(PublicKeyAlgorithmTag.RsaGeneral, HashAlgorithmTag.Sha256);
            rev.InitSign(PgpSignature.KeyRevocation, primary.PrivateKey);
            ring = PgpPublicKeyRing.InsertPublicKey(ring,
                PgpPublicKey.AddCertification(ring.GetPublicKey(), rev.GenerateCertification(primary.PublicKey)));
        }
        if (revokeSubkey)
        {
            var sub = ring.GetPublicKey(SubkeyPair.Value.KeyId);
            var rev = new PgpSignatureGenerator(PublicKeyAlgorithmTag.RsaGeneral, HashAlgorithmTag.Sha256);
            rev.InitSign(PgpSignature.SubkeyRevocation, primary.PrivateKey);
            ring = PgpPublicKeyRing.InsertPublicKey(ring, PgpPublicKey.AddCertification(sub, rev.GenerateCertification(primary.PublicKey, sub)));
        }
        return (OpenPgpKeyring.FromBytes(ring.GetEncoded(), "test-keyring.gpg"), ring);
    }

    private static string Canonical(IEnumerable<string> lines) => string.Join("\r\n", lines.Select(l => l.TrimEnd(' ', '\t')));

    private static byte[] Sign(PgpKeyPair key, IEnumerable<string> lines, HashAlgorithmTag hash = HashAlgorithmTag.Sha256,
        int type = PgpSignature.CanonicalTextDocument)
    {
        var gen = new PgpSignatureGenerator(PublicKeyAlgorithmTag.RsaGeneral, hash);
        gen.InitSign(type, key.PrivateKey);
        var bytes = Encoding.Latin1.GetBytes(Canonical(lines));
        gen.Update(bytes);
        return gen.Generate().GetEncoded();
    }

    /// <summary>A clear-signed message: header lines, the text (dash-escaped unless told not to), the signatures.</summary>
    private static byte[] ClearSigned(IReadOnlyList<string> lines, IEnumerable<byte[]> signatures, string headers = "Hash: SHA256\n", bool escape = true)
    {
        var armour = new MemoryStream();
        using (var output = new ArmoredOutputStream(armour))
            foreach (var s in signatures) output.Write(s);
        var text = string.Join("\n", lines.Select(l => escape && l.StartsWith('-') ? "- " + l : l));
        return Encoding.Latin1.GetBytes("-----BEGIN PGP SIGNED MESSAGE-----\n" + headers + "\n" + text + "\n" + Encoding.ASCII.GetString(armour.ToArray()));
    }

    private static string[] Body => ReleaseBody.Split('\n');
    private static string Id(PgpKeyPair k) => OpenPgpKeyring.FormatKeyId(k.KeyId);

    private static string Refusal(InReleaseVerifier verifier, byte[] file, OpenPgpKeyring ring) =>
        Assert.Throws<HardenException>(() => verifier.Verify(file, ring, "test stable")).Message;

    [Fact]
    public void Control_SubkeySignatureFromAValidKeyIsGood()
    {
        var (ring, _) = Keyring(primaryValid: 365 * Day, subkeyValid: 365 * Day);
        var v = Mid2025.Verify(ClearSigned(Body, [Sign(SubkeyPair.Value, Body)]), ring, "test stable");
        Assert.Equal([Id(SubkeyPair.Value)], v.GoodSigners);
        Assert.Empty(v.IgnoredSignatures);
        Assert.Equal(ReleaseBody + "\n", v.ReleaseText);
    }

    [Fact]
    public void ExpiredKey_ExpiredSubkeyIsRefusedUnderTheInjectedClock()
    {
        var (ring, _) = Keyring(subkeyValid: 30 * Day);
        var file = ClearSigned(Body, [Sign(SubkeyPair.Value, Body)]);
        var expiry = new DateTimeOffset(Created.AddSeconds(2)).AddSeconds(30 * Day); // the subkey was created at Created+2 s
        // Up to and including the expiry instant the key is valid; one second later it is not.
        Assert.Single(At(expiry.AddSeconds(-1)).Verify(file, ring, "test stable").GoodSigners);
        Assert.Single(At(expiry).Verify(file, ring, "test stable").GoodSigners);
        var message = Refusal(At(expiry.AddSeconds(1)), file, ring);
        Assert.Equal($"InRelease of test stable has no valid signature from keyring test-keyring.gpg: {Id(SubkeyPair.Value)}: key expired. " +
                     "Refresh the keyring (e.g. a newer debian-archive-keyring) or the repository.", message);
    }

    [Fact]
    public void ExpiredKey_ExpiredPrimaryInvalidatesItsStillValidSubkey()
    {
        var (ring, _) = Keyring(primaryValid: 30 * Day, subkeyValid: 3650 * Day);
        var file = ClearSigned(Body, [Sign(SubkeyPair.Value, Body)]);
        Assert.Single(At(new DateTimeOffset(Created).AddDays(29)).Verify(file, ring, "test stable").GoodSigners);
        Assert.Contains($"{Id(SubkeyPair.Value)}: key expired", Refusal(At(new DateTimeOffset(Created).AddDays(31)), file, ring));
    }

    [Fact]
    public void ExpiredKey_PrimarySigningDirectly()
    {
        var (ring, _) = Keyring(withSubkey: false, primaryValid: 30 * Day);
        var file = ClearSigned(Body, [Sign(PrimaryPair.Value, Body)]);
        Assert.Single(At(new DateTimeOffset(Created).AddDays(29)).Verify(file, ring, "test stable").GoodSigners);
        Assert.Contains($"{Id(PrimaryPair.Value)}: key expired", Refusal(At(new DateTimeOffset(Created).AddDays(31)), file, ring));
    }

    [Fact]
    public void ExpiredKey_KeyWithoutExpiryNeverExpires()
    {
        var (ring, _) = Keyring();
        var file = ClearSigned(Body, [Sign(SubkeyPair.Value, Body)]);
        Assert.Single(At(new DateTimeOffset(2199, 1, 1, 0, 0, 0, TimeSpan.Zero)).Verify(file, ring, "test stable").GoodSigners);
    }

    [Fact]
    public void ExpiredKey_OneExpiredSignerIsIgnoredWhenAnotherIsGood()
    {
        var (_, expiredPublic) = Keyring(subkeyValid: Day);
        var stranger = Stranger();
        var both = OpenPgpKeyring.FromBytes([.. expiredPublic.GetEncoded(), .. stranger.GetEncoded()], "two.gpg");
        var file = ClearSigned(Body, [Sign(SubkeyPair.Value, Body), Sign(StrangerPair.Value, Body)]);
        var v = Mid2025.Verify(file, both, "test stable");
        Assert.Equal([Id(StrangerPair.Value)], v.GoodSigners);
        Assert.Equal([$"{Id(SubkeyPair.Value)}: key expired"], v.IgnoredSignatures);
    }

    private static PgpPublicKeyRing Stranger() =>
        new PgpKeyRingGenerator(PgpSignature.PositiveCertification, StrangerPair.Value, "Other <o@example.org>", SymmetricKeyAlgorithmTag.Aes128,
            "unused".ToCharArray(), true, null, null, new SecureRandom()).GeneratePublicKeyRing();

    [Fact]
    public void RevokedKey_RevokedSubkeyIsRefused()
    {
        var (ring, _) = Keyring(revokeSubkey: true);
        var message = Refusal(Mid2025, ClearSigned(Body, [Sign(SubkeyPair.Value, Body)]), ring);
        Assert.Equal($"InRelease of test stable has no valid signature from keyring test-keyring.gpg: {Id(SubkeyPair.Value)}: key revoked. " +
                     "Refresh the keyring (e.g. a newer debian-archive-keyring) or the repository.", message);
    }

    [Fact]
    public void RevokedKey_RevokedPrimaryInvalidatesItsSubkey()
    {
        var (ring, _) = Keyring(revokePrimary: true);
        Assert.Contains($"{Id(SubkeyPair.Value)}: key revoked", Refusal(Mid2025, ClearSigned(Body, [Sign(SubkeyPair.Value, Body)]), ring));
        var (direct, _) = Keyring(withSubkey: false, revokePrimary: true);
        Assert.Contains($"{Id(PrimaryPair.Value)}: key revoked", Refusal(Mid2025, ClearSigned(Body, [Sign(PrimaryPair.Value, Body)]), direct));
    }

    [Fact]
    public void RevokedKey_RevocationWinsOverExpiry()
    {
        // Both apply: revoked is the stronger statement and is the one reported.
        var (ring, _) = Keyring(subkeyValid: Day, revokeSubkey: true);
        Assert.Contains($"{Id(SubkeyPair.Value)}: key revoked", Refusal(Mid2025, ClearSigned(Body, [Sign(SubkeyPair.Value, Body)]), ring));
    }

    [Theory]
    [InlineData(HashAlgorithmTag.MD5, "MD5")]
    [InlineData(HashAlgorithmTag.Sha1, "Sha1")]
    [InlineData(HashAlgorithmTag.RipeMD160, "RipeMD160")]
    public void WeakDigest_RealSignatureOverAWeakHashIsWorthless(HashAlgorithmTag hash, string name)
    {
        var (ring, _) = Keyring();
        var message = Refusal(Mid2025, ClearSigned(Body, [Sign(SubkeyPair.Value, Body, hash)]), ring);
        Assert.Equal($"InRelease of test stable has no valid signature from keyring test-keyring.gpg: {Id(SubkeyPair.Value)}: weak digest {name}. " +
                     "Refresh the keyring (e.g. a newer debian-archive-keyring) or the repository.", message);
    }

    [Theory]
    [InlineData(HashAlgorithmTag.MD2)]
    [InlineData(HashAlgorithmTag.Tiger192)]
    [InlineData(HashAlgorithmTag.Haval5pass160)]
    public void WeakDigest_DeclaredLegacyHashIsDiscountedBeforeAnyVerification(HashAlgorithmTag hash)
    {
        // BouncyCastle cannot sign with these; a signature packet that merely declares them is refused on the
        // declaration alone (the bytes are never hashed, so a forged packet cannot reach a weak hash).
        var (ring, _) = Keyring();
        var sig = WithHashAlgorithm(Sign(SubkeyPair.Value, Body), hash);
        Assert.Contains($"{Id(SubkeyPair.Value)}: weak digest {hash}.", Refusal(Mid2025, ClearSigned(Body, [sig]), ring));
    }

    [Fact]
    public void WeakDigest_IgnoredBesideAGoodSha512Signature()
    {
        var (ring, _) = Keyring();
        var v = Mid2025.Verify(ClearSigned(Body, [Sign(SubkeyPair.Value, Body, HashAlgorithmTag.Sha1), Sign(SubkeyPair.Value, Body, HashAlgorithmTag.Sha512)]), ring, "s");
        Assert.Equal([Id(SubkeyPair.Value)], v.GoodSigners);
        Assert.Equal([$"{Id(SubkeyPair.Value)}: weak digest Sha1"], v.IgnoredSignatures);
    }

    /// <summary>Rewrites the hash-algorithm octet of a v4 signature packet (RFC 4880 §5.2.3: version, type, key algorithm, hash algorithm).</summary>
    private static byte[] WithHashAlgorithm(byte[] packet, HashAlgorithmTag hash)
    {
        var b = (byte[])packet.Clone();
        int header = (b[0] & 0x40) == 0 ? 1 + (b[0] & 0x03) switch { 0 => 1, 1 => 2, _ => 4 } : b[1] < 192 ? 2 : b[1] < 224 ? 3 : 6;
        Assert.Equal(4, b[header]);
        b[header + 3] = (byte)hash;
        return b;
    }

    [Theory]
    [InlineData(PgpSignature.BinaryDocument, "00")]
    [InlineData(PgpSignature.StandAlone, "02")]
    public void BinarySignature_IsABadSignatureEvenBesideAGoodOne(int type, string hex)
    {
        // A binary-document signature over the same bytes is cryptographically valid but does not sign *text*:
        // apt (gpgv) treats it as an error; so do we, even when a good text signature is also present.
        var (ring, _) = Keyring();
        var file = ClearSigned(Body, [Sign(SubkeyPair.Value, Body, type: type), Sign(SubkeyPair.Value, Body)]);
        var message = Refusal(Mid2025, file, ring);
        Assert.StartsWith($"BAD signature on InRelease of test stable by key {Id(SubkeyPair.Value)} (signature type 0x{hex} is not a text signature) from keyring test-keyring.gpg", message);
    }

    [Fact]
    public void BadSignature_ByAKnownKeyOverOtherTextIsAnError()
    {
        var (ring, _) = Keyring();
        var other = Body.Select(l => l.Replace("stable", "unstable")).ToArray();
        var message = Refusal(Mid2025, ClearSigned(Body, [Sign(SubkeyPair.Value, other)]), ring);
        Assert.Equal($"BAD signature on InRelease of test stable by key {Id(SubkeyPair.Value)} from keyring test-keyring.gpg: " +
                     "the file was altered or corrupted after signing. Not trusting it; retry, or use another mirror.", message);
        var twice = Refusal(Mid2025, ClearSigned(Body, [Sign(SubkeyPair.Value, other), Sign(SubkeyPair.Value, other, HashAlgorithmTag.Sha512)]), ring);
        Assert.StartsWith($"BAD signature on InRelease of test stable by key {Id(SubkeyPair.Value)}, {Id(SubkeyPair.Value)} from keyring", twice);
    }

    [Fact]
    public void UnknownKey_OnlyStrangersSigned()
    {
        var (ring, _) = Keyring();
        var message = Refusal(Mid2025, ClearSigned(Body, [Sign(StrangerPair.Value, Body), Sign(StrangerPair.Value, Body, HashAlgorithmTag.Sha512)]), ring);
        Assert.Equal($"InRelease of test stable is signed by key {Id(StrangerPair.Value)}, {Id(StrangerPair.Value)}, which is not in keyring test-keyring.gpg. " +
                     "Add the repository's signing key to the keyring (after checking its fingerprint out of band) or fix the source's keyring path.", message);
    }

    [Fact]
    public void UnknownKey_BesideAWorthlessSignatureReportsBoth()
    {
        var (ring, _) = Keyring();
        var message = Refusal(Mid2025, ClearSigned(Body, [Sign(StrangerPair.Value, Body), Sign(SubkeyPair.Value, Body, HashAlgorithmTag.Sha1)]), ring);
        Assert.Contains($"has no valid signature from keyring test-keyring.gpg: {Id(StrangerPair.Value)}: key not in keyring; {Id(SubkeyPair.Value)}: weak digest Sha1.", message);
    }

    [Fact]
    public void UnverifiableSignature_KeyAlgorithmMismatchIsNotCountedGood()
    {
        // The packet claims an experimental public-key algorithm for a key we know: nothing can verify it.
        var (ring, _) = Keyring();
        var sig = Sign(SubkeyPair.Value, Body);
        int header = (sig[0] & 0x40) == 0 ? 1 + (sig[0] & 0x03) switch { 0 => 1, 1 => 2, _ => 4 } : sig[1] < 192 ? 2 : sig[1] < 224 ? 3 : 6;
        sig[header + 2] = (byte)PublicKeyAlgorithmTag.Experimental_1;
        var message = Refusal(Mid2025, ClearSigned(Body, [sig]), ring);
        Assert.StartsWith($"InRelease of test stable has no valid signature from keyring test-keyring.gpg: {Id(SubkeyPair.Value)}: cannot verify (", message);
    }

    [Theory]
    [InlineData("Hash: SHA256\nComment: unsigned text rides here\n", "unexpected armour header 'Comment: unsigned text rides here'")]
    [InlineData("Charset: UTF-8\n", "unexpected armour header 'Charset: UTF-8'")]
    [InlineData("Version: 1\n", "unexpected armour header 'Version: 1'")]
    [InlineData("hash: SHA256\n", "unexpected armour header 'hash: SHA256'")]
    [InlineData("Hash: SHA256\nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\n", "unexpected armour header 'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX…'")]
    [InlineData("Comment: 4567890123456789012345678901234\n", "unexpected armour header 'Comment: 4567890123456789012345678901234'")] // 40 characters: shown whole
    public void UnknownArmourHeader_IsRefused(string headers, string reason)
    {
        var (ring, _) = Keyring();
        var message = Refusal(Mid2025, ClearSigned(Body, [Sign(SubkeyPair.Value, Body)], headers), ring);
        Assert.Equal($"InRelease of test stable is a malformed clear-signed message: {reason}. Not trusting it; retry, or check the repository URL.", message);
    }

    [Fact]
    public void ArmourHeader_SeveralHashLinesAndNoneAreAccepted()
    {
        var (ring, _) = Keyring();
        Assert.Single(Mid2025.Verify(ClearSigned(Body, [Sign(SubkeyPair.Value, Body)], "Hash: SHA256\nHash: SHA512\n"), ring, "s").GoodSigners);
        Assert.Single(Mid2025.Verify(ClearSigned(Body, [Sign(SubkeyPair.Value, Body)], ""), ring, "s").GoodSigners);
    }

    [Fact]
    public void DashEscape_EscapedLinesAreUnescapedAndVerify()
    {
        var lines = Body.Append("-----BEGIN PGP SIGNATURE-----").Append("-x").ToArray();
        var (ring, _) = Keyring();
        var v = Mid2025.Verify(ClearSigned(lines, [Sign(SubkeyPair.Value, lines)]), ring, "s");
        Assert.EndsWith("\n-----BEGIN PGP SIGNATURE-----\n-x\n", v.ReleaseText);
    }

    [Fact]
    public void DashEscape_UnescapedDashLineIsRefused()
    {
        var lines = Body.Append("-x").ToArray();
        var (ring, _) = Keyring();
        var message = Refusal(Mid2025, ClearSigned(lines, [Sign(SubkeyPair.Value, lines)], escape: false), ring);
        Assert.Equal($"InRelease of test stable is a malformed clear-signed message: line {3 + lines.Length} starts with '-' but is not dash-escaped. " +
                     "Not trusting it; retry, or check the repository URL.", message);
    }

    [Theory]
    [InlineData("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256", "no text after the header")]
    [InlineData("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: x\n", "no '-----BEGIN PGP SIGNATURE-----' line")]
    [InlineData("-----BEGIN PGP SIGNED MESSAGE-----\n\nOrigin: x\n-----BEGIN PGP SIGNATURE-----\n\nAAAA\n", "no '-----END PGP SIGNATURE-----' line")]
    [InlineData("-----BEGIN PGP SIGNED MESSAGE-----\n\nOrigin: x\n-----BEGIN PGP SIGNATURE-----\n\n!!!!not base64!!!!\n=AAAA\n-----END PGP SIGNATURE-----\n", "the signature block does not decode")]
    [InlineData("-----BEGIN PGP SIGNED MESSAGE-----\n\nOrigin: x\n-----BEGIN PGP SIGNATURE-----\n-----END PGP SIGNATURE-----\n\nPackage: evil\n", "text after the signature")]
    public void Malformed_TruncatedOrPaddedMessagesAreRefused(string text, string reason)
    {
        var (ring, _) = Keyring();
        Assert.StartsWith($"InRelease of test stable is a malformed clear-signed message: {reason}", Refusal(Mid2025, Encoding.ASCII.GetBytes(text), ring));
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n \n")]
    [InlineData("Origin: x\n-----BEGIN PGP SIGNED MESSAGE-----\n")]  // unsigned text before the message
    [InlineData("-----BEGIN PGP MESSAGE-----\n")]
    public void Malformed_NotClearSigned(string text)
    {
        var (ring, _) = Keyring();
        Assert.StartsWith("InRelease of test stable is not an OpenPGP clear-signed message (no '-----BEGIN PGP SIGNED MESSAGE-----' line).",
            Refusal(Mid2025, Text(text), ring));
    }

    private static byte[] Text(string s) => Encoding.ASCII.GetBytes(s);

    [Fact]
    public void Malformed_BlankLinesAroundTheMessageAndTrailingBlanksAreTolerated()
    {
        var (ring, _) = Keyring();
        var file = Encoding.Latin1.GetString(ClearSigned(Body, [Sign(SubkeyPair.Value, Body)]));
        var padded = "\n \n" + file.Replace("-----BEGIN PGP SIGNED MESSAGE-----\n", "-----BEGIN PGP SIGNED MESSAGE----- \t\n") + "\n\t\n";
        Assert.Single(Mid2025.Verify(Encoding.Latin1.GetBytes(padded), ring, "s").GoodSigners);
    }

    [Fact]
    public void NoSignature_ArmourWithoutSignaturePacketsIsRefused()
    {
        var (ring, pub) = Keyring();
        var armour = new MemoryStream();
        using (var output = new ArmoredOutputStream(armour)) output.Write(pub.GetEncoded()); // a key, not a signature
        var text = "-----BEGIN PGP SIGNED MESSAGE-----\n\nOrigin: x\n" + Encoding.ASCII.GetString(armour.ToArray()).Replace("PUBLIC KEY BLOCK", "SIGNATURE");
        Assert.Equal("InRelease of test stable carries no OpenPGP signature. The repository is not signed or the file was truncated: refusing to trust it.",
            Refusal(Mid2025, Text(text), ring));
    }
}
