using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using HardenImage.Common;
using HardenImage.Model;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Signing;

namespace HardenImage.Tests.Model;

/// <summary>
/// `harden model fetch` is the one verifier between a registry and the files a server loads. Each danger is built
/// for real in an OCI layout registry (blobs flipped on disk, artifacts signed by other keys, hostile tars signed by
/// the release key itself) and must be refused with its specific reason, leaving the target directory untouched.
/// </summary>
public class ModelFetchTests
{
    private static readonly UnixFileMode ReadOnlyFile = (UnixFileMode)Convert.ToInt32("444", 8);
    private static readonly UnixFileMode ReadOnlyDir = (UnixFileMode)Convert.ToInt32("555", 8);

    [Fact]
    public async Task Fetch_SignedModel_ExtractsEveryFileReadOnly_ExactlyAsPacked()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var model = await kit.PublishAsync();
        var into = kit.Combine("fetched");
        var fetched = await kit.FetchAsync(model, into, policy: new VerificationPolicy { RequiredAttestations = ["sbom"] });

        Assert.Equal(7, fetched.Files.Count);
        foreach (var f in Directory.EnumerateFiles(kit.ModelDir, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(kit.ModelDir, f);
            Assert.Equal(File.ReadAllBytes(f), File.ReadAllBytes(Path.Combine(into, rel)));
            Assert.Equal(ReadOnlyFile, File.GetUnixFileMode(Path.Combine(into, rel)));
        }
        Assert.Equal(ReadOnlyDir, File.GetUnixFileMode(Path.Combine(into, "neuron", "deep")));
        Assert.Equal(ReadOnlyDir, File.GetUnixFileMode(into));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(into), e => Path.GetFileName(e).StartsWith(".tmp", StringComparison.Ordinal));
        // The extracted tree is exactly the signed manifest's, file by file.
        Assert.Empty(ExtractedModelVerifier.Verify(ModelArtifact.Files(kit.Manifest(model), "test"), into));
    }

    [Fact]
    public async Task Fetch_FlippedByteInALayerBlob_IsRefusedNamingTheLayer_AndLeavesNothing()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var model = await kit.PublishAsync();
        var layer = kit.Manifest(model).Layers.Select((l, i) => (l, i)).Single(x => x.l.Annotations![ModelPackFormat.FilePathAnnotation] == "model.safetensors");
        var blob = kit.RegistryBlob(model.Repository, layer.l.Digest);
        var bytes = File.ReadAllBytes(blob);
        bytes[bytes.Length / 2] ^= 0x01; // inside the weights, not a header
        File.WriteAllBytes(blob, bytes);

        var into = kit.Combine("fetched");
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, into));
        Assert.Contains($"layer {layer.i} (model.safetensors, {layer.l.Digest})", ex.Message);
        Assert.Contains("SHA-256", ex.Message);
        Assert.Equal(1, ex.ExitCode);
        Assert.False(Directory.Exists(into));
    }

    [Fact]
    public async Task Fetch_FlippedByteInATarHeader_IsRefusedNamingTheLayer()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var model = await kit.PublishAsync();
        var layer = kit.Manifest(model).Layers.Single(l => l.Annotations![ModelPackFormat.FilePathAnnotation] == "config.json");
        var blob = kit.RegistryBlob(model.Repository, layer.Digest);
        var bytes = File.ReadAllBytes(blob);
        bytes[3] ^= 0x01; // the entry name in the first header
        File.WriteAllBytes(blob, bytes);
        Directory.CreateDirectory(kit.Combine("empty-target"));

        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("empty-target")));
        Assert.Contains($"(config.json, {layer.Digest})", ex.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(kit.Combine("empty-target")));
    }

    [Fact]
    public async Task Fetch_FlippedByteInTheConfigBlob_IsRefused()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var model = await kit.PublishAsync();
        var config = kit.Manifest(model).Config;
        var blob = kit.RegistryBlob(model.Repository, config.Digest);
        var bytes = File.ReadAllBytes(blob);
        bytes[^3] ^= 0x01;
        File.WriteAllBytes(blob, bytes);
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched")));
        Assert.Contains("config", ex.Message);
        Assert.Contains(config.Digest, ex.Message);
        Assert.Equal(1, ex.ExitCode);
        Assert.False(Directory.Exists(kit.Combine("fetched")));
    }

    [Fact]
    public async Task Fetch_ModelSignedByAnotherKey_IsRefused()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        using var stranger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var model = await kit.PublishAsync(signWith: stranger);
        var into = kit.Combine("fetched");
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, into));
        Assert.Contains("not signed by this key", ex.Message);
        Assert.Contains("does not verify with the given public key", ex.Message);
        Assert.Equal(1, ex.ExitCode);
        Assert.False(Directory.Exists(into));
    }

    [Fact]
    public async Task Fetch_UnsignedModel_IsRefused()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        kit.Pack();
        var model = (await new ModelPusher(kit.Layout, kit.Registry, kit.Target).PushAsync(ModelPusher.ModelsIn(kit.Layout))).Single();
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched")));
        Assert.Contains("no signature", ex.Message);
    }

    [Fact]
    public async Task Fetch_RequiredMlBomMissing_IsRefused()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        kit.Pack();
        var model = (await new ModelPusher(kit.Layout, kit.Registry, kit.Target).PushAsync(ModelPusher.ModelsIn(kit.Layout))).Single();
        using (var signer = new EcdsaFileSigner(ECDsa.Create(kit.Key.ExportParameters(true))))
            await new ImageSigner(signer, new RegistrySignatureStore(kit.Registry, model.Repository)).SignAsync(model.Repository, Digest.Parse(model.Digest));
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched"), policy: new VerificationPolicy { RequiredAttestations = ["sbom"] }));
        Assert.Contains("required attestation 'sbom'", ex.Message);
    }

    [Fact]
    public async Task Fetch_ArtifactWhoseConfigIsNotModelPack_IsRefused_EvenWhenSigned()
    {
        using var kit = new ModelTestKit();
        var hostile = new HostileArtifact(kit) { ConfigMediaType = MediaTypes.ImageConfig, ArtifactType = null };
        hostile.AddFile("model.bin", "weights"u8.ToArray());
        var model = await hostile.PublishAsync();
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched")));
        Assert.Contains($"config media type is {MediaTypes.ImageConfig}, not application/vnd.cncf.model.config.v1+json", ex.Message);
        Assert.False(Directory.Exists(kit.Combine("fetched")));
    }

    [Fact]
    public async Task Fetch_AnotherArtifactType_IsRefused()
    {
        using var kit = new ModelTestKit();
        var hostile = new HostileArtifact(kit) { ArtifactType = "application/vnd.example.other+json" };
        hostile.AddFile("model.bin", "weights"u8.ToArray());
        var model = await hostile.PublishAsync();
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched")));
        Assert.Contains("artifactType is application/vnd.example.other+json", ex.Message);
    }

    [Theory]
    [InlineData("../escape.bin", "'..' segment")]
    [InlineData("/etc/cron.d/evil", "absolute path")]
    [InlineData("a/./b.bin", "not a normalised relative path")]
    public async Task Fetch_HostileFilePathAnnotation_IsRefused_PathTraversal(string path, string reason)
    {
        using var kit = new ModelTestKit();
        var hostile = new HostileArtifact(kit);
        hostile.AddFile(path, "x"u8.ToArray());
        var model = await hostile.PublishAsync();
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched")));
        Assert.Contains($"file path '{path}' is refused ({reason})", ex.Message);
        Assert.False(File.Exists(kit.Combine("escape.bin")));
    }

    [Fact]
    public async Task Fetch_HostileTarWithSymlinkEntry_IsRefused_EvenWhenSignedByTheReleaseKey()
    {
        using var kit = new ModelTestKit();
        var hostile = new HostileArtifact(kit);
        hostile.AddLayer("model.bin", "x"u8.ToArray(), tar =>
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "model.bin") { LinkName = "/etc/shadow" });
        });
        var model = await hostile.PublishAsync();
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched")));
        Assert.Contains("entry 'model.bin' is a SymbolicLink", ex.Message);
        Assert.False(Directory.Exists(kit.Combine("fetched")));
    }

    [Theory]
    [InlineData("../../escape.bin", "'..' segment")]
    [InlineData("/tmp/escape.bin", "absolute path")]
    public async Task Fetch_HostileTarEntryEscapingTheTarget_IsRefused(string entryName, string reason)
    {
        using var kit = new ModelTestKit();
        var hostile = new HostileArtifact(kit);
        hostile.AddLayer("model.bin", "x"u8.ToArray(), tar =>
        {
            var e = new PaxTarEntry(TarEntryType.RegularFile, entryName) { DataStream = new MemoryStream("x"u8.ToArray()) };
            tar.WriteEntry(e);
        });
        var model = await hostile.PublishAsync();
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("t", "fetched")));
        Assert.Contains($"entry '{entryName}' is refused ({reason})", ex.Message);
        Assert.False(File.Exists(kit.Combine("escape.bin")));
    }

    [Fact]
    public async Task Fetch_LayerHoldingAnotherFileThanTheSignedPath_IsRefused()
    {
        using var kit = new ModelTestKit();
        var hostile = new HostileArtifact(kit);
        hostile.AddLayer("model.bin", "x"u8.ToArray(), tar =>
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "other.bin") { DataStream = new MemoryStream("x"u8.ToArray()) }));
        var model = await hostile.PublishAsync();
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched")));
        Assert.Contains("holds file 'other.bin', but the signed manifest says the layer is 'model.bin'", ex.Message);
    }

    [Fact]
    public async Task Fetch_FileWhoseBytesDifferFromTheSignedSha256_IsRefused()
    {
        using var kit = new ModelTestKit();
        var hostile = new HostileArtifact(kit);
        hostile.AddFile("model.bin", "real weights"u8.ToArray(), claimedSha256: Sha256Hex.Of("other weights"u8));
        var model = await hostile.PublishAsync();
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched")));
        Assert.Contains($"'model.bin' has SHA-256 {Sha256Hex.Of("real weights"u8)}, the signed manifest says {Sha256Hex.Of("other weights"u8)}", ex.Message);
    }

    [Fact]
    public async Task Fetch_IntoAGivenEmptyDirectory_FillsIt_AndKeepsItsMode()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var model = await kit.PublishAsync();
        var into = kit.Combine("emptydir");
        Directory.CreateDirectory(into);
        var mode = (UnixFileMode)Convert.ToInt32("2775", 8);
        File.SetUnixFileMode(into, mode);
        await kit.FetchAsync(model, into);
        Assert.Equal(mode, File.GetUnixFileMode(into));
        Assert.Equal(ReadOnlyFile, File.GetUnixFileMode(Path.Combine(into, "model.safetensors")));
        Assert.Equal(ReadOnlyDir, File.GetUnixFileMode(Path.Combine(into, "neuron")));
    }

    [Fact]
    public async Task Fetch_IntoANonEmptyDirectory_IsRefused_AndItsFilesStay()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var model = await kit.PublishAsync();
        var into = kit.Combine("fetched");
        Directory.CreateDirectory(into);
        File.WriteAllText(Path.Combine(into, "keep.txt"), "mine");
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, into));
        Assert.Contains("is not empty", ex.Message);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(into, "keep.txt")));
    }

    [Fact]
    public async Task ExtractedTree_WithASwappedFile_FailsTheVerifierAgainstTheSignedManifest()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var model = await kit.PublishAsync();
        var into = kit.Combine("fetched");
        await kit.FetchAsync(model, into);
        var victim = Path.Combine(into, "tokenizer.json");
        File.SetUnixFileMode(into, (UnixFileMode)Convert.ToInt32("755", 8));
        File.SetUnixFileMode(victim, (UnixFileMode)Convert.ToInt32("644", 8));
        File.WriteAllText(victim, "{\"vocab\":[\"x\",\"y\",\"z\"]}");
        File.WriteAllText(Path.Combine(into, "extra.py"), "import os");
        var problems = ExtractedModelVerifier.Verify(ModelArtifact.Files(kit.Manifest(model), "test"), into);
        Assert.Contains(problems, p => p.StartsWith("tokenizer.json: SHA-256 ", StringComparison.Ordinal));
        Assert.Contains("extra.py: not in the signed model", problems);
    }
}

