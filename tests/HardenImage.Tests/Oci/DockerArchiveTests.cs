using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Docker.DotNet;
using Docker.DotNet.Models;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;
using static HardenImage.Tests.Oci.OciTestImages;
using Platform = HardenImage.Oci.Platform;

namespace HardenImage.Tests.Oci;

public class DockerArchiveTests
{
    [Fact]
    public void Archive_HasDockerSaveShape_WithUncompressedLayersMatchingDiffIds()
    {
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        WriteImage(layout, "base", "1.0", SampleEntries(), "amd64");
        var image = new OciLayoutReader(layout).Resolve("base:1.0", new Platform { Architecture = "amd64" });

        using var ms = new MemoryStream();
        new DockerArchiveWriter(layout).Write(image, ["hardened/base:1.0"], ms);
        var files = ReadTar(ms.ToArray()).Where(e => e.EntryType == TarEntryType.RegularFile)
            .ToDictionary(e => e.Name, e => { using var m = new MemoryStream(); e.DataStream!.CopyTo(m); return m.ToArray(); });

        using var manifest = JsonDocument.Parse(files["manifest.json"]);
        var entry = Assert.Single(manifest.RootElement.EnumerateArray());
        var configName = entry.GetProperty("Config").GetString()!;
        Assert.Equal(Digest.Parse(image.Manifest.Config.Digest).Hex + ".json", configName);
        Assert.Equal(layout.ReadBlob(image.Manifest.Config.Digest), files[configName]);
        Assert.Equal(["hardened/base:1.0"], entry.GetProperty("RepoTags").EnumerateArray().Select(t => t.GetString()));
        var layerName = Assert.Single(entry.GetProperty("Layers").EnumerateArray()).GetString()!;
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(files[layerName])), image.Config.RootFs.DiffIds[0]);
    }

    [Fact]
    public void Archive_StoresARepeatedLayerOnce()
    {
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        var a = Writer().WriteLayer(layout, new LayerSpec("a", [LayerEntry.File("a", [1])]));
        var b = Writer().WriteLayer(layout, new LayerSpec("b", [LayerEntry.File("b", [2])]));
        new ImageWriter(layout, Epoch).WriteAndTag(new ImageSpec
        {
            Name = "twice",
            Platforms = [new PlatformImageSpec { Platform = new Platform { Architecture = "amd64" }, Layers = [a, b, a] }],
        });
        var image = new OciLayoutReader(layout).Resolve("twice", new Platform { Architecture = "amd64" });
        using var ms = new MemoryStream();
        new DockerArchiveWriter(layout).Write(image, ["twice:1"], ms);
        var entries = ReadTar(ms.ToArray());
        Assert.Equal(2, entries.Count(e => e.Name.EndsWith("/layer.tar", StringComparison.Ordinal)));
        var manifest = JsonDocument.Parse(entries.Single(e => e.Name == "manifest.json").DataStream!);
        var layers = manifest.RootElement[0].GetProperty("Layers").EnumerateArray().Select(l => l.GetString()).ToList();
        Assert.Equal(3, layers.Count);
        Assert.Equal(layers[0], layers[2]);
    }

    [Fact]
    public void Archive_RefusesALayerThatDoesNotMatchItsDiffId()
    {
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        WriteImage(layout, "base", "1.0", SampleEntries(), "amd64");
        var other = Writer().WriteLayer(layout, new LayerSpec("other", [LayerEntry.File("evil", [6, 6, 6])]));
        var image = new OciLayoutReader(layout).Resolve("base", new Platform { Architecture = "amd64" });
        // Swap the layer blob's bytes for another valid gzip tar: only the diff_id check can notice.
        File.Copy(layout.BlobPath(other.Descriptor.Digest), layout.BlobPath(image.Manifest.Layers[0].Digest), overwrite: true);
        var ex = Assert.Throws<HardenException>(() => new DockerArchiveWriter(layout).Write(image, ["x:1"], Stream.Null));
        Assert.Contains("diff_id", ex.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task DockerEngine_LoadsTheArchive_AndRunsAStaticBinaryAsNonRoot()
    {
        var dockerHost = RequiredService.DockerHost();
        var gcc = RequiredService.Tool("gcc", "gcc");
        using var dir = new TempDir();
        var binary = dir.Combine("whoami");
        RequiredService.RunOk(gcc, ["-static", "-Os", "-o", binary, Path.Combine(AppContext.BaseDirectory, "TestData", "Oci", "whoami.c")]);

        var layout = OciLayout.OpenOrCreate(dir.Combine("layout"));
        var layer = Writer().WriteLayer(layout, new LayerSpec("payload",
        [
            LayerEntry.File("usr/bin/whoami", LayerContent.FromFile(binary), Octal("755")),
            LayerEntry.File("etc/passwd", Encoding.ASCII.GetBytes("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n")),
            LayerEntry.Directory("tmp", Octal("1777")),
            LayerEntry.Directory("home/nonroot", Octal("700"), 65532, 65532),
        ]));
        var written = new ImageWriter(layout, Epoch).WriteAndTag(new ImageSpec
        {
            Name = "whoami",
            Version = "1.0",
            Platforms =
            [
                new PlatformImageSpec
                {
                    Platform = new Platform { Architecture = "amd64" },
                    Layers = [layer],
                    Config = new ContainerConfig { User = "65532:65532", Entrypoint = ["/usr/bin/whoami"], Cmd = ["hello"], WorkingDir = "/home/nonroot" },
                },
            ],
        });
        var image = new OciLayoutReader(layout).Resolve("whoami:1.0", new Platform { Architecture = "amd64" });
        var tag = $"hi-test/whoami:{Guid.NewGuid():N}";

        using var client = new DockerClientConfiguration(dockerHost).CreateClient();
        await using (var archive = new DockerArchiveWriter(layout).OpenRead(image, [tag]))
        {
            var messages = new List<JSONMessage>();
            await client.Images.LoadImageAsync(new ImageLoadParameters { Quiet = true }, archive, new Progress<JSONMessage>(messages.Add));
        }
        try
        {
            var inspected = await client.Images.InspectImageAsync(tag);
            // Docker's image ID is the digest of the config: it took our config bytes unchanged.
            Assert.Equal(written.Manifests[0].ConfigDescriptor.Digest, inspected.ID);

            var created = await client.Containers.CreateContainerAsync(new CreateContainerParameters
            {
                Image = tag,
                HostConfig = new HostConfig { NetworkMode = "none" },
            });
            try
            {
                await client.Containers.StartContainerAsync(created.ID, new ContainerStartParameters());
                var wait = await client.Containers.WaitContainerAsync(created.ID);
                using var logs = await client.Containers.GetContainerLogsAsync(created.ID, tty: false,
                    new ContainerLogsParameters { ShowStdout = true, ShowStderr = true }, CancellationToken.None);
                var (stdout, stderr) = await logs.ReadOutputToEndAsync(CancellationToken.None);
                Assert.True(wait.StatusCode == 0, $"container exited {wait.StatusCode}: {stderr}");
                Assert.Equal("uid=65532 gid=65532 arg=hello", stdout.Trim());
            }
            finally
            {
                await client.Containers.RemoveContainerAsync(created.ID, new ContainerRemoveParameters { Force = true });
            }
        }
        finally
        {
            await client.Images.DeleteImageAsync(tag, new ImageDeleteParameters { Force = true });
        }
    }
}
