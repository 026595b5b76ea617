using System.Text;
using HardenImage.Deb;
using HardenImage.Oci;

namespace HardenImage.Build.Hardening;

/// <summary>
/// Tells what a file of a layer is — a shell, a package manager — by its package, the links and shebangs that
/// name it, update-alternatives and its content, not only by its name and directory (threat E: a shell installed
/// as <c>usr/libexec/foo/sh</c>, a renamed busybox or a <c>thing</c> that <c>/usr/bin/sh</c> links to is still a shell).
/// One instance per transform run; content is read at most once per file.
/// </summary>
public sealed class ExecutableIdentity
{
    /// <summary>Names a shell goes by (file names, symlink names, alternative names).</summary>
    public static readonly IReadOnlySet<string> ShellNames = new HashSet<string>(StringComparer.Ordinal)
    {
        "sh", "bash", "rbash", "dash", "ash", "busybox", "toybox", "zsh", "ksh", "ksh93", "mksh", "lksh", "pdksh", "posh",
        "yash", "csh", "tcsh", "fish", "rc", "es", "sash", "oksh", "loksh",
    };

    /// <summary>Debian packages whose executables are shells, whatever they are called.</summary>
    public static readonly IReadOnlySet<string> ShellPackages = new HashSet<string>(StringComparer.Ordinal)
    {
        "bash", "bash-static", "dash", "busybox", "busybox-static", "toybox", "zsh", "zsh-static", "ksh", "ksh93u+m",
        "mksh", "mksh-static", "posh", "yash", "csh", "tcsh", "fish", "rc", "es", "sash", "oksh", "loksh",
    };

    /// <summary>Debian packages whose executables install or replace software.</summary>
    public static readonly IReadOnlySet<string> PackageManagerPackages = new HashSet<string>(StringComparer.Ordinal)
    {
        "dpkg", "apt", "apt-utils", "aptitude", "dselect", "gdebi-core", "python3-pip", "pipx", "rpm", "dnf", "yum",
        "apk-tools", "opkg", "snapd", "flatpak",
    };

    // Scanning content is bounded: shells and package-manager binaries are small; a 500 MB library is neither.
    private const long MaxScannedBytes = 16 << 20;
    private const int MaxLinkHops = 16;
    private static readonly string[] SearchPath = ["usr/local/sbin", "usr/local/bin", "usr/sbin", "usr/bin", "sbin", "bin"];

    private readonly FsTree _tree;
    private readonly HardeningContext _context;
    private readonly Dictionary<string, ContentFacts?> _facts = new(StringComparer.Ordinal);
    private Dictionary<string, string>? _namedShells;

    public ExecutableIdentity(FsTree tree, HardeningContext context)
    {
        _tree = tree;
        _context = context;
    }

    public static bool IsExecutable(FsNode n) => n.Type == FsNodeType.File && (n.Mode & 0b001_001_001) != 0;

    /// <summary>Why <paramref name="n"/> is a shell, or null.</summary>
    public string? Shell(FsNode n)
    {
        if (n.Type == FsNodeType.Directory) return null;
        var name = Path.GetFileName(n.Path);
        var runnable = IsExecutable(n) || n.Type == FsNodeType.Symlink;
        if (runnable && ShellNames.Contains(name)) return $"named '{name}'";
        if (runnable && ShellPackages.Contains(n.Owner)) return $"shipped by the shell package {n.Owner}";
        if (NamedShells().TryGetValue(n.Path, out var why)) return why;
        return ContentMatters(n) ? Facts(n)?.ElfShell : null;
    }

    /// <summary>Why <paramref name="n"/> installs or replaces software, or null.</summary>
    public string? PackageManager(FsNode n)
    {
        if (n.Type == FsNodeType.Directory) return null;
        var runnable = IsExecutable(n) || n.Type == FsNodeType.Symlink;
        if (runnable && PackageManagerPackages.Contains(n.Owner)) return $"shipped by the package manager package {n.Owner}";
        return ContentMatters(n) ? Facts(n)?.PackageManager : null;
    }

    /// <summary>
    /// Whose content is read: executables, and every payload file. The dynamic loader runs any ELF whatever its
    /// mode (<c>ld-linux-x86-64.so.2 /app/helper.bin</c>), and a payload comes from a pull request, not from a signed
    /// archive: a BusyBox committed as <c>mode: 0644</c> is still a shell (threat E).
    /// </summary>
    private static bool ContentMatters(FsNode n) =>
        IsExecutable(n) || n.Type == FsNodeType.File && n.Owner.StartsWith("payload:", StringComparison.Ordinal);

