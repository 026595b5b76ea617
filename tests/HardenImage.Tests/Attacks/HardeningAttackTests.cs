using System.Text;
using HardenImage.Build;
using HardenImage.Build.Hardening;
using HardenImage.Lock;
using HardenImage.Oci;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// A shell smuggled in through an image's payload (a pull request's <c>files:</c>) without its executable bit: the
/// dynamic loader runs it anyway (<c>/lib64/ld-linux-x86-64.so.2 /app/helper.bin sh</c>), so it must go.
/// </summary>
public sealed class HardeningAttackTests
{
    private const string Elf = "\u007fELF\u0002\u0001\u0001\0\0\0";

    private static FsNode Payload(string path, string content, int mode = 420) => new()
    {
        Path = path, Type = FsNodeType.File, Mode = mode, Owner = "payload:app/" + Path.GetFileName(path),
        Inline = Encoding.ASCII.GetBytes(content), Size = content.Length,
    };

    private static HardeningContext Context() => new()
    {
        Image = new ImageDefinition { Name = "app", File = "app.yaml" },
        Architecture = "amd64",
        IsRootImage = true,
        Packages = [],
        ReadContent = n => n.Inline!,
    };

    [Fact]
    public void NonExecutablePayloadShell_RunnableThroughTheDynamicLoader_IsRemoved()
    {
        var tree = new FsTree();
        tree.Set(Payload("app/helper.bin", Elf + "BusyBox v1.36.1 (Debian 1:1.36.1-9) multi-call binary."));
        tree.Set(Payload("app/libquiet.so", Elf + "PS1\0PS2\0PS4\0OPTIND\0IFS\0", mode: 0b110_100_100));
        tree.Set(Payload("app/model.bin", Elf + "weights, not a shell"));
        tree.Set(Payload("app/README.txt", "BusyBox v1 multi-call binary (prose, not ELF)"));
        var actions = new List<HardeningAction>();
        new RemoveShells().Apply(tree, Context(), actions);

        Assert.Equal(["app/README.txt", "app/model.bin"], tree.Nodes.Select(n => n.Path).Order());
        Assert.Contains(actions, a => a.Path == "app/helper.bin" && a.Detail == "a BusyBox multi-call binary (by content); from payload:app/helper.bin");
        Assert.Contains(actions, a => a.Path == "app/libquiet.so" && a.Detail.StartsWith("a POSIX shell binary", StringComparison.Ordinal));
    }

    [Fact]
    public void NonExecutablePayloadDpkg_IsRemoved()
    {
        var tree = new FsTree();
        tree.Set(Payload("app/tool.dat", Elf + "Debian 'dpkg' package management program version 1.22"));
        var actions = new List<HardeningAction>();
        new RemovePackageManagers().Apply(tree, Context(), actions);
        Assert.Empty(tree.Nodes);
        Assert.Contains(actions, a => a.Path == "app/tool.dat" && a.Detail.StartsWith("a dpkg binary (by content)", StringComparison.Ordinal));
    }
}
