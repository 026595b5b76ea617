using System.Diagnostics;
using HardenImage.Model;
using HardenImage.Oci;
using Xunit.Abstractions;

namespace HardenImage.Tests.Model;

/// <summary>
/// A 7B model is ~15 GB: pack must stream. A 2 GiB sparse file (past int.MaxValue, so 32-bit offsets overflow;
/// no disk cost to create; read back as 2 GiB of zeros, written once into the layout) in a sub-directory, next to a small one, is packed while the managed allocations of the packing thread
/// are counted: streaming means they stay in the low megabytes whatever the file size (threat D: a pack that buffers
/// a file dies on a big model, or takes the build machine with it).
/// </summary>
// Integration: writes a 4 GiB blob to the disk (about 35 s), too heavy for the unit run.
[Trait("Category", "Integration")]
public class ModelPackLargeSparseFileTests(ITestOutputHelper output)
{
    private const long Size = 2L << 30;
    // sha256 of 2 GiB of zero bytes followed by "end" (python3 hashlib, 1 MiB blocks).
    private const string ExpectedSha256 = "8d936ca12b41f4297b186a6fc0f1dbb46919fa7c01849014149abbfaa9a0e980";

    [Fact]
    public void Pack_HugeSparseFileInASubdirectory_StreamsWithBoundedMemory()
    {
        using var kit = new ModelTestKit();
        var shard = Path.Combine(kit.ModelDir, "neuron", "compiled", "model.neff");
        Directory.CreateDirectory(Path.GetDirectoryName(shard)!);
        using (var f = new FileStream(shard, FileMode.CreateNew))
        {
            f.SetLength(Size);
            f.Seek(Size, SeekOrigin.Begin);
            f.Write("end"u8);
        }
        File.WriteAllText(Path.Combine(kit.ModelDir, "config.json"), "{}");
        var progress = new List<ModelPackProgress>();

        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        var packed = new ModelPacker(kit.Layout).Pack(new ModelPackRequest(kit.ModelDir, "big", "1", ModelCard.Empty), new SyncProgress(progress.Add));
        clock.Stop();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        output.WriteLine($"packed {Size + 3:N0} bytes in {clock.Elapsed.TotalSeconds:0.0} s ({(Size + 3) / 1e6 / clock.Elapsed.TotalSeconds:0} MB/s), allocated {allocated / 1e6:0.0} MB on the packing thread");

        Assert.True(allocated < 32L << 20, $"packing a 2 GiB file allocated {allocated:N0} bytes: it is buffered, not streamed");
        var file = packed.Files.Single(f => f.Path == "neuron/compiled/model.neff");
        Assert.Equal(Size + 3, file.Size);
        Assert.Equal(ExpectedSha256, file.Sha256);
        var manifest = kit.Layout.ReadJson<ImageManifest>(packed.Manifest.Digest);
        var layer = manifest.Layers.Single(l => l.Digest == file.LayerDigest);
        // dirs neuron/ and neuron/compiled/ (512 each), file header 512, data padded to 512, end of archive 1024.
        Assert.Equal(3 * 512 + ((Size + 3 + 511) / 512 * 512) + 1024, layer.Size);
        Assert.Equal(new FileInfo(kit.Layout.BlobPath(layer.Digest)).Length, layer.Size);
        // Progress came in steps while the big file streamed, not once at the end.
        Assert.True(progress.Count(p => p.Path == file.Path) >= 30, $"only {progress.Count(p => p.Path == file.Path)} progress reports for a 2 GiB file (one per 64 MiB)");
        Assert.Equal(Size + 3, progress.Last(p => p.Path == file.Path).Done);
    }

    private sealed class SyncProgress(Action<ModelPackProgress> report) : IProgress<ModelPackProgress>
    {
        public void Report(ModelPackProgress value) => report(value);
    }
}