/// <summary>
/// Builds an artifact by hand, the way an attacker holding the release key (or a bug in another packer) would, and
/// publishes it signed by the kit's key: whatever the fetcher refuses here, it refuses on content, not on signature.
/// </summary>
internal sealed class HostileArtifact(ModelTestKit kit)
{
    private readonly List<(Descriptor Layer, byte[] Blob)> _layers = [];

    public string ConfigMediaType { get; init; } = ModelPackFormat.ConfigMediaType;
    public string? ArtifactType { get; init; } = ModelPackFormat.ArtifactType;
    /// <summary>Added to each layer descriptor's size in the manifest (the blob pushed is unchanged): a layer larger than declared.</summary>
    public long LayerSizeDelta { get; init; }
    /// <summary>Each layer listed this many times in the manifest (and in modelfs.diffIds).</summary>
    public int LayerRepeat { get; init; } = 1;

    public void AddFile(string path, byte[] content, string? claimedSha256 = null) =>
        AddLayer(path, content, tar => tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path.TrimStart('/')) { DataStream = new MemoryStream(content) }), claimedSha256);

    public void AddLayer(string annotatedPath, byte[] annotatedContent, Action<TarWriter> write, string? claimedSha256 = null)
    {
        using var ms = new MemoryStream();
        using (var tar = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true)) write(tar);
        var blob = ms.ToArray();
        var metadata = JsonSerializer.Serialize(new ModelFileMetadata
        {
            Name = Path.GetFileName(annotatedPath), Mode = 420, Size = annotatedContent.Length, ModTime = "1970-01-01T00:00:00Z",
        }, OciJson.Options);
        _layers.Add((new Descriptor
        {
            MediaType = ModelPackFormat.WeightLayer,
            Digest = Digest.Of(blob).ToString(),
            Size = blob.Length,
            Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal)
            {
                [ModelPackFormat.FilePathAnnotation] = annotatedPath,
                [ModelPackFormat.FileMetadataAnnotation] = metadata,
                [ModelPackFormat.FileSha256Annotation] = claimedSha256 ?? Sha256Hex.Of(annotatedContent),
            },
        }, blob));
    }

    public async Task<PushedModel> PublishAsync(string repository = "models/hostile")
    {
        foreach (var (layer, blob) in _layers)
            await kit.Registry.PushBlobAsync(repository, layer, new MemoryStream(blob));
        var config = OciJson.Serialize(new ModelConfigDocument
        {
            Descriptor = new ModelDescriptorFields { Name = "hostile", Version = "1" },
            Config = new ModelTechnicalFields(),
            ModelFs = new ModelFs { DiffIds = Listed().Select(l => l.Digest).ToList() },
        });
        var configDescriptor = new Descriptor { MediaType = ConfigMediaType, Digest = Digest.Of(config).ToString(), Size = config.Length };
        await kit.Registry.PushBlobAsync(repository, configDescriptor, new MemoryStream(config));
        var manifest = OciJson.Serialize(new ImageManifest { ArtifactType = ArtifactType, Config = configDescriptor, Layers = Listed().ToList() });
        var digest = await kit.Registry.PutManifestAsync(repository, "1", manifest, MediaTypes.ImageManifest);
        var model = new PushedModel { Name = "hostile", Repository = repository, Version = "1", Digest = digest, Reference = "", MlBom = "" };
        using var signer = new EcdsaFileSigner(ECDsa.Create(kit.Key.ExportParameters(true)));
        await new ImageSigner(signer, new RegistrySignatureStore(kit.Registry, repository)).SignAsync(repository, Digest.Parse(digest));
        return model;
    }

    private IEnumerable<Descriptor> Listed() =>
        _layers.SelectMany(l => Enumerable.Repeat(l.Layer with { Size = l.Layer.Size + LayerSizeDelta }, LayerRepeat));
}
