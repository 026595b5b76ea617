using System.Security.Cryptography;
using System.Text.Json;
using HardenImage.Build;
using HardenImage.FanOut;
using HardenImage.Registry;
using HardenImage.Signing;
using HardenImage.Tests.Build;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Registry;

namespace HardenImage.Tests.FanOut;

/// <summary>
/// The hermetic image set (<see cref="ImageSetWorkspace"/>: base and tool, amd64 + arm64, signed fixture apt repo),
/// locked once, one real docker-registry, a release key and another key. Tests isolate themselves by registry
/// namespace and their own directories; every harden run gets its own cache, cache key and artifacts, as separate
/// machines would.
/// </summary>
public sealed class FanOutKit : IDisposable
{
    public const string Password = "fanout-test";

    public FanOutKit()
    {
        Workspace = new ImageSetWorkspace();
        Workspace.LockAsync().GetAwaiter().GetResult();
        Registry = RegistryFixture.Start();
        ReleaseKey = new KeyPairGenerator().WriteTo(Workspace.Combine("keys", "release"), Password, overwrite: false);
        OtherKey = new KeyPairGenerator().WriteTo(Workspace.Combine("keys", "other"), Password, overwrite: false);
    }

    public ImageSetWorkspace Workspace { get; }
    public RegistryFixture Registry { get; }
    public GeneratedKeyPair ReleaseKey { get; }
    public GeneratedKeyPair OtherKey { get; }

    public string RegistryFor(string ns) => $"{Registry.Host}/{ns}";
    public string Dir(params string[] parts) => Workspace.Combine(parts);

    public sealed record Result(int Code, string StdOut, string StdErr)
    {
        public string Output => StdOut + StdErr;
    }

    /// <summary>The real CLI in its own process, with its own cache (<paramref name="machine"/>) and cache key.</summary>
    public Result Harden(string machine, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "harden.dll");
        var env = new Dictionary<string, string>
        {
            ["NO_COLOR"] = "1",
            ["HARDEN_CACHE"] = Dir("machines", machine, "cache"),
            [CacheKey.EnvironmentVariable] = Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("machine " + machine))),
            [KeyPasswordSource.HardenVariable] = Password,
        };
        var (code, o, e) = RequiredService.Run("dotnet", [dll, .. args], workingDirectory: Workspace.Combine(), env: env, timeout: TimeSpan.FromMinutes(5));
        return new Result(code, o, e);
    }

    public Result Ok(string machine, params string[] args)
    {
        var r = Harden(machine, args);
        Assert.True(r.Code == 0, $"harden {string.Join(' ', args)} exited {r.Code}:\n{r.Output}");
        return r;
    }

    /// <summary>Runs every plan entry as its own process, all at once (separate caches and artifacts directories).</summary>
    public IReadOnlyList<Result> RunJobsInParallel(string planPath, string ns, string jobsRoot, string machinePrefix, int count) =>
        Task.WhenAll(Enumerable.Range(0, count).Select(i => Task.Run(() => Harden($"{machinePrefix}{i}", "job", "--images", Workspace.ImagesDir,
            "--plan", planPath, "--entry", i.ToString(), "--registry", RegistryFor(ns), "--key", ReleaseKey.PublicKeyPath,
            "--out", Path.Combine(jobsRoot, i.ToString()))))).GetAwaiter().GetResult();

    public static PlatformRecord Record(string jobDir) => Assert.Single(PlatformRecord.LoadAll(jobDir)).Record;

    /// <summary>A registry client for reading and forging what is in the test registry.</summary>
    public IRegistry Client() => RegistryFactory.Create(RegistryTarget.Parse(Registry.Host), new RegistryClientOptions());

    /// <summary>Signs <paramref name="digest"/> in <paramref name="repository"/> with <paramref name="key"/> in cosign's layout.</summary>
    /// <param name="inputs">The inputs digest bound into the signature (as `harden sign` does for fan-out manifests); null = none.</param>
    public async Task SignAsync(GeneratedKeyPair key, string repository, string digest, string? inputs = null)
    {
        var signer = await new SignerFactory(new KeyPasswordSource(v => v == KeyPasswordSource.HardenVariable ? Password : null)).FromReferenceAsync(key.PrivateKeyPath);
        using var _ = signer as IDisposable;
        await new ImageSigner(signer, new RegistrySignatureStore(Client(), repository))
            .SignAsync($"{Registry.Host}/{repository}", HardenImage.Oci.Digest.Parse(digest),
                inputs == null ? null : new Dictionary<string, string> { [RegistryCache.InputsAnnotation] = inputs });
    }

    public static BuildPlan Plan(string json) => JsonSerializer.Deserialize<BuildPlan>(json, BuildPlan.Json)!;

    public void Dispose()
    {
        Registry.Dispose();
        Workspace.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class FanOutCollection : ICollectionFixture<FanOutKit>
{
    public const string Name = "fan-out (one image set, one registry)";
}
