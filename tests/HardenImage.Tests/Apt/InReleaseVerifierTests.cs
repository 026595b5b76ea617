using System.Text;
using HardenImage.Apt;
using HardenImage.Common;
using HardenImage.Tests.Fixtures;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;

namespace HardenImage.Tests.Apt;

public class InReleaseVerifierTests
{
    // Inside the validity of every Debian key involved; the files are dated Jul/Nov 2026.
    private static readonly InReleaseVerifier Verifier = new(new FixedClock(new DateTimeOffset(2026, 11, 26, 0, 0, 0, TimeSpan.Zero)));

    private const string TrixieRsaSubkey = "78DBA3BC47EF2265";      // Debian Archive Automatic Signing Key (13/trixie), RSA subkey
    private const string TrixieEd25519 = "762F67A0B2C39DE4";        // Debian Stable Release Key (13/trixie), Ed25519
    private const string BookwormRsaSubkey = "6ED0E7B82643E131";    // Debian Archive Automatic Signing Key (12/bookworm)
    private const string BookwormEd25519 = "F8D2585B8783D481";      // Debian Stable Release Key (12/bookworm)

    private static byte[] Trixie => File.ReadAllBytes(TestFiles.Path("trixie.InRelease"));
    private static OpenPgpKeyring DebianKeyring => OpenPgpKeyring.Load(TestFiles.Path("debian-archive-keyring.gpg"));

    [Fact]
    public void Verify_RealTrixieInRelease_AllThreeSignaturesGood()
    {
        var v = Verifier.Verify(Trixie, DebianKeyring, "debian trixie");
        Assert.Equal(new[] { BookwormRsaSubkey, TrixieRsaSubkey, TrixieEd25519 }.Order(), v.GoodSigners.Order());
        Assert.StartsWith("Origin: Debian\n", v.ReleaseText);
        Assert.Contains("Codename: trixie\n", v.ReleaseText);
        Assert.DoesNotContain("PGP", v.ReleaseText);
    }

    [Fact]
    public void Verify_RealBookwormInRelease_RsaAndEd25519Good()
    {
        var v = Verifier.Verify(File.ReadAllBytes(TestFiles.Path("bookworm.InRelease")), DebianKeyring, "debian bookworm");
        Assert.Contains(BookwormEd25519, v.GoodSigners);
        Assert.Contains(BookwormRsaSubkey, v.GoodSigners);
        Assert.Contains("Codename: bookworm\n", v.ReleaseText);
    }

    [Fact]
    public void Verify_Ed25519PathAlone_AcceptsTrixie()
    {
        var v = Verifier.Verify(Trixie, OpenPgpKeyring.Load(TestFiles.Path("debian-archive-trixie-stable.gpg")), "trixie");
        Assert.Equal([TrixieEd25519], v.GoodSigners);
        Assert.Equal(2, v.IgnoredSignatures.Count); // the two RSA signatures: keys not in this keyring
    }

    [Fact]
    public void Verify_RsaSubkeyPathAlone_AcceptsTrixie()
    {
        var v = Verifier.Verify(Trixie, OpenPgpKeyring.Load(TestFiles.Path("debian-archive-trixie-automatic.gpg")), "trixie");
        Assert.Equal([TrixieRsaSubkey], v.GoodSigners);
    }

    [Fact]
    public void Verify_RejectsOneChangedByteInSignedText()
    {
        var bytes = Trixie;
        var text = Encoding.ASCII.GetString(bytes);
        var at = text.IndexOf("Codename: trixie", StringComparison.Ordinal) + "Codename: ".Length;
        bytes[at] = (byte)'x';
        var e = Assert.Throws<HardenException>(() => Verifier.Verify(bytes, DebianKeyring, "debian trixie"));
        Assert.Contains("BAD signature", e.Message);
        Assert.Contains("debian trixie", e.Message);
        Assert.Contains(TrixieEd25519, e.Message);
    }

