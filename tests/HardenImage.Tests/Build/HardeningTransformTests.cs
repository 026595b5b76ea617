using System.Text;
using HardenImage.Build;
using HardenImage.Build.Hardening;
using HardenImage.Lock;
using HardenImage.Oci;

namespace HardenImage.Tests.Build;

/// <summary>Each transform removes or changes exactly what it claims, and reports it.</summary>
public sealed class HardeningTransformTests
{
    private static FsNode File(string path, int mode = 420, string owner = "pkg", string? sha = null) =>
        new() { Path = path, Type = FsNodeType.File, Mode = mode, Owner = owner, ContentSha256 = sha ?? new string('a', 64), Size = 1 };

    private static FsNode Link(string path, string target) =>
        new() { Path = path, Type = FsNodeType.Symlink, Mode = 511, LinkTarget = target, Owner = "pkg" };

    private static HardeningContext Context(ImageDefinition? image = null, bool root = true, params InstalledPackage[] packages) => new()
    {
        Image = image ?? new ImageDefinition { Name = "t", File = "t.yaml" },
        Architecture = "amd64",
        IsRootImage = root,
        Packages = packages,
        ReadContent = n => n.Inline ?? Encoding.ASCII.GetBytes($"-----CERT {n.Path}-----"),
    };

    private static List<HardeningAction> Run(IHardeningTransform t, FsTree tree, HardeningContext? ctx = null)
    {
        var actions = new List<HardeningAction>();
        t.Apply(tree, ctx ?? Context(), actions);
        return actions;
    }

    [Fact]
    public void NoShells_RemovesShellsAndTheirLinks_ButNotOtherBinaries()
    {
        var tree = new FsTree();
        tree.Set(File("usr/bin/dash", 493)); tree.Set(Link("usr/bin/sh", "dash")); tree.Set(File("usr/bin/bash", 493));
        tree.Set(File("usr/bin/busybox", 493)); tree.Set(File("usr/bin/python3.13", 493)); tree.Set(File("usr/share/dash/sh.txt"));
        var actions = Run(new RemoveShells(), tree);
        Assert.Equal(["usr/bin/python3.13", "usr/share/dash/sh.txt"], tree.Nodes.Select(n => n.Path).Order());
        Assert.Equal(4, actions.Count(a => a.Action == "removed"));
    }

    [Fact]
    public void NoShells_RespectsOptIn()
    {
        var tree = new FsTree();
        tree.Set(File("usr/bin/bash", 493));
        var image = new ImageDefinition { Name = "dev", File = "dev.yaml", Allow = new ImageAllowances { Shell = true } };
        var actions = Run(new RemoveShells(), tree, Context(image));
        Assert.True(tree.Contains("usr/bin/bash"));
        Assert.Contains(actions, a => a.Action == "skipped");
    }

    [Fact]
    public void NoPackageManagers_RemovesAptDpkgAndPip()
    {
        var tree = new FsTree();
        foreach (var p in new[] { "usr/bin/apt", "usr/bin/apt-get", "usr/bin/dpkg", "usr/bin/dpkg-deb", "usr/sbin/dpkg-divert", "usr/bin/pip3", "etc/apt/sources.list", "var/lib/dpkg/status" })
            tree.Set(File(p, 493));
        tree.Set(File("usr/bin/aptitude-not-a-tool-name-x", 493));
        Run(new RemovePackageManagers(), tree);
        Assert.Equal(["usr/bin/aptitude-not-a-tool-name-x"], tree.Nodes.Select(n => n.Path));
    }

    [Fact]
    public void NoSetuid_ClearsSetuidAndSetgidBits()
    {
        var tree = new FsTree();
        tree.Set(File("usr/bin/su", Convert.ToInt32("4755", 8)));
        tree.Set(File("usr/bin/wall", Convert.ToInt32("2755", 8)));
        var actions = Run(new StripSetuid(), tree);
        Assert.Equal(Convert.ToInt32("755", 8), tree.Get("usr/bin/su")!.Mode);
        Assert.Equal(Convert.ToInt32("755", 8), tree.Get("usr/bin/wall")!.Mode);
        Assert.Equal(2, actions.Count);
    }

