using System.Text.RegularExpressions;
using HardenImage.Oci;

namespace HardenImage.Build.Hardening;

/// <summary>Shared removal logic: drop matching paths from this layer and report each with the reason.</summary>
public abstract class RemovalTransform : IHardeningTransform
{
    public abstract string Name { get; }
    public abstract string Threat { get; }
    public abstract string Description { get; }
    protected virtual bool Enabled(HardeningContext context) => true;

    /// <summary>Why the node goes (shown in the report), or null when it stays.</summary>
    protected abstract string? Why(FsNode node, HardeningContext context, ExecutableIdentity identity);

    /// <summary>Also remove symlinks of this layer that end at a removed file (they would only dangle or mislead).</summary>
    protected virtual bool RemoveLinksToRemoved => false;

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        if (!Enabled(context))
        {
            report.Add(new(Name, "skipped", "", $"image {context.Image.Name} opts in (allow:)"));
            return;
        }
        var identity = new ExecutableIdentity(tree, context);
        // Decide on the whole tree first: removing as we go would hide a link's target from the next decision.
        var doomed = tree.Nodes.OrderBy(n => n.Path, StringComparer.Ordinal)
            .Select(n => (Node: n, Why: Why(n, context, identity))).Where(x => x.Why != null).ToList();
        var paths = doomed.Select(d => d.Node.Path).ToHashSet(StringComparer.Ordinal);
        var links = RemoveLinksToRemoved
            ? tree.Nodes.Where(n => n.Type == FsNodeType.Symlink && !paths.Contains(n.Path))
                .Select(n => (Node: n, Target: identity.Follow(n.Path)))
                .Where(x => x.Target != null && paths.Contains(x.Target))
                .Select(x => (x.Node, Why: (string?)$"a link to the removed /{x.Target}")).ToList()
            : [];
        foreach (var (node, why) in doomed.Concat(links).OrderBy(x => x.Node.Path, StringComparer.Ordinal))
        {
            tree.Remove(node.Path);
            report.Add(new(Name, "removed", node.Path, $"{why}; from {node.Owner}"));
        }
    }
}

/// <summary>
/// No shells (threat E, elevation of privilege; also T): an attacker with code execution gets no interpreter to
/// chain commands, and `kubectl exec -- sh` finds nothing. A shell is found by name anywhere in the tree, by its
/// package (bash, dash, busybox, …), by the links, shebangs and update-alternatives that name it, and by content
/// (BusyBox multi-call, bash, mksh or POSIX-shell ELF), so <c>usr/libexec/x/sh</c> or a renamed busybox goes too.
/// Off with <c>allow: {shell: true}</c>.
/// </summary>
public sealed class RemoveShells : RemovalTransform
{
    public override string Name => "no-shells";
    public override string Threat => "E";
    public override string Description => "remove shells (sh, bash, dash, busybox, …) by name, package, links, shebangs, alternatives and content";
    protected override bool Enabled(HardeningContext c) => !c.Image.Allow.Shell;
    protected override bool RemoveLinksToRemoved => true;
    protected override string? Why(FsNode n, HardeningContext c, ExecutableIdentity identity) => identity.Shell(n);

    internal static bool IsBinDir(string dir) => dir is "usr/bin" or "usr/sbin" or "bin" or "sbin" or "usr/local/bin" or "usr/local/sbin";
}

/// <summary>
/// No package managers (threats T and E): nothing inside the container can install or replace software; the
/// image changes only through a new, signed build. Found by name, by package (dpkg, apt, python3-pip, …), by
/// content (dpkg ELF, pip entry-point scripts) and by path (pip modules in any site- or dist-packages).
/// </summary>
public sealed class RemovePackageManagers : RemovalTransform
{
    private static readonly Regex Tools = new(
        "^(apt|apt-get|apt-cache|apt-cdrom|apt-config|apt-key|apt-mark|apt-extracttemplates|apt-ftparchive|apt-sortpkgs|dpkg|dpkg-.*|update-alternatives|pip|pip3|pip3\\.[0-9]+|ensurepip)$",
        RegexOptions.CultureInvariant);
    private static readonly Regex PipModule = new("(^|/)(site|dist)-packages/pip(/|$)", RegexOptions.CultureInvariant);
    public override string Name => "no-package-managers";
    public override string Threat => "T,E";
    public override string Description => "remove apt, dpkg and pip by name, package, content and path";
    protected override bool Enabled(HardeningContext c) => !c.Image.Allow.PackageManager;
    protected override bool RemoveLinksToRemoved => true;
    protected override string? Why(FsNode n, HardeningContext c, ExecutableIdentity identity)
    {
        var name = Path.GetFileName(n.Path);
        if (n.Type != FsNodeType.Directory && (ExecutableIdentity.IsExecutable(n) || n.Type == FsNodeType.Symlink || RemoveShells.IsBinDir(FsTree.ParentOf(n.Path)))
            && Tools.IsMatch(name))
            return $"named '{name}'";
        if (PipModule.IsMatch(n.Path)) return "the pip module";
        if (n.Path.StartsWith("etc/apt/", StringComparison.Ordinal) || n.Path == "etc/apt"
            || n.Path.StartsWith("var/lib/dpkg/info/", StringComparison.Ordinal) || n.Path is "var/lib/dpkg/status" or "var/lib/dpkg/available")
            return "package manager state";
        return identity.PackageManager(n);
    }
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
    protected override string? Why(FsNode n, HardeningContext c, ExecutableIdentity identity) => IsDocumentation(n) ? "documentation" : null;

    private static bool IsDocumentation(FsNode n)
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