    /// <summary>Asks for records and has none: shows which records a verification would consult.</summary>
    private sealed class AskedRecords : ISignatureRecords
    {
        public List<string> Asked { get; } = new();
        public bool Verified(string id) { lock (Asked) Asked.Add(id); return false; }
        public void Record(string id) { }
    }

    // What an attacker who writes the cache (not its key) plants: a record, under the name the code would look for.
    private static void PlantSignatureRecord(IndexProofCache cache, string id, CacheAuthenticationKey macKey)
    {
        Directory.CreateDirectory(cache.Directory);
        var mac = macKey.Mac(Encoding.UTF8.GetBytes("hardenimage-signature-verified v1\n" + id));
        File.WriteAllText(Path.Combine(cache.Directory, "sig-" + Sha256Hex.Of(Encoding.UTF8.GetBytes(id))), Convert.ToHexStringLower(mac) + "\n");
    }

    [Fact]
    public void SignatureRecord_ForgedInTheCache_DoesNotMakeATamperedInReleaseVerify()
    {
        using var dir = new HardenImage.Tests.Infrastructure.TempDir("hi-sigrecord");
        var ours = new CacheAuthenticationKey(Encoding.UTF8.GetBytes("signature-record-tests-key-0123456789"));
        var cache = new IndexProofCache(dir.Path, ours);
        var clock = new FixedClock(new DateTimeOffset(2026, 11, 26, 0, 0, 0, TimeSpan.Zero));
        // A signed line changed (unique to this test, so nothing earlier in the process verified these bytes).
        var bytes = Trixie;
        var text = Encoding.ASCII.GetString(bytes);
        var at = text.IndexOf("Codename: trixie", StringComparison.Ordinal) + "Codename: tri".Length;
        bytes[at] = (byte)'X';
        var asked = new AskedRecords();
        Assert.Contains("BAD signature", Assert.Throws<HardenException>(() => new InReleaseVerifier(clock, asked).Verify(bytes, DebianKeyring, "debian trixie")).Message);
        Assert.NotEmpty(asked.Asked);

        // Records for exactly those signatures, MAC'd with a key of the attacker's own: still BAD, and no record is made.
        var attacker = new CacheAuthenticationKey(Encoding.UTF8.GetBytes("the attacker's own key, not ours at all"));
        foreach (var id in asked.Asked) PlantSignatureRecord(cache, id, attacker);
        var e = Assert.Throws<HardenException>(() => new InReleaseVerifier(clock, cache).Verify(bytes, DebianKeyring, "debian trixie"));
        Assert.Contains("BAD signature", e.Message);
        Assert.All(asked.Asked, id => Assert.False(cache.Verified(id)));

        // The record is what is consulted: only the cache key makes one (so the MAC is the whole guard).
        foreach (var id in asked.Asked) PlantSignatureRecord(cache, id, ours);
        Assert.NotEmpty(new InReleaseVerifier(clock, cache).Verify(bytes, DebianKeyring, "debian trixie").GoodSigners);
    }

    [Fact]
    public void SignatureRecord_IsWrittenForGoodSignaturesOnly_AndRead()
    {
        using var dir = new HardenImage.Tests.Infrastructure.TempDir("hi-sigrecord");
        var cache = new IndexProofCache(dir.Path, new CacheAuthenticationKey(Encoding.UTF8.GetBytes("signature-record-tests-key-0123456789")));
        var clock = new FixedClock(new DateTimeOffset(2026, 11, 26, 0, 0, 0, TimeSpan.Zero));
        var v = new InReleaseVerifier(clock, cache).Verify(File.ReadAllBytes(TestFiles.Path("bookworm.InRelease")), DebianKeyring, "debian bookworm");
        // One record per signature that verified, none for those that did not count; each is a 64-hex MAC line.
        var records = Directory.GetFiles(cache.Directory, "sig-*");
        Assert.Equal(v.GoodSigners.Count, records.Length);
        Assert.All(records, f => Assert.Matches("^[0-9a-f]{64}\n$", File.ReadAllText(f)));
    }