    [Fact]
    public void NoWorldWritable_KeepsOnlyTmp()
    {
        var tree = new FsTree();
        tree.Set(new FsNode { Path = "tmp", Type = FsNodeType.Directory, Mode = Convert.ToInt32("1777", 8), Owner = "x" });
        tree.Set(new FsNode { Path = "var/tmp", Type = FsNodeType.Directory, Mode = Convert.ToInt32("1777", 8), Owner = "x" });
        tree.Set(File("etc/x", Convert.ToInt32("666", 8)));
        Run(new NoWorldWritable(), tree);
        Assert.Equal(Convert.ToInt32("1777", 8), tree.Get("tmp")!.Mode);
        Assert.Equal(Convert.ToInt32("775", 8), tree.Get("var/tmp")!.Mode);
        Assert.Equal(Convert.ToInt32("664", 8), tree.Get("etc/x")!.Mode);
    }

    [Fact]
    public void DropDocs_KeepsCopyrightFiles()
    {
        var tree = new FsTree();
        tree.Set(new FsNode { Path = "usr/share/doc/libc6", Type = FsNodeType.Directory, Mode = 493, Owner = "libc6" });
        tree.Set(File("usr/share/doc/libc6/copyright")); tree.Set(File("usr/share/doc/libc6/changelog.Debian.gz"));
        tree.Set(File("usr/share/man/man1/x.1.gz")); tree.Set(File("usr/share/locale/de/LC_MESSAGES/libc.mo"));
        tree.Set(File("usr/share/lintian/overrides/libc6")); tree.Set(File("usr/share/info/x.info"));
        tree.Set(File("usr/lib/x86_64-linux-gnu/libc.so.6"));
        Run(new DropDocumentation(), tree);
        Assert.Equal(["usr/lib/x86_64-linux-gnu/libc.so.6", "usr/share/doc/libc6", "usr/share/doc/libc6/copyright"], tree.Nodes.Select(n => n.Path).Order());
    }

    [Fact]
    public void Accounts_GeneratesNonrootAndNologinRoot_OnlyInRootImage()
    {
        var tree = new FsTree();
        tree.Set(File("etc/shadow"));
        Run(new Accounts(), tree);
        var passwd = Encoding.UTF8.GetString(tree.Get("etc/passwd")!.Inline!);
        Assert.Contains("root:x:0:0:root:/root:/sbin/nologin", passwd);
        Assert.Contains("nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin", passwd);
        Assert.Contains("nobody:x:65534:65534:", passwd);
        Assert.Equal(65532, tree.Get("home/nonroot")!.Uid);
        Assert.Equal(Convert.ToInt32("700", 8), tree.Get("home/nonroot")!.Mode);
        Assert.Equal(Convert.ToInt32("1777", 8), tree.Get("tmp")!.Mode);
        Assert.False(tree.Contains("etc/shadow"));

        var child = new FsTree();
        Run(new Accounts(), child, Context(root: false));
        Assert.Equal(0, child.Count);
    }

    [Fact]
    public void CaBundle_ConcatenatesCertificatesInPathOrder()
    {
        var tree = new FsTree();
        tree.Set(File("usr/share/ca-certificates/mozilla/B.crt")); tree.Set(File("usr/share/ca-certificates/mozilla/A.crt"));
        tree.Set(File("usr/share/ca-certificates/mozilla/README"));
        var pkg = new InstalledPackage { Name = "ca-certificates", Version = "1", Architecture = "all", ControlText = "Package: ca-certificates\n" };
        Run(new CaBundle(), tree, Context(null, true, pkg));
        var bundle = Encoding.ASCII.GetString(tree.Get(CaBundle.BundlePath)!.Inline!);
        Assert.Equal("-----CERT usr/share/ca-certificates/mozilla/A.crt-----\n-----CERT usr/share/ca-certificates/mozilla/B.crt-----\n", bundle);
    }

