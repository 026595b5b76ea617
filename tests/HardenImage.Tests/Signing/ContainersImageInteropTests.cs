using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using HardenImage.Oci;
using HardenImage.Signing;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Signing;

/// <summary>
/// Our .sig artifact goes through real tools: skopeo (containers/image) pushes it to a real distribution registry
/// beside the image and pulls it back with digests preserved, and it still verifies. (Debian's skopeo has its
/// sigstore verification disabled, "Debian-local change", so it cannot serve as the independent verifier.)
/// </summary>
public class ContainersImageInteropTests
{
    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private static Digest WriteTinyImage(OciLayout layout, string tag)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Ustar, leaveOpen: true))
        {
            var entry = new UstarTarEntry(TarEntryType.RegularFile, "hello.txt")
            {
                DataStream = new MemoryStream("hello from harden\n"u8.ToArray()),
                ModificationTime = DateTimeOffset.UnixEpoch,
                Mode = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            };
            writer.WriteEntry(entry);
        }
        var uncompressed = tar.ToArray();
        using var gz = new MemoryStream();
        using (var z = new GZipStream(gz, CompressionLevel.Optimal, leaveOpen: true)) z.Write(uncompressed);
        var layer = layout.WriteBlob(gz.ToArray(), MediaTypes.LayerGzip);
        var config = layout.WriteJson(new ImageConfig
        {
            Architecture = "amd64",
            RootFs = new RootFs { DiffIds = [Digest.Of(uncompressed).ToString()] },
        }, MediaTypes.ImageConfig);
        var manifest = layout.WriteJson(new ImageManifest { Config = config, Layers = [layer] }, MediaTypes.ImageManifest);
        layout.Tag(tag, manifest);
        return Digest.Parse(manifest.Digest);
    }

    [Fact]
    public async Task SignatureArtifact_SurvivesRealRegistryRoundTrip_AndStillVerifies()
    {
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        var registryBin = RequiredService.Tool("docker-registry", "docker-registry");
        using var dir = new TempDir("hi-sig-interop");
        var port = FreePort();
        File.WriteAllText(dir.Combine("registry.yml"),
            $"version: 0.1\nstorage: {{filesystem: {{rootdirectory: {dir.Combine("registry-data")}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\nlog: {{level: error}}\n");
        using var registry = Process.Start(new ProcessStartInfo(registryBin, ["serve", dir.Combine("registry.yml")])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        try
        {
            using (var http = new HttpClient())
            {
                var deadline = DateTime.UtcNow.AddSeconds(60);
                while (true)
                {
                    try
                    {
                        if ((await http.GetAsync($"http://127.0.0.1:{port}/v2/")).IsSuccessStatusCode) break;
                    }
                    catch (HttpRequestException) when (DateTime.UtcNow < deadline) { }
                    Assert.True(DateTime.UtcNow < deadline, "docker-registry did not start");
                    await Task.Delay(100);
                }
            }

            var layout = OciLayout.OpenOrCreate(dir.Combine("layout"));
            var image = WriteTinyImage(layout, "app");
            var repo = $"127.0.0.1:{port}/harden/app";
            using var key = SigningTestData.NewKey();
            var signer = new ImageSigner(new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true))), new OciLayoutSignatureStore(layout));
            await signer.SignAsync(repo, image);
            var sigTag = CosignSignatureManifest.SignatureTag(image);

            RequiredService.RunOk(skopeo, ["copy", "--dest-tls-verify=false", $"oci:{layout.Root}:app", $"docker://{repo}:v1"]);
            RequiredService.RunOk(skopeo, ["copy", "--dest-tls-verify=false", "--preserve-digests", $"oci:{layout.Root}:{sigTag}", $"docker://{repo}:{sigTag}"]);
            var pushedDigest = RequiredService.RunOk(skopeo, ["inspect", "--tls-verify=false", "--format", "{{.Digest}}", $"docker://{repo}:v1"]).Trim();
            Assert.Equal(image.ToString(), pushedDigest);

            // Pull the signature back through the registry into a fresh layout and verify it there.
            RequiredService.RunOk(skopeo, ["copy", "--src-tls-verify=false", "--preserve-digests", $"docker://{repo}:{sigTag}", $"oci:{dir.Combine("pulled")}:{sigTag}"]);
            var pulled = new OciLayoutSignatureStore(OciLayout.Open(dir.Combine("pulled")));
            var report = await new ImageVerifier(pulled, key).VerifyAsync(image, new VerificationPolicy());
            Assert.True(report.Passed, string.Join("\n", report.Failures));
            Assert.Equal(repo, report.Signatures.Checks.Single(c => c.Valid).Claim!.DockerReference);

            using var stranger = SigningTestData.NewKey();
            Assert.False((await new ImageVerifier(pulled, stranger).VerifyAsync(image, new VerificationPolicy())).Passed);
        }
        finally
        {
            try { registry.Kill(); } catch (InvalidOperationException) { }
            registry.WaitForExit(5000);
        }
    }
}
