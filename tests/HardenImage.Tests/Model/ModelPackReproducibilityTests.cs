using HardenImage.Model;

namespace HardenImage.Tests.Model;

/// <summary>Same files ⇒ same manifest digest, whatever the disk says about order, time, owner or mode (threat T, R).</summary>
public class ModelPackReproducibilityTests
{
    [Fact]
    public void Pack_SameFilesWrittenInAnotherOrderWithOtherTimesAndModes_GiveTheSameDigest()
    {
        using var kit = new ModelTestKit();
        var a = kit.WriteModel(kit.Combine("a"));
        var b = kit.WriteModel(kit.Combine("b"), reverseOrder: true);
        foreach (var f in Directory.EnumerateFiles(b, "*", SearchOption.AllDirectories))
        {
            File.SetLastWriteTimeUtc(f, new DateTime(2031, 5, 6, 7, 8, 9, DateTimeKind.Utc));
            File.SetUnixFileMode(f, (UnixFileMode)Convert.ToInt32("600", 8));
        }
        var first = kit.Pack(dir: a);
        var second = kit.Pack(dir: b);
        Assert.Equal(first.Manifest.Digest, second.Manifest.Digest);
        Assert.Equal(MlBomWriter.Write(first, ModelTestKit.Card), MlBomWriter.Write(second, ModelTestKit.Card));
    }

    [Fact]
    public void Pack_OneFlippedByte_ChangesTheDigest()
    {
        using var kit = new ModelTestKit();
        var a = kit.WriteModel(kit.Combine("a"));
        var b = kit.WriteModel(kit.Combine("b"));
        var victim = Path.Combine(b, "neuron", "graph.neff");
        var bytes = File.ReadAllBytes(victim);
        bytes[123] ^= 1;
        File.WriteAllBytes(victim, bytes);
        Assert.NotEqual(kit.Pack(dir: a).Manifest.Digest, kit.Pack(dir: b).Manifest.Digest);
    }
}