    [Fact]
    public void StatusD_WritesControlAndMd5sumsPerPackage_AndNoStatusFile()
    {
        var tree = new FsTree();
        var pkg = new InstalledPackage { Name = "libc6", Version = "2.41-12", Architecture = "amd64", ControlText = "Package: libc6\nVersion: 2.41-12\n", Md5sums = "abc  usr/lib/x\n", MaintainerScripts = ["postinst"] };
        Run(new DpkgStatusRecords(), tree, Context(null, true, pkg));
        Assert.Equal("Package: libc6\nVersion: 2.41-12\n", Encoding.UTF8.GetString(tree.Get("var/lib/dpkg/status.d/libc6")!.Inline!));
        Assert.Equal("abc  usr/lib/x\n", Encoding.UTF8.GetString(tree.Get("var/lib/dpkg/status.d/libc6.md5sums")!.Inline!));
        Assert.False(tree.Contains("var/lib/dpkg/status"));
        var report = Run(new MaintainerScriptReport(), tree, Context(null, true, pkg));
        Assert.Contains(report, a => a.Path == "libc6" && a.Detail.Contains("postinst"));
    }

    [Fact]
    public void RemoveListed_SupportsGlobs()
    {
        var tree = new FsTree();
        tree.Set(File("usr/lib/python3.13/test/a.py")); tree.Set(File("usr/lib/python3.13/test/sub/b.py")); tree.Set(File("usr/lib/python3.13/os.py"));
        var image = new ImageDefinition { Name = "p", File = "p.yaml", Remove = ["/usr/lib/python3.13/test/**"] };
        Run(new RemoveListedPaths(), tree, Context(image));
        Assert.Equal(["usr/lib/python3.13/os.py"], tree.Nodes.Select(n => n.Path));
    }

    [Fact]
    public void Alternatives_LinkTheHighestPriorityTargetPresent_LikeUpdateAlternatives()
    {
        var script = "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  update-alternatives --install /usr/lib/x86_64-linux-gnu/libblas.so.3 \\\n    libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/blas/libblas.so.3 10\nfi\n";
        var parsed = PackageUnpacker.ParseAlternatives(script);
        Assert.Equal([new AlternativeLink("/usr/lib/x86_64-linux-gnu/libblas.so.3", "libblas.so.3-x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3", 10)], parsed);
        var tree = new FsTree();
        tree.Set(File("usr/lib/x86_64-linux-gnu/blas/libblas.so.3"));
        var blas = new InstalledPackage { Name = "libblas3", Version = "1", Architecture = "amd64", ControlText = "", Alternatives = parsed };
        var openblas = new InstalledPackage { Name = "libopenblas0", Version = "1", Architecture = "amd64", ControlText = "",
            Alternatives = [new AlternativeLink("/usr/lib/x86_64-linux-gnu/libblas.so.3", "libblas.so.3-x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu/openblas/libblas.so.3", 100)] };
        Run(new DebianAlternatives(), tree, Context(null, true, blas, openblas));
        // openblas has the higher priority but is not in the image: the reference BLAS is linked.
        Assert.Equal("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3", tree.Get("usr/lib/x86_64-linux-gnu/libblas.so.3")!.LinkTarget);
    }

    private static readonly Dictionary<string, byte[]> Contents = new();

    private static FsNode Exe(string path, string content, string owner = "pkg", int mode = 493)
    {
        var bytes = Encoding.ASCII.GetBytes(content);
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        lock (Contents) Contents[sha] = bytes;
        return new FsNode { Path = path, Type = FsNodeType.File, Mode = mode, Owner = owner, ContentSha256 = sha, Size = bytes.Length };
    }

    private static HardeningContext ContentContext(params InstalledPackage[] packages) => Context(null, true, packages) with
    {
        ReadContent = n => { lock (Contents) return Contents[n.ContentSha256!]; },
    };

    private const string Elf = "\u007fELF\u0002\u0001\u0001\0\0\0";

