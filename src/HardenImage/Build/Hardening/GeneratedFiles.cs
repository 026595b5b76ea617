using System.Text;
using HardenImage.Oci;

namespace HardenImage.Build.Hardening;

/// <summary>
/// Accounts and the root skeleton (threat E): /etc/passwd and /etc/group with root (no login shell), nobody
/// 65534 and nonroot 65532; /home/nonroot 0700 owned by 65532; /tmp 1777; /etc/nsswitch.conf. Only the root image
/// of a chain writes them; children inherit them.
/// </summary>
public sealed class Accounts : IHardeningTransform
{
    public const int NonRoot = 65532;
    public string Name => "accounts";
    public string Threat => "E";
    public string Description => "generate passwd/group (root, nobody, nonroot 65532), /home/nonroot, /tmp, nsswitch.conf";

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        if (!context.IsRootImage) return;
        void Write(string path, string text, int mode = 420)
        {
            tree.AddFile(path, Encoding.UTF8.GetBytes(text), mode, "harden:" + Name);
            report.Add(new(Name, "generated", path, ""));
        }
        Write("etc/passwd",
            "root:x:0:0:root:/root:/sbin/nologin\n" +
            "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
            "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n");
        Write("etc/group", "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n");
        Write("etc/nsswitch.conf",
            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\n" +
            "services: files\nethers: files\nrpc: files\n");
        foreach (var p in new[] { "etc/shadow", "etc/gshadow", "etc/passwd-", "etc/group-" })
            if (tree.Remove(p)) report.Add(new(Name, "removed", p, "accounts are generated"));
        tree.EnsureDirectory("home");
        tree.Set(new FsNode { Path = "home/nonroot", Type = FsNodeType.Directory, Mode = 448, Uid = NonRoot, Gid = NonRoot, Owner = "harden:" + Name });
        tree.Set(new FsNode { Path = "root", Type = FsNodeType.Directory, Mode = 448, Owner = "harden:" + Name });
        tree.Set(new FsNode { Path = "tmp", Type = FsNodeType.Directory, Mode = 1023, Owner = "harden:" + Name }); // 01777
        report.Add(new(Name, "generated", "home/nonroot", "0700 65532:65532"));
        report.Add(new(Name, "generated", "tmp", "1777"));
    }
}

/// <summary>
/// The CA bundle (threat S: TLS peers are authenticated against Mozilla's roots as Debian ships them).
/// ca-certificates' postinst (update-ca-certificates) never runs here, so we do its work: concatenate every
/// certificate under /usr/share/ca-certificates, in path order, into /etc/ssl/certs/ca-certificates.crt.
/// </summary>
public sealed class CaBundle : IHardeningTransform
{
    public const string BundlePath = "etc/ssl/certs/ca-certificates.crt";
    public string Name => "ca-bundle";
    public string Threat => "S";
    public string Description => "build /etc/ssl/certs/ca-certificates.crt from the ca-certificates package";

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        if (!context.Packages.Any(p => p.Name == "ca-certificates")) return;
        var certs = tree.Nodes.Where(n => n.Type == FsNodeType.File && n.Path.StartsWith("usr/share/ca-certificates/", StringComparison.Ordinal)
                                          && n.Path.EndsWith(".crt", StringComparison.Ordinal))
            .OrderBy(n => n.Path, StringComparer.Ordinal).ToList();
        if (certs.Count == 0)
            throw new Common.HardenException($"image {context.Image.Name} ({context.Architecture}): ca-certificates is installed but ships no certificates under /usr/share/ca-certificates; the package may be damaged.");
        using var ms = new MemoryStream();
        foreach (var c in certs)
        {
            var bytes = context.ReadContent(c);
            ms.Write(bytes);
            if (bytes.Length > 0 && bytes[^1] != (byte)'\n') ms.WriteByte((byte)'\n');
        }
        tree.AddFile(BundlePath, ms.ToArray(), 420, "harden:" + Name);
        report.Add(new(Name, "generated", BundlePath, $"{certs.Count} certificates"));
    }
}

/// <summary>
/// The time zone tzdata's postinst would configure through debconf: UTC (threat R: logs carry unambiguous times).
/// </summary>
public sealed class DefaultTimezone : IHardeningTransform
{
    public string Name => "timezone";
    public string Threat => "R";
    public string Description => "set /etc/localtime and /etc/timezone to UTC when tzdata is installed";

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        if (!context.Packages.Any(p => p.Name == "tzdata")) return;
        tree.EnsureDirectory("etc");
        tree.Set(new FsNode { Path = "etc/localtime", Type = FsNodeType.Symlink, Mode = 511, LinkTarget = "/usr/share/zoneinfo/Etc/UTC", Owner = "harden:" + Name });
        tree.AddFile("etc/timezone", "Etc/UTC\n"u8.ToArray(), 420, "harden:" + Name);
        report.Add(new(Name, "generated", "etc/localtime", "→ /usr/share/zoneinfo/Etc/UTC"));
    }
}

