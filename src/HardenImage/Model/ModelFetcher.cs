using System.Formats.Tar;
using System.Security.Cryptography;
using HardenImage.Common;
using HardenImage.Deb;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Signing;
using HardenImage.Common.Streams;

namespace HardenImage.Model;

/// <summary>A model fetched and verified into a directory.</summary>
public sealed record FetchedModel(Digest Manifest, string Directory, IReadOnlyList<ManifestFile> Files, ImageVerificationReport Verification)
{
    public long TotalBytes => Files.Sum(f => f.Size);
}

/// <summary>
/// The one model verifier (<c>harden model fetch</c>, <c>deploy --local</c>, the init container): pulls a model by
/// manifest digest, checks the cosign signature (and the attestations the policy requires) with the release key,
/// refuses anything that is not our ModelPack artifact, then streams each layer into a staging directory checking the
/// layer digest, the single regular file it must hold (path, size and SHA-256 as the signed manifest says) and
/// nothing else: no links, devices, absolute or '..' paths (threats S, T, E). Only when every layer has passed are the
/// files moved into place and made read-only; a refusal leaves the target as it was (empty, or absent).
/// </summary>
public sealed class ModelFetcher
{
    private readonly IRegistry _registry;
    private readonly ECDsa _publicKey;

    /// <summary>Does not take ownership of <paramref name="publicKey"/>.</summary>
    public ModelFetcher(IRegistry registry, ECDsa publicKey)
    {
        _registry = registry;
        _publicKey = publicKey;
    }

    /// <summary>
    /// <c>harden model fetch</c>'s work: <paramref name="reference"/> must pin a digest (a tag can be moved); the
    /// registry is reached with the run's one credential chain, the key may be a file or awskms://.
    /// </summary>
    /// <param name="require">Comma-separated attestations the model must also carry (sbom = the ML-BOM).</param>
    /// <summary>The reference pinned by digest and the required attestation names, or the one-line refusal; what a
    /// command checks before it sets up registry clients (their AWS options are judged after these).</summary>
    public static (ImageReference Reference, List<string> Required) CheckRequest(string reference, string require)
    {
        var parsed = ImageReference.Parse(reference);
        if (parsed.Digest == null)
            throw new HardenException($"{reference}: pin the model by digest (REPO@sha256:…, from artifacts/models.json); a tag can be moved");
        var required = require.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        foreach (var name in required) PredicateTypes.FromPolicyName(name);
        return (parsed, required);
    }

    public static async Task<FetchedModel> FetchReferenceAsync(RegistryClients clients, string reference, string keyReference, string into, string require,
        bool insecure, IProgress<string>? progress, CancellationToken ct)
    {
        var (parsed, required) = CheckRequest(reference, require);
        var registry = clients.Create(RegistryTarget.For(parsed), insecure);
        using var key = await new SignerFactory(KeyPasswordSource.FromEnvironmentOrTerminal(), AwsKmsOptions.For(clients.Aws)).PublicKeyFromReferenceAsync(keyReference, ct).ConfigureAwait(false);
        return await new ModelFetcher(registry, key).FetchAsync(parsed.Repository, Digest.Parse(parsed.Digest!), into,
            new VerificationPolicy { RequiredAttestations = required }, progress, ct).ConfigureAwait(false);
    }