    [Fact]
    public void NoSetuid_ClearsSetgidOnDirectories_A2777DirectoryBecomes0777()
    {
        var tree = new FsTree();
        tree.Set(new FsNode { Path = "var/spool/drop", Type = FsNodeType.Directory, Mode = Convert.ToInt32("2777", 8), Owner = "pkg" });
        tree.Set(new FsNode { Path = "srv/suid-dir", Type = FsNodeType.Directory, Mode = Convert.ToInt32("6755", 8), Owner = "pkg" });
        var actions = Run(new StripSetuid(), tree);
        Assert.Equal(Convert.ToInt32("777", 8), tree.Get("var/spool/drop")!.Mode);
        Assert.Equal(Convert.ToInt32("755", 8), tree.Get("srv/suid-dir")!.Mode);
        Assert.Contains(actions, a => a.Path == "var/spool/drop" && a.Detail == "mode 2777 → 777");
        // Then no-world-writable takes o+w: the directory ends 0775, neither setgid nor writable by others.
        Run(new NoWorldWritable(), tree);
        Assert.Equal(Convert.ToInt32("775", 8), tree.Get("var/spool/drop")!.Mode);
    }

    [Fact]
    public void NoShells_RemovesAShellUnderUsrLibexec_AndTheLinksToIt()
    {
        var tree = new FsTree();
        tree.Set(Exe("usr/libexec/vendor/sh", Elf + "a shell"));
        tree.Set(Link("usr/local/bin/vsh", "../../libexec/vendor/sh"));
        tree.Set(Exe("usr/libexec/vendor/helper", Elf + "not a shell"));
        var actions = Run(new RemoveShells(), tree, ContentContext());
        Assert.Equal(["usr/libexec/vendor/helper"], tree.Nodes.Select(n => n.Path));
        Assert.Contains(actions, a => a.Path == "usr/libexec/vendor/sh" && a.Detail.StartsWith("named 'sh'", StringComparison.Ordinal));
        Assert.Contains(actions, a => a.Path == "usr/local/bin/vsh" && a.Detail.StartsWith("a link to the removed /usr/libexec/vendor/sh", StringComparison.Ordinal));
    }

    [Fact]
    public void NoShells_RemovesARenamedBusybox_ByContent_ButKeepsOtherBinaries()
    {
        var tree = new FsTree();
        tree.Set(Exe("usr/lib/tools/helper", Elf + "BusyBox v1.36.1 (Debian 1:1.36.1-9) multi-call binary."));
        tree.Set(Exe("usr/lib/tools/quiet-dash", Elf + "PS1\0PS2\0PS4\0OPTIND\0IFS\0"));
        tree.Set(Exe("usr/bin/python3.13", Elf + "Python PS1 sys.ps1 IFS"));
        tree.Set(Exe("usr/share/tools/notes.txt", "BusyBox v1 multi-call binary", mode: 420));
        var actions = Run(new RemoveShells(), tree, ContentContext());
        Assert.Equal(["usr/bin/python3.13", "usr/share/tools/notes.txt"], tree.Nodes.Select(n => n.Path).Order());
        Assert.Contains(actions, a => a.Path == "usr/lib/tools/helper" && a.Detail.StartsWith("a BusyBox multi-call binary (by content)", StringComparison.Ordinal));
        Assert.Contains(actions, a => a.Path == "usr/lib/tools/quiet-dash" && a.Detail.StartsWith("a POSIX shell binary", StringComparison.Ordinal));
    }

