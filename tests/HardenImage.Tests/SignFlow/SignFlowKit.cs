using System.Diagnostics;
using System.Text;
using System.Text.Json;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Signing;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Registry;

namespace HardenImage.Tests.SignFlow;

/// <summary>
/// A working directory shaped like a project after <c>harden build</c>: artifacts/oci holding image "base" (amd64 and
/// arm64) and artifacts/build.json in BuildManifest's shape, so push, sign and verify run on it with their defaults.
/// </summary>
public sealed class SignFlowWorkspace : IDisposable
{
    private readonly TempDir _dir = new("hi-signflow");

    public SignFlowWorkspace(int seed = 1)
    {
        Layout = OciLayout.OpenOrCreate(Combine("artifacts", "oci"));
        Index = TestImages.WriteImage(Layout, "base", ["amd64", "arm64"], 16 * 1024, seed: seed);
        Manifests = Layout.ReadJson<ImageIndex>(Index.Digest).Manifests.ToDictionary(m => m.Platform!.Architecture, m => m.Digest);
        File.WriteAllText(Combine("artifacts", "build.json"), JsonSerializer.Serialize(new
        {
            images = new object[]
            {
                new { name = "base", index = Index.Digest, architectures = Manifests.Select(m => new { architecture = m.Key, manifest = m.Value }) },
            },
        }));
    }

    public string Root => _dir.Path;
    public OciLayout Layout { get; }
    public Descriptor Index { get; }
    public IReadOnlyDictionary<string, string> Manifests { get; }
    public string Artifacts => Combine("artifacts");
    public string DevPublicKey => Combine("artifacts", "keys", "cosign.pub");

    public string Combine(params string[] parts) => _dir.Combine(parts);

    /// <summary>
    /// Runs the real CLI (harden.dll next to the tests) in this directory. Key password variables are removed so the
    /// development-key path (empty password) is what a fresh checkout sees; <paramref name="env"/> adds variables.
    /// </summary>
    public (int Code, string Output) Harden(IDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Root,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "harden.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove(KeyPasswordSource.HardenVariable);
        psi.Environment.Remove(KeyPasswordSource.CosignVariable);
        psi.Environment.Remove("HARDEN_SIGNING_KEY");
        psi.Environment.Remove("HARDEN_REGISTRY");
        psi.Environment["COLUMNS"] = "1000";
        psi.Environment["NO_COLOR"] = "1";
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"harden {string.Join(' ', args)} timed out");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    public (int Code, string Output) Harden(params string[] args) => Harden(null, args);

    public string HardenOk(params string[] args) => HardenOk(null, args);

    public string HardenOk(IDictionary<string, string>? env, params string[] args)
    {
        var (code, output) = Harden(env, args);
        Assert.True(code == 0, $"harden {string.Join(' ', args)} exited {code}:\n{output}");
        return output;
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>Reads and rewrites cosign signature manifests through the registry API, as an attacker with push rights could.</summary>
public static class SignatureTampering
{
    public static async Task<OciArtifact> SignatureArtifact(IRegistry registry, string repository, string imageDigest)
    {
        var artifact = await new RegistrySignatureStore(registry, repository).GetAsync(CosignSignatureManifest.SignatureTag(Digest.Parse(imageDigest)));
        Assert.NotNull(artifact);
        return artifact!;
    }

    /// <summary>Layer <paramref name="layer"/>'s payload with one byte changed (a digit of the docker-reference's port or a letter), re-pushed under the .sig tag.</summary>
    public static Task ChangePayloadByte(IRegistry registry, string repository, string imageDigest, int layer = 0) =>
        Rewrite(registry, repository, imageDigest, layer, (payload, signature) =>
        {
            var changed = (byte[])payload.Clone();
            var at = Encoding.UTF8.GetString(changed).IndexOf("\"docker-reference\":\"", StringComparison.Ordinal) + 20;
            changed[at] = (byte)(changed[at] == (byte)'x' ? 'y' : 'x');
            return (changed, signature);
        });

    /// <summary>Layer <paramref name="layer"/>'s signature annotation with one byte of the DER signature changed.</summary>
    public static Task ChangeSignatureByte(IRegistry registry, string repository, string imageDigest, int layer = 0) =>
        Rewrite(registry, repository, imageDigest, layer, (payload, signature) =>
        {
            var der = Convert.FromBase64String(signature);
            der[der.Length / 2] ^= 0x01;
            return (payload, Convert.ToBase64String(der));
        });

    private static async Task Rewrite(IRegistry registry, string repository, string imageDigest, int layer,
        Func<byte[], string, (byte[] Payload, string Signature)> change)
    {
        var artifact = await SignatureArtifact(registry, repository, imageDigest);
        var old = artifact.Manifest.Layers[layer];
        var (payload, signature) = change(artifact.Blobs[old.Digest], old.Annotations![CosignSignatureManifest.SignatureAnnotation]);
        var annotations = new SortedDictionary<string, string>(old.Annotations, StringComparer.Ordinal)
        {
            [CosignSignatureManifest.SignatureAnnotation] = signature,
        };
        var replaced = old with { Digest = Digest.Of(payload).ToString(), Size = payload.Length, Annotations = annotations };
        var layers = artifact.Manifest.Layers.ToList();
        layers[layer] = replaced;
        var blobs = new Dictionary<string, byte[]>(artifact.Blobs) { [replaced.Digest] = payload };
        await new RegistrySignatureStore(registry, repository).PutAsync(CosignSignatureManifest.SignatureTag(Digest.Parse(imageDigest)),
            new OciArtifact(artifact.Manifest with { Layers = layers }, blobs));
    }
}

/// <summary>Sends every request to a loopback server whatever host the URL names (the ECR host does not resolve here).</summary>
internal sealed class RedirectToLoopback(string authority) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        var parts = authority.Split(':');
        var original = request.RequestUri!;
        request.RequestUri = new UriBuilder(original) { Scheme = "http", Host = parts[0], Port = int.Parse(parts[1]) }.Uri;
        try
        {
            return await base.SendAsync(request, ct);
        }
        finally
        {
            // The handlers above (auth: which host's credentials) must keep seeing the ECR host.
            request.RequestUri = original;
        }
    }
}
