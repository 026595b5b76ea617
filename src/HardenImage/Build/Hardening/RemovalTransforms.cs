using System.Text.RegularExpressions;

namespace HardenImage.Build.Hardening;

/// <summary>Shared removal logic: drop matching paths from this layer and report each.</summary>
public abstract class RemovalTransform : IHardeningTransform
{
    public abstract string Name { get; }
    public abstract string Threat { get; }
    public abstract string Description { get; }
    protected virtual bool Enabled(HardeningContext context) => true;
    protected abstract bool Matches(FsNode node);

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        if (!Enabled(context))
        {
            report.Add(new(Name, "skipped", "", $"image {context.Image.Name} opts in (allow:)"));
            return;
        }
        foreach (var node in tree.Nodes.Where(Matches).OrderBy(n => n.Path, StringComparer.Ordinal).ToList())
        {
            tree.Remove(node.Path);
            report.Add(new(Name, "removed", node.Path, $"from {node.Owner}"));
        }
    }
}

/// <summary>
/// No shells (threat E, elevation of privilege; also T): an attacker with code execution gets no interpreter to
/// chain commands, and `kubectl exec -- sh` finds nothing. Off with <c>allow: {shell: true}</c>.
/// </summary>
public sealed class RemoveShells : RemovalTransform
{
    private static readonly HashSet<string> Shells = ["sh", "bash", "dash", "rbash", "busybox", "ash", "zsh", "ksh", "mksh", "csh", "tcsh"];
    public override string Name => "no-shells";
    public override string Threat => "E";
    public override string Description => "remove /bin/sh, bash, dash, busybox and other shells";
    protected override bool Enabled(HardeningContext c) => !c.Image.Allow.Shell;
    protected override bool Matches(FsNode n) =>
        n.Type != FsNodeType.Directory && IsBinDir(FsTree.ParentOf(n.Path)) && Shells.Contains(Path.GetFileName(n.Path));

    internal static bool IsBinDir(string dir) => dir is "usr/bin" or "usr/sbin" or "bin" or "sbin" or "usr/local/bin";
}

/// <summary>
/// No package managers (threats T and E): nothing inside the container can install or replace software; the
/// image changes only through a new, signed build.
/// </summary>
public sealed class RemovePackageManagers : RemovalTransform
{
    private static readonly Regex Tools = new(
        "^(apt|apt-get|apt-cache|apt-cdrom|apt-config|apt-key|apt-mark|apt-extracttemplates|apt-ftparchive|apt-sortpkgs|dpkg|dpkg-.*|update-alternatives|pip|pip3|pip3\\.[0-9]+|ensurepip)$",
        RegexOptions.CultureInvariant);
    public override string Name => "no-package-managers";
    public override string Threat => "T,E";
    public override string Description => "remove apt, dpkg and pip tools";
    protected override bool Enabled(HardeningContext c) => !c.Image.Allow.PackageManager;
    protected override bool Matches(FsNode n) =>
        (n.Type != FsNodeType.Directory && RemoveShells.IsBinDir(FsTree.ParentOf(n.Path)) && Tools.IsMatch(Path.GetFileName(n.Path)))
        || n.Path.StartsWith("usr/lib/python3/dist-packages/pip/", StringComparison.Ordinal)
        || n.Path.StartsWith("etc/apt/", StringComparison.Ordinal) || n.Path == "etc/apt"
        || n.Path.StartsWith("var/lib/dpkg/info/", StringComparison.Ordinal)
        || n.Path is "var/lib/dpkg/status" or "var/lib/dpkg/available";
}

/// <summary>
/// Drop documentation, man and info pages, lintian overrides and locales (threat D: less to ship and scan;
/// smaller attack surface), keeping every <c>copyright</c> file: licences must travel with the binaries.
/// </summary>
public sealed class DropDocumentation : RemovalTransform
{
    private static readonly string[] Prefixes =
        ["usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/lintian/", "usr/share/locale/",
         "usr/share/doc-base/", "usr/share/bug/", "usr/share/gtk-doc/", "usr/share/linda/", "usr/share/groff/",
         "usr/share/i18n/", "usr/share/zsh/", "usr/share/bash-completion/", "usr/share/menu/"];
    public override string Name => "drop-docs";
    public override string Threat => "D";
    public override string Description => "remove docs, man/info pages, lintian overrides, locales; keep copyright files";
    protected override bool Enabled(HardeningContext c) => !c.Image.Allow.Docs;
    protected override bool Matches(FsNode n)
    {
        // The directories themselves go too, except usr/share/doc, which keeps the copyright files.
        if (n.Type == FsNodeType.Directory && n.Path != "usr/share/doc" && Prefixes.Any(p => p == n.Path + "/")) return true;
        if (!Prefixes.Any(p => n.Path.StartsWith(p, StringComparison.Ordinal))) return false;
        // usr/share/doc/<pkg>/copyright and the directory holding it stay.
        if (n.Path.StartsWith("usr/share/doc/", StringComparison.Ordinal))
        {
            var rest = n.Path["usr/share/doc/".Length..];
            var parts = rest.Split('/');
            if (parts.Length == 1 && n.Type == FsNodeType.Directory) return false;
            if (parts.Length == 2 && parts[1] == "copyright") return false;
        }
        return true;
    }
}

/// <summary>Paths an image lists under <c>remove:</c> (globs with * and **).</summary>
public sealed class RemoveListedPaths : IHardeningTransform
{
    public string Name => "remove-listed";
    public string Threat => "D,E";
    public string Description => "remove the paths the image lists under remove:";

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        if (context.Image.Remove.Count == 0) return;
        var patterns = context.Image.Remove.Select(GlobToRegex).ToList();
        foreach (var node in tree.Nodes.Where(n => patterns.Any(p => p.IsMatch(n.Path))).OrderBy(n => n.Path, StringComparer.Ordinal).ToList())
        {
            tree.Remove(node.Path);
            report.Add(new(Name, "removed", node.Path, $"from {node.Owner}"));
        }
    }

    internal static Regex GlobToRegex(string glob)
    {
        var g = glob.TrimStart('/');
        var sb = new System.Text.StringBuilder("^");
        for (var i = 0; i < g.Length; i++)
        {
            if (g[i] == '*' && i + 1 < g.Length && g[i + 1] == '*') { sb.Append(".*"); i++; }
            else if (g[i] == '*') sb.Append("[^/]*");
            else if (g[i] == '?') sb.Append("[^/]");
            else sb.Append(Regex.Escape(g[i].ToString()));
        }
        return new Regex(sb.Append('$').ToString(), RegexOptions.CultureInvariant);
    }
}
