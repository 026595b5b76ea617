using System.Text.RegularExpressions;

namespace HardenImage.Cache;

/// <summary>
/// What harden keeps in its cache directory (HARDEN_CACHE), and how it names it — all <c>harden cache</c> may
/// remove. Each store names its own directory (<c>Apt/DebCache</c>, <c>Common/ContentStore</c>,
/// <c>Build/PackageUnpacker</c>, …); <c>Cache/CacheLayoutTests</c> builds through the library and fails when a
/// directory appears here that this list does not know (a format bump must also list the old name below).
/// <para>
/// Names are the safety rule: harden names every cache file by a SHA-256 (<c>&lt;64 hex&gt;</c>, with
/// <c>.index</c>, <c>-&lt;arch&gt;</c> or <c>sig-</c> around it) or as one of its temp files, and every directory
/// below a part by a fixed word or a hex digest. Anything else found inside a part is not harden's (a user's
/// file in a directory that happens to be called <c>wheels</c>) and is left where it is, and listed.
/// </para>
/// </summary>
public static partial class CacheLayout
{
    public const string Debs = "debs";
    public const string Content = "content";
    public const string Unpacked = "unpacked-v4";
    public const string ByteCode = "bytecode-v2";
    public const string Builds = "builds-v1";
    public const string Indices = "indices";
    public const string Wheels = "wheels";

    /// <summary>The parts this version reads and writes.</summary>
    public static readonly IReadOnlyList<string> CurrentParts = [Debs, Content, Unpacked, ByteCode, Builds, Indices, Wheels];

    /// <summary>Parts of older cache formats, which this version never reads (removed whole by prune).</summary>
    public static readonly IReadOnlyList<string> OldParts = ["unpacked", "unpacked-v2", "unpacked-v3", "bytecode-v1"];

    /// <summary>
    /// Directories a running build may be about to write into: never removed, even when prune empties them (the stores
    /// create them when they open, not before each write).
    /// </summary>
    public static readonly IReadOnlySet<string> FixedDirectories = new HashSet<string>(StringComparer.Ordinal)
    {
        Debs, "debs/sha256", Content, "content/sha256", Unpacked, ByteCode, Builds,
        Indices, "indices/apt-indices", "indices/apt-indices/sha256", "indices/apt-proofs", Wheels,
    };

    /// <summary>
    /// The deepest directory harden makes, counted from the root: <c>indices/apt-indices/sha256</c>,
    /// <c>bytecode-v1/&lt;2 hex&gt;</c> (the part is 1). <c>Cache/BuildAfterPruneTests</c> fails when a build writes deeper.
    /// </summary>
    public const int MaxDirectoryDepth = 3;

    /// <summary>What a part holds, in a few words (the table of <c>harden cache</c>).</summary>
    public static string Describe(string part) => part switch
    {
        Debs => "verified .debs",
        Content => "content files no pointer or index names (payload, wheel files, packs of replaced entries)",
        Unpacked => "unpacked .debs: pointer, file list and pack",
        ByteCode => "compiled .pyc: index and pack",
        Builds => "build records (up to date, layer reuse)",
        Indices => "apt indices, InRelease files, parsed-index snapshots, signature records",
        Wheels => "verified wheels",
        CacheInventory.TempFiles => "temp files of killed writers",
        _ when OldParts.Contains(part) => "an older format this version never reads",
        _ => "",
    };

    /// <summary>Where the content-addressed store lives: packs, file lists and loose files, by SHA-256.</summary>
    public const string ContentFiles = "content/sha256";

    /// <summary>
    /// Parts only harden makes, with a shape of their own: a directory holding none of them (and something else) is
    /// not harden's cache (someone's home, <c>/</c>), whatever generic names (<c>wheels</c>) it also has.
    /// </summary>
    public static readonly IReadOnlyList<string> Distinctive =
        ["debs/sha256", ContentFiles, "indices/apt-indices", "indices/apt-proofs", Unpacked, ByteCode, Builds, "unpacked-v2", "unpacked-v3", "bytecode-v1"];

    /// <summary>A file name harden gives a cache entry (or one of its temp files).</summary>
    public static bool IsEntryName(string name) => EntryName().IsMatch(name) || IsTempName(name);

    /// <summary>One of <see cref="Common.AtomicFile"/>'s temp names (what a killed writer leaves).</summary>
    public static bool IsTempName(string name) => Common.StaleTempFiles.IsTempName(name);

    /// <summary>A directory name harden uses below a part: a fixed word, an interpreter identity (64 hex) or a fan-out (2 hex, bytecode-v1).</summary>
    public static bool IsDirectoryName(string name) => name is "sha256" or "apt-indices" or "apt-proofs" || DirectoryName().IsMatch(name);

    /// <summary>The directory part of a '/'-separated path below the root ("" at the top).</summary>
    internal static string Parent(string path) => path.LastIndexOf('/') is var i and >= 0 ? path[..i] : "";

    /// <summary>The last component of a '/'-separated path below the root.</summary>
    internal static string Name(string path) => path[(path.LastIndexOf('/') + 1)..];

    [GeneratedRegex(@"^(sig-)?[0-9a-f]{64}(\.index|-[a-z0-9-]{1,32})?$")]
    private static partial Regex EntryName();

    [GeneratedRegex(@"^([0-9a-f]{64}|[0-9a-f]{2})$")]
    private static partial Regex DirectoryName();
}
