using System.Text;
using HardenImage.Common;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;

namespace HardenImage.Apt;

/// <summary>
/// The public keys a source trusts: one or more files, each a binary keyring (<c>gpg --export</c>, the
/// <c>/usr/share/keyrings/*.gpg</c> form) or ASCII armour (<c>.asc</c>, possibly several key blocks in one file).
/// Answers Spoofing: only signatures by these keys (primary keys or subkeys) make a repository's metadata trusted.
/// </summary>
public sealed class OpenPgpKeyring
{
    private readonly Dictionary<long, PgpPublicKey> _keysById = new();
    private readonly Dictionary<long, PgpPublicKey> _primaryById = new();

    private OpenPgpKeyring(string description) { Description = description; }

    /// <summary>Where the keys came from (file names), for error messages.</summary>
    public string Description { get; }

    /// <summary>Every key (primary and sub) by its 64-bit key id.</summary>
    public IReadOnlyDictionary<long, PgpPublicKey> KeysById => _keysById;

    /// <summary>The primary key a key (or subkey) belongs to: a revoked or expired primary voids its subkeys.</summary>
    public PgpPublicKey PrimaryOf(long keyId) => _primaryById[keyId];

    /// <summary>Loads and merges keyring files. A file that holds no public key is an error, not an empty trust set.</summary>
    public static OpenPgpKeyring Load(params string[] paths)
    {
        if (paths.Length == 0) throw new HardenException("No keyring given: name the repository's signing key file (.gpg or .asc).");
        var ring = new OpenPgpKeyring(string.Join(", ", paths));
        foreach (var path in paths)
        {
            byte[] bytes;
            // Bounded on the bytes read: a keyring that is /dev/zero (or a wrong, huge file) stops at the limit.
            bytes = BoundedFile.ReadAllBytes(path, InputLimits.MaxKeyringBytes, "keyring");
            var before = ring._keysById.Count;
            ring.AddBytes(bytes, path);
            if (ring._keysById.Count == before)
                throw new HardenException($"Keyring '{path}' holds no OpenPGP public key. Export one with 'gpg --export KEYID > file.gpg' or 'gpg --armor --export KEYID > file.asc'.");
        }
        return ring;
    }

    /// <summary>Builds a keyring from bytes already in memory (binary or armoured).</summary>
    public static OpenPgpKeyring FromBytes(byte[] bytes, string description)
    {
        var ring = new OpenPgpKeyring(description);
        ring.AddBytes(bytes, description);
        if (ring._keysById.Count == 0) throw new HardenException($"Keyring '{description}' holds no OpenPGP public key.");
        return ring;
    }

    private void AddBytes(byte[] bytes, string origin)
    {
        // gpg's keybox format (pubring.kbx) is not OpenPGP packets; say how to get an exportable keyring.
        if (bytes.Length >= 12 && bytes[8] == 'K' && bytes[9] == 'B' && bytes[10] == 'X' && bytes[11] == 'f')
            throw new HardenException($"Keyring '{origin}' is a GnuPG keybox (.kbx), not an OpenPGP keyring. Export it: gpg --export KEYID > keyring.gpg");
        try
        {
            if (LooksArmoured(bytes))
            {
                // ArmoredInputStream stops at the end of one block; a .asc may concatenate several.
                foreach (var block in SplitArmourBlocks(Encoding.ASCII.GetString(bytes)))
                {
                    using var armoured = new ArmoredInputStream(new MemoryStream(Encoding.ASCII.GetBytes(block)));
                    AddPackets(armoured);
                }
            }
            else AddPackets(new MemoryStream(bytes));
        }
        // BouncyCastle reports malformed packets through many exception types, some deriving from Exception itself
        // (UnsupportedPacketVersionException); for bytes we did not write, each means "not a keyring".
        catch (Exception e) when (e is not (HardenException or OutOfMemoryException))
        {
            throw new HardenException($"Keyring '{origin}' is not a valid OpenPGP keyring: {e.Message.ReplaceLineEndings(" ")}", inner: e);
        }
    }

    private void AddPackets(Stream stream)
    {
        var factory = new PgpObjectFactory(stream);
        PgpObject? obj;
        while ((obj = factory.NextPgpObject()) != null)
        {
            if (obj is not PgpPublicKeyRing ring) continue; // markers, trust packets: not keys
            var primary = ring.GetPublicKey();
            foreach (var key in ring.GetPublicKeys())
            {
                _keysById[key.KeyId] = key;
                _primaryById[key.KeyId] = primary;
            }
        }
    }

    private static bool LooksArmoured(byte[] bytes)
    {
        var head = Encoding.ASCII.GetString(bytes, 0, Math.Min(bytes.Length, 4096));
        return head.Contains("-----BEGIN PGP PUBLIC KEY BLOCK-----", StringComparison.Ordinal);
    }

    private static IEnumerable<string> SplitArmourBlocks(string text)
    {
        const string begin = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
        const string end = "-----END PGP PUBLIC KEY BLOCK-----";
        var at = 0;
        while ((at = text.IndexOf(begin, at, StringComparison.Ordinal)) >= 0)
        {
            var stop = text.IndexOf(end, at, StringComparison.Ordinal);
            if (stop < 0) throw new IOException("armoured key block without an END line");
            stop += end.Length;
            yield return text[at..stop] + "\n";
            at = stop;
        }
    }

    /// <summary>The 16-hex-digit key id apt and gpg print, upper case.</summary>
    public static string FormatKeyId(long keyId) => ((ulong)keyId).ToString("X16", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The full fingerprint of a key, upper-case hex.</summary>
    public static string Fingerprint(PgpPublicKey key) => Convert.ToHexString(key.GetFingerprint());
}