    [Fact]
    public void Verify_BadSignatureIsAnErrorEvenWhenAnotherIsGood()
    {
        // Corrupt only the first (bookworm RSA) signature; the trixie ones stay good. apt's rule: still an error.
        var (lines, armour) = InReleaseVerifier.SplitClearSigned(Trixie, "t");
        var sigs = new List<byte[]>();
        using (var input = new ArmoredInputStream(new MemoryStream(Encoding.ASCII.GetBytes(armour))))
        {
            var list = (PgpSignatureList)new PgpObjectFactory(input).NextPgpObject();
            for (int i = 0; i < list.Count; i++) sigs.Add(list[i].GetEncoded());
        }
        sigs[0][^1] ^= 0x01;
        var rebuilt = new MemoryStream();
        using (var outArmour = new ArmoredOutputStream(rebuilt))
            foreach (var s in sigs) outArmour.Write(s);
        var message = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + string.Join("\n", lines) + "\n" + Encoding.ASCII.GetString(rebuilt.ToArray());

        var e = Assert.Throws<HardenException>(() => Verifier.Verify(Encoding.ASCII.GetBytes(message), DebianKeyring, "debian trixie"));
        Assert.Contains("BAD signature", e.Message);
        Assert.Contains(BookwormRsaSubkey, e.Message);
        // Control: the same rebuild without the corruption verifies (so the rebuild itself is sound).
        sigs[0][^1] ^= 0x01;
        rebuilt = new MemoryStream();
        using (var outArmour = new ArmoredOutputStream(rebuilt))
            foreach (var s in sigs) outArmour.Write(s);
        message = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + string.Join("\n", lines) + "\n" + Encoding.ASCII.GetString(rebuilt.ToArray());
        Assert.Equal(3, Verifier.Verify(Encoding.ASCII.GetBytes(message), DebianKeyring, "t").GoodSigners.Count);
    }