    [Fact]
    public void NoShells_FindsShellsByPackage_LinkTarget_ShebangAndAlternatives()
    {
        var tree = new FsTree();
        tree.Set(Exe("usr/lib/bash/frobnicate", Elf + "loadable", owner: "bash"));                // by package
        tree.Set(Link("usr/bin/sh", "/opt/weird/interp"));                                        // link named sh
        tree.Set(Exe("opt/weird/interp", Elf + "x"));
        tree.Set(Exe("usr/bin/tool", "#!/usr/bin/env -S zsh -f\necho hi\n"));                      // shebang names zsh …
        tree.Set(Link("usr/bin/zsh", "../lib/zsh-bin/z"));                                        // … which is a link
        tree.Set(Exe("usr/lib/zsh-bin/z", Elf + "y"));
        tree.Set(Exe("usr/lib/kshell/k", Elf + "z", owner: "kpkg"));                              // alternatives target
        var kpkg = new InstalledPackage { Name = "kpkg", Version = "1", Architecture = "amd64", ControlText = "",
            Alternatives = [new AlternativeLink("/usr/bin/ksh", "ksh", "/usr/lib/kshell/k", 10)] };
        var actions = Run(new RemoveShells(), tree, ContentContext(kpkg));
        Assert.Equal(["usr/bin/tool"], tree.Nodes.Select(n => n.Path));
        Assert.Contains(actions, a => a.Path == "usr/lib/bash/frobnicate" && a.Detail.StartsWith("shipped by the shell package bash", StringComparison.Ordinal));
        Assert.Contains(actions, a => a.Path == "opt/weird/interp" && a.Detail.StartsWith("the target of the shell link /usr/bin/sh", StringComparison.Ordinal));
        Assert.Contains(actions, a => a.Path == "usr/lib/zsh-bin/z");
        Assert.Contains(actions, a => a.Path == "usr/lib/kshell/k" && a.Detail.StartsWith("the update-alternatives target for ksh", StringComparison.Ordinal));
    }

    [Fact]
    public void NoPackageManagers_FindsThemByPackageContentAndPath()
    {
        var tree = new FsTree();
        tree.Set(Exe("usr/libexec/dpkg/frob", Elf + "x", owner: "dpkg"));
        tree.Set(Exe("opt/bin/installer", Elf + "Debian '%s' package management program version %s."));
        tree.Set(Exe("usr/local/bin/getpkg", "#!/usr/bin/python3\nfrom pip._internal.cli.main import main\nmain()\n"));
        tree.Set(File("usr/local/lib/python3.13/site-packages/pip/__init__.py"));
        tree.Set(File("usr/local/lib/python3.13/site-packages/pipeline/__init__.py"));
        tree.Set(Exe("usr/local/bin/serve", "#!/usr/bin/python3\nimport server\n"));
        var actions = Run(new RemovePackageManagers(), tree, ContentContext());
        Assert.Equal(["usr/local/bin/serve", "usr/local/lib/python3.13/site-packages/pipeline/__init__.py"], tree.Nodes.Select(n => n.Path).Order());
        Assert.Contains(actions, a => a.Path == "opt/bin/installer" && a.Detail.StartsWith("a dpkg binary (by content)", StringComparison.Ordinal));
        Assert.Contains(actions, a => a.Path == "usr/local/bin/getpkg" && a.Detail.StartsWith("a pip entry point (by content)", StringComparison.Ordinal));
    }

    [Fact]
    public void RootOwned_ChownsPackageFiles_ButNotPayloadOrGeneratedEntries()
    {
        var tree = new FsTree();
        tree.Set(File("usr/lib/app/lib.so") with { Uid = 65532, Gid = 65532 });
        tree.Set(new FsNode { Path = "var/lib/app", Type = FsNodeType.Directory, Mode = 493, Uid = 0, Gid = 65532, Owner = "app" });
        tree.Set(File("srv/data", owner: "payload:data") with { Uid = 65532, Gid = 65532 });
        tree.Set(new FsNode { Path = "home/nonroot", Type = FsNodeType.Directory, Mode = 448, Uid = 65532, Gid = 65532, Owner = "harden:accounts" });
        var actions = Run(new RootOwnedPackageFiles(), tree);
        Assert.Equal((0, 0), (tree.Get("usr/lib/app/lib.so")!.Uid, tree.Get("usr/lib/app/lib.so")!.Gid));
        Assert.Equal((0, 0), (tree.Get("var/lib/app")!.Uid, tree.Get("var/lib/app")!.Gid));
        Assert.Equal(65532, tree.Get("srv/data")!.Uid);
        Assert.Equal(65532, tree.Get("home/nonroot")!.Uid);
        Assert.Equal(2, actions.Count);
    }
}