/// <summary>
/// Package records for scanners (threat R: what is inside the image is declared, so SBOM tools and vulnerability
/// scanners such as syft, trivy and grype see every package). Distroless convention: one control record per
/// package in /var/lib/dpkg/status.d/&lt;pkg&gt; plus &lt;pkg&gt;.md5sums, and no /var/lib/dpkg/status.
/// </summary>
public sealed class DpkgStatusRecords : IHardeningTransform
{
    public const string Dir = "var/lib/dpkg/status.d";
    public string Name => "dpkg-status.d";
    public string Threat => "R";
    public string Description => "write /var/lib/dpkg/status.d/<pkg> and <pkg>.md5sums for every package";

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        tree.EnsureDirectory(Dir);
        foreach (var p in context.Packages.OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            var control = p.ControlText.EndsWith('\n') ? p.ControlText : p.ControlText + "\n";
            tree.AddFile($"{Dir}/{p.Name}", Encoding.UTF8.GetBytes(control), 420, "harden:" + Name);
            if (!string.IsNullOrEmpty(p.Md5sums))
                tree.AddFile($"{Dir}/{p.Name}.md5sums", Encoding.UTF8.GetBytes(p.Md5sums), 420, "harden:" + Name);
        }
        report.Add(new(Name, "generated", Dir, $"{context.Packages.Count} package records"));
    }
}

/// <summary>
/// The links update-alternatives would make in postinst (libblas.so.3 → blas/libblas.so.3 and the like): without
/// them a library that other packages link against is missing (threat D: the service fails to start). For each
/// alternative name the highest-priority target present in the image wins; the link points straight at it (no
/// /etc/alternatives indirection, so nothing needs to stay writable).
/// </summary>
public sealed class DebianAlternatives : IHardeningTransform
{
    public string Name => "alternatives";
    public string Threat => "D";
    public string Description => "create the update-alternatives links the maintainer scripts would have made";

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        var candidates = context.Packages.SelectMany(p => p.Alternatives.Select(a => (Package: p.Name, Alt: a)))
            .Where(x => tree.Resolve(x.Alt.Path.TrimStart('/')) != null)
            .GroupBy(x => x.Alt.Name, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal);
        foreach (var group in candidates)
        {
            var best = group.OrderByDescending(x => x.Alt.Priority).ThenBy(x => x.Alt.Path, StringComparer.Ordinal).First();
            var link = best.Alt.Link.TrimStart('/');
            if (tree.Resolve(link) != null) continue;
            tree.EnsureDirectory(FsTree.ParentOf(link));
            tree.Set(new FsNode { Path = link, Type = FsNodeType.Symlink, Mode = 511, LinkTarget = best.Alt.Path, Owner = "harden:" + Name });
            report.Add(new(Name, "generated", link, $"→ {best.Alt.Path} ({group.Key}, from {best.Package})"));
        }
    }
}

/// <summary>Symlinks the image declares (e.g. python3 → python3.13), made here because no postinst makes them.</summary>
public sealed class DeclaredSymlinks : IHardeningTransform
{
    public string Name => "symlinks";
    public string Threat => "-";
    public string Description => "create the symlinks the image declares";

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        foreach (var (link, target) in context.Image.Symlinks)
        {
            var path = link.TrimStart('/');
            tree.EnsureDirectory(FsTree.ParentOf(path));
            tree.Set(new FsNode { Path = path, Type = FsNodeType.Symlink, Mode = 511, LinkTarget = target, Owner = "harden:" + Name });
            report.Add(new(Name, "generated", path, "→ " + target));
        }
    }
}

/// <summary>
/// Maintainer scripts never run (threat E: no package code runs as root at build time). This transform does not
/// change the tree; it reports each package with scripts and what, if anything, harden did instead.
/// </summary>
public sealed class MaintainerScriptReport : IHardeningTransform
{
    private static readonly Dictionary<string, string> Instead = new(StringComparer.Ordinal)
    {
        ["ca-certificates"] = "CA bundle built by the ca-bundle transform",
        ["tzdata"] = "UTC set by the timezone transform",
        ["base-files"] = "nothing needed: root's skeleton files are not used (no login)",
        ["libc6"] = "nothing needed: no services to restart",
        ["libssl3t64"] = "nothing needed: no services to restart",
        ["media-types"] = "nothing needed: mime.types ships as a file",
        ["python3.13-minimal"] = "byte-code compiled by the byte-code transform (unless allow: noByteCode)",
        ["libpython3.13-stdlib"] = "byte-code compiled by the byte-code transform (unless allow: noByteCode)",
        ["netbase"] = "nothing needed",
    };

    public string Name => "maintainer-scripts";
    public string Threat => "E";
    public string Description => "report maintainer scripts that were not run, and what was done instead";

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        foreach (var p in context.Packages.Where(p => p.MaintainerScripts.Count > 0).OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            var instead = Instead.TryGetValue(p.Name, out var s) ? s
                : p.Alternatives.Count > 0 ? "update-alternatives links made by the alternatives transform"
                : p.Name.StartsWith("python3", StringComparison.Ordinal) ? "byte-code compiled by the byte-code transform (unless allow: noByteCode)"
                : "nothing: not needed without services, debconf or alternatives";
            report.Add(new(Name, "not run", p.Name, $"{string.Join(",", p.MaintainerScripts)}; instead: {instead}"));
        }
    }
}

/// <summary>The standard transform list, in the order they run.</summary>
public static class StandardTransforms
{
    public static IReadOnlyList<IHardeningTransform> All() =>
    [
        new DropDocumentation(), new RemoveShells(), new RemovePackageManagers(), new RemoveListedPaths(),
        new StripSetuid(), new NoWorldWritable(), new RootOwnedPackageFiles(), new CaBundle(), new DefaultTimezone(), new DebianAlternatives(), new Accounts(),
        new DpkgStatusRecords(), new DeclaredSymlinks(), new PythonByteCode(), new MaintainerScriptReport(),
    ];
}