    [Fact]
    public void Verify_CanonicalisesCrlfAndTrailingWhitespace()
    {
        // Neither line endings nor trailing blanks are signed (RFC 4880 §7.1): both changes must still verify.
        var text = Encoding.ASCII.GetString(Trixie);
        var crlf = text.Replace("\n", "\r\n");
        Assert.Single(Verifier.Verify(Encoding.ASCII.GetBytes(crlf), OpenPgpKeyring.Load(TestFiles.Path("debian-archive-trixie-stable.gpg")), "t").GoodSigners);
        var blanks = text.Replace("Codename: trixie\n", "Codename: trixie \t \n");
        var v = Verifier.Verify(Encoding.ASCII.GetBytes(blanks), OpenPgpKeyring.Load(TestFiles.Path("debian-archive-trixie-stable.gpg")), "t");
        Assert.Contains("Codename: trixie\n", v.ReleaseText); // and the unsigned blanks do not reach the parser
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void Verify_UnknownKey_NamesSourceAndKeyIds()
    {
        using var repo = new AptRepositoryFixture();
        var e = Assert.Throws<HardenException>(() => Verifier.Verify(Trixie, OpenPgpKeyring.Load(repo.KeyringPath), "debian trixie"));
        Assert.Contains("not in keyring", e.Message);
        Assert.Contains(TrixieEd25519, e.Message);
        Assert.Contains("debian trixie", e.Message);
    }

    [Fact]
    public void Verify_RejectsUnsignedAndTruncatedFiles()
    {
        var text = Encoding.ASCII.GetString(Trixie);
        var releaseOnly = text[(text.IndexOf("\n\n", StringComparison.Ordinal) + 2)..text.IndexOf("-----BEGIN PGP SIGNATURE-----", StringComparison.Ordinal)];
        var e1 = Assert.Throws<HardenException>(() => Verifier.Verify(Encoding.ASCII.GetBytes(releaseOnly), DebianKeyring, "src"));
        Assert.Contains("not an OpenPGP clear-signed message", e1.Message);
        var truncated = text[..text.IndexOf("-----BEGIN PGP SIGNATURE-----", StringComparison.Ordinal)];
        var e2 = Assert.Throws<HardenException>(() => Verifier.Verify(Encoding.ASCII.GetBytes(truncated), DebianKeyring, "src"));
        Assert.Contains("malformed", e2.Message);
        var noSigs = text[..text.IndexOf("-----BEGIN PGP SIGNATURE-----", StringComparison.Ordinal)] + "-----BEGIN PGP SIGNATURE-----\n\n=twTO\n-----END PGP SIGNATURE-----\n";
        var e3 = Assert.Throws<HardenException>(() => Verifier.Verify(Encoding.ASCII.GetBytes(noSigs), DebianKeyring, "src"));
        Assert.StartsWith("InRelease of src is a malformed clear-signed message: the signature block does not decode", e3.Message);
    }

    [Fact]
    public void Verify_RejectsTextOutsideTheSignedPart()
    {
        var appended = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(Trixie) + "\nPackage: evil\n");
        Assert.Contains("after the signature", Assert.Throws<HardenException>(() => Verifier.Verify(appended, DebianKeyring, "s")).Message);
        var prepended = Encoding.ASCII.GetBytes("Suite: evil\n" + Encoding.ASCII.GetString(Trixie));
        Assert.Contains("is not an OpenPGP clear-signed message", Assert.Throws<HardenException>(() => Verifier.Verify(prepended, DebianKeyring, "s")).Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void Verify_FixtureRepositories_Ed25519AndRsa_BinaryAndArmouredKeyrings()
    {
        foreach (var type in new[] { FixtureKeyType.Ed25519, FixtureKeyType.Rsa })
        {
            using var repo = new AptRepositoryFixture(keyType: type).Add(new FakePackage("hello")).Publish();
            var bytes = File.ReadAllBytes(repo.InReleasePath);
            var bin = new InReleaseVerifier().Verify(bytes, OpenPgpKeyring.Load(repo.KeyringPath), "fixture");
            var asc = new InReleaseVerifier().Verify(bytes, OpenPgpKeyring.Load(repo.ArmoredKeyringPath), "fixture");
            Assert.Equal(repo.KeyFingerprint[^16..], Assert.Single(bin.GoodSigners));
            Assert.Equal(bin.GoodSigners, asc.GoodSigners);
            Assert.Equal(File.ReadAllText(repo.ReleasePath).TrimEnd('\n') + "\n", bin.ReleaseText);
        }
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void Keyring_ArmouredFileWithSeveralKeyBlocks_LoadsAll()
    {
        using var tmp = new Infrastructure.TempDir();
        var both = tmp.Combine("both.asc");
        File.WriteAllText(both, File.ReadAllText(FixtureSigningKey.Get(FixtureKeyType.Ed25519).ArmoredKeyringPath) + "\n" +
                                File.ReadAllText(FixtureSigningKey.Get(FixtureKeyType.Rsa).ArmoredKeyringPath));
        var ring = OpenPgpKeyring.Load(both);
        Assert.Contains(ring.KeysById.Keys, k => OpenPgpKeyring.FormatKeyId(k) == FixtureSigningKey.Get(FixtureKeyType.Ed25519).Fingerprint[^16..]);
        Assert.Contains(ring.KeysById.Keys, k => OpenPgpKeyring.FormatKeyId(k) == FixtureSigningKey.Get(FixtureKeyType.Rsa).Fingerprint[^16..]);
    }

    [Fact]
    public void Keyring_WithoutKeys_IsAnError()
    {
        using var tmp = new Infrastructure.TempDir();
        var empty = tmp.Combine("empty.gpg");
        File.WriteAllBytes(empty, []);
        Assert.Contains("holds no OpenPGP public key", Assert.Throws<HardenException>(() => OpenPgpKeyring.Load(empty)).Message);
    }
}