    public async Task<FetchedModel> FetchAsync(string repository, Digest manifestDigest, string into, VerificationPolicy? policy = null,
        IProgress<string>? progress = null, CancellationToken ct = default)
    {
        var source = $"{_registry.Name}/{repository}@{manifestDigest}";
        var target = Path.GetFullPath(into);
        if (File.Exists(target)) throw new HardenException($"--into {into}: is a file; name a new or empty directory");
        var created = !Directory.Exists(target);
        if (!created && Directory.EnumerateFileSystemEntries(target).Any())
            throw new HardenException($"--into {into}: the directory is not empty; fetch into a new or empty directory (a model is never merged into other files)");

        // 1. The signature, before anything the manifest says is believed.
        var report = await new ImageVerifier(new RegistrySignatureStore(_registry, repository), _publicKey)
            .VerifyAsync(manifestDigest, policy ?? new VerificationPolicy(), ct).ConfigureAwait(false);
        if (!report.Passed)
            throw new HardenException($"{source}: refused, the model is not signed by this key as required: {string.Join("; ", report.Failures)}", exitCode: 1);

        // 2. The manifest: exactly the signed digest, and a ModelPack artifact of ours.
        var fetched = await _registry.GetManifestAsync(repository, manifestDigest.ToString(), ct).ConfigureAwait(false)
            ?? throw new HardenException($"{source}: manifest not found");
        if (Digest.Of(fetched.Bytes) != manifestDigest)
            throw new HardenException($"{source}: the registry returned a manifest with digest {Digest.Of(fetched.Bytes)}; refusing it", exitCode: 1);
        var manifest = OciJson.Deserialize<ImageManifest>(fetched.Bytes, source);
        var files = ModelArtifact.Files(manifest, source);
        await CheckConfigAsync(repository, manifest, source, ct).ConfigureAwait(false);

        // 3. The layers, into a staging directory inside the target (same file system: the final moves are renames).
        Directory.CreateDirectory(target);
        var staging = Path.Combine(target, $".tmp-harden-fetch-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        var moved = new List<string>();
        try
        {
            foreach (var file in files)
            {
                ct.ThrowIfCancellationRequested();
                progress?.Report($"layer {file.Layer + 1}/{files.Count}: {file.Path} ({file.Size} bytes)");
                await ExtractLayerAsync(repository, file, staging, source, ct).ConfigureAwait(false);
            }
            MakeReadOnly(staging);
            foreach (var entry in Directory.EnumerateFileSystemEntries(staging).ToList())
            {
                var destination = Path.Combine(target, Path.GetFileName(entry));
                if (Directory.Exists(entry)) Directory.Move(entry, destination);
                else File.Move(entry, destination);
                moved.Add(destination);
            }
            Directory.Delete(staging);
            // A directory we made becomes read-only too; one we were given (an init container's emptyDir, owned by
            // root) keeps its mode: the pod mounts it read-only into the server.
            if (created && !OperatingSystem.IsWindows()) File.SetUnixFileMode(target, ReadOnlyDirectory);
        }
        catch
        {
            RemoveTree(staging);
            // A move that failed half-way (a full disk, a racing writer) takes back what it had moved.
            foreach (var m in moved)
                if (Directory.Exists(m)) RemoveTree(m);
                else AtomicFile.TryDelete(m);
            if (created) RemoveTree(target);
            throw;
        }
        return new FetchedModel(manifestDigest, target, files, report);
    }

    private async Task CheckConfigAsync(string repository, ImageManifest manifest, string source, CancellationToken ct)
    {
        if (manifest.Config.Size is < 0 or > InputLimits.MaxOciDocumentBytes)
            throw new HardenException($"{source}: config size {manifest.Config.Size} is outside 0..{InputLimits.MaxOciDocumentBytes} bytes");
        byte[] bytes;
        try
        {
            await using var s = await _registry.GetBlobAsync(repository, manifest.Config.Digest, ct).ConfigureAwait(false);
            using var ms = new MemoryStream();
            await CopyBoundedAsync(s, ms, manifest.Config.Size, $"{source}: config {manifest.Config.Digest}", ct).ConfigureAwait(false);
            bytes = ms.ToArray();
        }
        catch (HardenException e) when (e is not RegistryException && !e.Message.StartsWith(source, StringComparison.Ordinal))
        {
            throw new HardenException($"{source}: config: {e.Message}", exitCode: 1, inner: e);
        }
        if (Digest.Of(bytes).ToString() != manifest.Config.Digest)
            throw new HardenException($"{source}: config blob does not match its digest {manifest.Config.Digest} (tampered)", exitCode: 1);
        var config = OciJson.Deserialize<ModelConfigDocument>(bytes, $"{source}: config");
        var layers = manifest.Layers.Select(l => l.Digest).ToList();
        if (config.ModelFs?.DiffIds is not { } diffIds || !diffIds.SequenceEqual(layers, StringComparer.Ordinal))
            throw new HardenException($"{source}: config modelfs.diffIds do not list the manifest's layers in order (uncompressed tar layers: diffId = digest)");
    }

    private async Task ExtractLayerAsync(string repository, ManifestFile file, string staging, string source, CancellationToken ct)
    {
        var layer = file.Descriptor;
        var where = $"{source}: layer {file.Layer} ({file.Path}, {layer.Digest})";
        var wrote = false;
        try
        {
            await using var blob = await _registry.GetBlobAsync(repository, layer.Digest, ct).ConfigureAwait(false);
            using var hashing = new LayerHashingStream(blob, layer.Size);
            // A tar we did not write may hold anything; every entry is judged before it touches the disk.
            using (var tar = new TarReader(hashing, leaveOpen: true))
            {
                while (await tar.GetNextEntryAsync(copyData: false, ct).ConfigureAwait(false) is { } entry)
                {
                    var path = DebPath.TryNormalise(entry.Name, out var problem);
                    if (path == null) throw new HardenException($"{where}: entry '{entry.Name}' is refused ({problem})", exitCode: 1);
                    switch (entry.EntryType)
                    {
                        case TarEntryType.Directory:
                            if (path.Length > 0 && !(file.Path.StartsWith(path + "/", StringComparison.Ordinal)))
                                throw new HardenException($"{where}: directory entry '{entry.Name}' is not a parent of the layer's file '{file.Path}'", exitCode: 1);
                            if (path.Length > 0) Directory.CreateDirectory(Path.Combine(staging, path));
                            break;
                        case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                            if (path != file.Path) throw new HardenException($"{where}: holds file '{entry.Name}', but the signed manifest says the layer is '{file.Path}'", exitCode: 1);
                            if (wrote) throw new HardenException($"{where}: holds '{file.Path}' twice", exitCode: 1);
                            if (entry.Length != file.Size) throw new HardenException($"{where}: '{file.Path}' is {entry.Length} bytes, the signed manifest says {file.Size}", exitCode: 1);
                            await WriteFileAsync(entry, Path.Combine(staging, path), file, where, ct).ConfigureAwait(false);
                            wrote = true;
                            break;
                        default:
                            throw new HardenException($"{where}: entry '{entry.Name}' is a {entry.EntryType}; a model layer holds one regular file and its directories (no links, devices or FIFOs)", exitCode: 1);
                    }
                }
            }
            // The end-of-archive blocks and any padding after them count towards the digest too.
            await hashing.DrainAsync(ct).ConfigureAwait(false);
            if (hashing.BytesRead != layer.Size)
                throw new HardenException($"{where}: blob is {hashing.BytesRead} bytes, the manifest says {layer.Size}", exitCode: 1);
            if (hashing.Digest() != layer.Digest)
                throw new HardenException($"{where}: blob content does not match the layer digest (got {hashing.Digest()}): tampered or corrupt, refusing the model", exitCode: 1);
        }
        catch (RegistryException e)
        {
            // Could not read the blob (network, auth, missing): an environment problem, not a verdict on the model.
            throw new HardenException($"{where}: {e.Message}", e.ExitCode, e);
        }
        catch (HardenException e) when (!e.Message.StartsWith(where, StringComparison.Ordinal))
        {
            // The registry's own digest check (or a size bound) fired first: still name the layer; the model is refused.
            throw new HardenException($"{where}: {e.Message}", exitCode: 1, inner: e);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new HardenException($"{where}: not a valid tar ({e.Message}); refusing the model", exitCode: 1, inner: e);
        }
        if (!wrote) throw new HardenException($"{where}: the layer holds no file '{file.Path}'", exitCode: 1);
    }

    private static async Task WriteFileAsync(TarEntry entry, string path, ManifestFile file, string where, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long written = 0;
        // CreateNew: never through something already there (the staging directory is ours and fresh).
        await using (var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            if (entry.DataStream is { } data)
            {
                var buffer = new byte[1 << 16];
                int n;
                while ((n = await data.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                {
                    written += n;
                    if (written > file.Size) throw new HardenException($"{where}: '{file.Path}' is longer than the signed {file.Size} bytes", exitCode: 1);
                    hash.AppendData(buffer, 0, n);
                    await output.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                }
            }
        }
        if (written != file.Size) throw new HardenException($"{where}: '{file.Path}' is {written} bytes, the signed manifest says {file.Size}", exitCode: 1);
        var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (sha != file.Sha256)
            throw new HardenException($"{where}: '{file.Path}' has SHA-256 {sha}, the signed manifest says {file.Sha256}", exitCode: 1);
    }

    private static async Task CopyBoundedAsync(Stream from, Stream to, long max, string what, CancellationToken ct)
    {
        var buffer = new byte[1 << 16];
        long total = 0;
        int n;
        while ((n = await from.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            total += n;
            if (total > max) throw new HardenException($"{what} is longer than its descriptor's {max} bytes", exitCode: 1);
            await to.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
        }
    }

    private const UnixFileMode ReadOnlyFile = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const UnixFileMode ReadOnlyDirectory = ReadOnlyFile | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>Files 0444, directories 0555, deepest first (a directory is made read-only after its contents).</summary>
    private static void MakeReadOnly(string root)
    {
        if (OperatingSystem.IsWindows()) return;
        foreach (var f in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)) File.SetUnixFileMode(f, ReadOnlyFile);
        foreach (var d in Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length))
            File.SetUnixFileMode(d, ReadOnlyDirectory);
    }

    /// <summary>Removes what a refused fetch staged (read-only modes first undone).</summary>
    private static void RemoveTree(string dir)
    {
        if (!Directory.Exists(dir)) return;
        if (!OperatingSystem.IsWindows())
            foreach (var d in Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories).Prepend(dir))
                File.SetUnixFileMode(d, ReadOnlyDirectory | UnixFileMode.UserWrite);
        Directory.Delete(dir, recursive: true);
    }

    /// <summary>Hashes and counts a layer blob as the tar reader consumes it; refuses bytes beyond the descriptor's size.</summary>
    private sealed class LayerHashingStream(Stream inner, long size) : ReadOnlyStream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public long BytesRead { get; private set; }

        public string Digest() => Oci.Digest.Prefix + Convert.ToHexStringLower(_hash.GetHashAndReset());

        public async Task DrainAsync(CancellationToken ct)
        {
            var buffer = new byte[1 << 16];
            while (await ReadAsync(buffer, ct).ConfigureAwait(false) > 0) { }
        }

        // A zero-length read is not passed on: the registry's DigestVerifyingStream takes a 0 result for the end of
        // the blob and verifies early (TarReader asks for 0 bytes for an empty file's data).
        public override int Read(Span<byte> buffer)
        {
            if (buffer.Length == 0) return 0;
            var n = inner.Read(buffer);
            Count(buffer[..n]);
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.Length == 0) return 0;
            var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            Count(buffer.Span[..n]);
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private void Count(ReadOnlySpan<byte> bytes)
        {
            BytesRead += bytes.Length;
            if (BytesRead > size) throw new HardenException($"blob is longer than its descriptor's {size} bytes", exitCode: 1);
            _hash.AppendData(bytes);
        }

        public override long Position { get => BytesRead; }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _hash.Dispose();
            base.Dispose(disposing);
        }
    }
}