    /// <summary>
    /// Files that something names as a shell: the final targets of shell-named symlinks, of shebang interpreters
    /// with a shell's name, and of update-alternatives entries for a shell (path → reason).
    /// </summary>
    private Dictionary<string, string> NamedShells()
    {
        if (_namedShells != null) return _namedShells;
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        void Mark(string? path, string why)
        {
            if (path == null) return;
            var target = Follow(path);
            if (target != null && !result.ContainsKey(target)) result[target] = why;
        }
        foreach (var n in _tree.Nodes.Concat(_tree.Lower.Values).Where(n => n.Type == FsNodeType.Symlink && ShellNames.Contains(Path.GetFileName(n.Path))))
            Mark(n.Path, $"the target of the shell link /{n.Path}");
        foreach (var p in _context.Packages)
            foreach (var a in p.Alternatives.Where(a => ShellNames.Contains(a.Name) || ShellNames.Contains(Path.GetFileName(a.Link))))
                Mark(a.Path.TrimStart('/'), $"the update-alternatives target for {a.Name} (from {p.Name})");
        foreach (var n in _tree.Nodes.Where(IsExecutable))
            if (Facts(n)?.Interpreter is { } interpreter && ShellNames.Contains(Path.GetFileName(interpreter)))
            {
                // "#!/usr/bin/env zsh" names a command, found on the image's PATH.
                var path = interpreter.Contains('/') ? interpreter.TrimStart('/')
                    : SearchPath.Select(d => d + "/" + interpreter).FirstOrDefault(p => Follow(p) != null);
                Mark(path, $"the shell interpreter of /{n.Path}");
            }
        return _namedShells = result;
    }

    /// <summary>The interpreter of a <c>#!</c> line; for <c>#!/usr/bin/env [-S] x</c>, x.</summary>
    internal static string? Interpreter(byte[] script)
    {
        var end = Array.IndexOf(script, (byte)'\n');
        var line = Encoding.UTF8.GetString(script, 2, (end < 0 ? Math.Min(script.Length, 256) : end) - 2).Trim();
        var words = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0) return null;
        if (Path.GetFileName(words[0]) == "env")
            return words.Skip(1).FirstOrDefault(w => !w.StartsWith('-') && !w.Contains('='));
        return words[0];
    }

    /// <summary>The file a path ends at after following symlinks inside the image (merged-/usr aware), or null.</summary>
    internal string? Follow(string path)
    {
        var current = MergedUsr.Canonicalise(path.TrimStart('/'));
        for (var hop = 0; hop < MaxLinkHops; hop++)
        {
            var node = _tree.Resolve(current);
            if (node == null) return null;
            if (node.Type != FsNodeType.Symlink) return node.Path;
            var target = node.LinkTarget ?? "";
            var joined = target.StartsWith('/') ? target.TrimStart('/') : FsTree.ParentOf(current) is { Length: > 0 } dir ? dir + "/" + target : target;
            var normalised = Normalise(joined);
            if (normalised == null) return null;
            current = MergedUsr.Canonicalise(normalised);
        }
        return null;
    }

    private static string? Normalise(string path)
    {
        var parts = new List<string>();
        foreach (var s in path.Split('/'))
        {
            if (s.Length == 0 || s == ".") continue;
            if (s == "..") { if (parts.Count > 0) parts.RemoveAt(parts.Count - 1); continue; }
            parts.Add(s);
        }
        return parts.Count == 0 ? null : string.Join('/', parts);
    }

    /// <summary>What the content says, kept per file instead of the bytes (an image has hundreds of executables).</summary>
    private sealed record ContentFacts(string? ElfShell, string? PackageManager, string? Interpreter);

    private ContentFacts? Facts(FsNode n)
    {
        if (n.Type != FsNodeType.File || n.Size > MaxScannedBytes || n.Size < 4) return null;
        var key = n.ContentSha256 ?? n.Path;
        if (_facts.TryGetValue(key, out var known)) return known;
        var bytes = _context.ReadContent(n);
        ContentFacts? facts = null;
        if (IsElf(bytes))
        {
            var shell = Has(bytes, "BusyBox v") && Has(bytes, "multi-call binary") ? "a BusyBox multi-call binary (by content)"
                : Has(bytes, "GNU bash, version") ? "a bash binary (by content)"
                : Has(bytes, "@(#)MIRBSD KSH") ? "an mksh binary (by content)"
                // What every POSIX shell carries: its prompt and option variables as literals (dash, ash, ksh, …).
                : Has(bytes, "PS1") && Has(bytes, "PS2") && Has(bytes, "PS4") && Has(bytes, "OPTIND") && Has(bytes, "IFS")
                    ? "a POSIX shell binary (by content: PS1, PS2, PS4, OPTIND, IFS built in)" : null;
            facts = new ContentFacts(shell, Has(bytes, "package management program") ? "a dpkg binary (by content)" : null, null);
        }
        else if (bytes[0] == '#' && bytes[1] == '!')
        {
            facts = new ContentFacts(null, Has(bytes, "pip._internal") || Has(bytes, "from pip import") ? "a pip entry point (by content)" : null,
                Interpreter(bytes));
        }
        return _facts[key] = facts;
    }

    private static bool IsElf(byte[] b) => b.Length > 4 && b[0] == 0x7f && b[1] == (byte)'E' && b[2] == (byte)'L' && b[3] == (byte)'F';

    private static bool Has(byte[] haystack, string needle) => haystack.AsSpan().IndexOf(Encoding.ASCII.GetBytes(needle)) >= 0;
}
