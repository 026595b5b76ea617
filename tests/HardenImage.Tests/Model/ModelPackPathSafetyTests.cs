using HardenImage.Common;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Model;

/// <summary>
/// A model directory is published and signed as it is: a symlink, a hard link, a FIFO or a device in it could carry a
/// host file (a key, /etc/shadow) into the artifact or hang the pack, so each is refused naming it, and the layout
/// keeps what it had (threats I, T, D).
/// </summary>
public class ModelPackPathSafetyTests
{
    private static void AssertRefused(ModelTestKit kit, string expected)
    {
        var before = File.ReadAllText(kit.Layout.IndexPath);
        var ex = Assert.Throws<HardenException>(() => kit.Pack());
        Assert.Contains(expected, ex.Message);
        Assert.Contains("regular files and directories", ex.Message);
        Assert.Equal(before, File.ReadAllText(kit.Layout.IndexPath));
        Assert.Empty(Directory.EnumerateFiles(kit.Layout.BlobsDir, ".tmp-*"));
    }

    [Fact]
    public void Pack_RefusesSymlinkToAHostFile()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        File.WriteAllText(kit.Combine("secret.key"), "-----BEGIN PRIVATE KEY-----");
        File.CreateSymbolicLink(Path.Combine(kit.ModelDir, "neuron", "weights.bin"), kit.Combine("secret.key"));
        AssertRefused(kit, "neuron/weights.bin: is a symlink");
    }

    [Fact]
    public void Pack_RefusesSymlinkedSubdirectory_PathTraversalOutOfTheModel()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        Directory.CreateDirectory(kit.Combine("outside"));
        File.WriteAllText(kit.Combine("outside", "passwd"), "root:x:0:0");
        Directory.CreateSymbolicLink(Path.Combine(kit.ModelDir, "escape"), Path.Combine("..", "outside"));
        AssertRefused(kit, "escape: is a symlink");
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void Pack_RefusesHardLinkedFile()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        File.WriteAllText(kit.Combine("host-file"), "secret");
        RequiredService.RunOk("ln", [kit.Combine("host-file"), Path.Combine(kit.ModelDir, "linked.bin")]);
        AssertRefused(kit, "linked.bin: has 2 hard links");
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void Pack_RefusesFifo_InsteadOfHanging()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        RequiredService.RunOk("mkfifo", [Path.Combine(kit.ModelDir, "pipe")]);
        AssertRefused(kit, "pipe: is a FIFO, not a regular file");
    }

    [Fact]
    public void Pack_RefusesAnEmptyDirectory()
    {
        using var kit = new ModelTestKit();
        Directory.CreateDirectory(kit.ModelDir);
        var ex = Assert.Throws<HardenException>(() => kit.Pack());
        Assert.Contains("no files to pack", ex.Message);
    }

    [Fact]
    public void Pack_ModelDirectoryItselfMayBeReachedThroughASymlink()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var link = kit.Combine("model-link");
        Directory.CreateSymbolicLink(link, kit.ModelDir);
        Assert.Equal(kit.Pack().Manifest.Digest, kit.Pack(dir: link).Manifest.Digest);
    }
}
