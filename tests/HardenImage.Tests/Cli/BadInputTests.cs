using System.Text.Json;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Registry;

namespace HardenImage.Tests.Cli;

/// <summary>
/// A workspace for driving the real `harden` process with bad command lines: a valid OCI layout and build.json
/// (so commands get past "nothing built"), a pushed.json naming a registry on a dead port, a plain-HTTP registry,
/// a corrupt lock, a policy with a YAML syntax error, and the repository's own image set.
/// </summary>
public sealed class BadInputWorkspace : IDisposable
{
    private readonly TempDir _dir = new("hi-badinput");

    public BadInputWorkspace()
    {
        Root = _dir.Path;
        var (layout, baseIndex, appIndex) = RegistryTestKit.TwoImages(_dir);
        Layout = layout.Root;
        Artifacts = _dir.Combine("artifacts");
        Directory.CreateDirectory(Artifacts);
        Directory.CreateDirectory(Path.Combine(Artifacts, "keys"));
        var arch = (Descriptor i) => layout.ReadJson<ImageIndex>(i.Digest).Manifests
            .Select(m => new { architecture = m.Platform!.Architecture, manifest = m.Digest }).ToList();
        File.WriteAllText(Path.Combine(Artifacts, "build.json"), JsonSerializer.Serialize(new
        {
            images = new object[]
            {
                new { name = "base", index = baseIndex.Digest, architectures = arch(baseIndex) },
                new { name = "app", index = appIndex.Digest, architectures = arch(appIndex) },
            },
        }));
        DeadPort = LoopbackPort.Free();
        // A push record whose registry is down: sign must say so in one line.
        DownArtifacts = _dir.Combine("down");
        Directory.CreateDirectory(DownArtifacts);
        File.WriteAllText(Path.Combine(DownArtifacts, "pushed.json"), JsonSerializer.Serialize(new
        {
            registry = $"127.0.0.1:{DeadPort}/ns",
            images = new Dictionary<string, object>
            {
                ["base"] = new { repository = "ns/base", index = baseIndex.Digest, tags = new[] { "latest" }, manifests = new Dictionary<string, string>() },
            },
        }));
        Plain = RegistryFixture.Start();
        File.WriteAllText(_dir.Combine("corrupt.lock.json"), "{\"lockVersion\": 1, \"sources\": [ {\"name\": ");
        File.WriteAllText(_dir.Combine("bad-policy.yaml"), "gate:\n  failOn: [critical\n  allow:\n    - id: CVE-1\n");
        File.WriteAllText(_dir.Combine("cosign.pub"), "not a key");
        ImagesDir = Path.Combine(RepoRoot.Find(), "images");
    }

    public string Root { get; }
    public string Layout { get; }
    public string Artifacts { get; }
    public string DownArtifacts { get; }
    public string ImagesDir { get; }
    public int DeadPort { get; }
    public RegistryFixture Plain { get; }

    /// <summary>Replaces {root}, {layout}, {artifacts}, {down}, {images}, {dead} and {plain} in an argument.</summary>
    public string Expand(string s) => s
        .Replace("{root}", Root).Replace("{layout}", Layout).Replace("{artifacts}", Artifacts).Replace("{down}", DownArtifacts)
        .Replace("{images}", ImagesDir).Replace("{dead}", DeadPort.ToString()).Replace("{plain}", Plain.Host);

    public void Dispose()
    {
        Plain.Dispose();
        _dir.Dispose();
    }
}

/// <summary>
/// Every command, driven as a process with bad arguments, hosts and references (issue 11 §2): each ends with one
/// clear line on stderr that names the option, file or host, the documented exit code, and never a stack frame
/// or a .NET type name. The malformed-file table for the parsers lives with the parsers' own tests.
/// </summary>
[Trait("Category", "Integration")]
public sealed class BadInputTests(BadInputWorkspace ws) : IClassFixture<BadInputWorkspace>
{
    /// <summary>args (space separated, '|' keeps a space inside one argument), env (K=V;K=V), exit code, text the error must contain.</summary>
    public static TheoryData<string, string, int, string> Cases() => new()
    {
        // Unknown commands and options, with a suggestion (issue: 'lock --chekc' rewrote the lock).
        { "biuld", "", 2, "unknown command 'biuld' (did you mean build?)" },
        { "db updat", "", 2, "unknown command 'updat' (did you mean update?)" },
        { "lock --chekc", "", 2, "unknown option --chekc for 'harden lock' (did you mean --check?)" },
        { "build --imgae base", "", 2, "unknown option --imgae for 'harden build' (did you mean --image?)" },
        { "push --regsitry oci:x", "", 2, "(did you mean --registry?)" },
        { "scan --polcy x.yaml", "", 2, "(did you mean --policy?)" },
        { "sign --kye k", "", 2, "(did you mean --key?)" },
        { "deploy --registy r.example/ns", "", 2, "(did you mean --registry?)" },
        { "smoke --imag base", "", 2, "(did you mean --image or --images?)" },
        { "sbom --outt x", "", 2, "(did you mean --out?)" },
        { "keygen --outptu-dir x", "", 2, "(did you mean --output-dir?)" },
        { "fetch --paralel 2", "", 2, "(did you mean --parallel?)" },
        { "merge --oot x {artifacts}", "", 2, "(did you mean --out?)" },
        // Bad values name the option and what it takes, never Nullable`1 or Int32.
        { "build --source-date-epoch abc", "", 2, "--source-date-epoch 'abc': expected a whole number" },
        { "build --source-date-epoch=-5", "", 2, "--source-date-epoch -5: expected seconds since 1970" },
        { "push --parallel x", "", 2, "--parallel 'x': expected a whole number" },
        { "push --parallel 0 --layout {layout} --artifacts {artifacts}", "", 2, "--parallel must be between 1 and 64" },
        { "fetch --parallel 0", "", 2, "--parallel must be between 1 and 64" },
        { "smoke --http-timeout soon", "", 2, "--http-timeout 'soon': expected a whole number" },
        { "verify", "", 2, "missing required argument 'REF'" },
        { "verify a b", "", 2, "unexpected argument 'b'" },
        // Platforms: OCI spelling only.
        { "build --platform linux/amd46", "", 2, "--platform 'linux/amd46': unknown architecture 'amd46' (did you mean amd64?)" },
        { "sbom --platform windows/amd64", "", 2, "--platform 'windows/amd64': expected linux/ARCH[/VARIANT]" },
        { "scan --platform linux/arm64/v7 --allow-unscanned", "", 2, "harden builds linux/arm64/v8, not variant 'v7'" },
        { "smoke --platform amd64", "", 2, "--platform 'amd64': expected linux/ARCH[/VARIANT]" },
        // An invalid SOURCE_DATE_EPOCH in the environment is an error, not ignored.
        { "build --images {images} --lock {images}/images.lock.json --cache {root}/cache --out {root}/out", "SOURCE_DATE_EPOCH=yesterday", 2, "SOURCE_DATE_EPOCH='yesterday'" },
        // References: one grammar everywhere.
        { "verify HTTP://bad|ref", "", 2, "contains a space" },
        { "verify HTTP://bad", "", 2, "'bad' is not a registry host" },
        { "verify ftp://reg.example/app:1", "", 2, "unknown transport 'ftp://'" },
        { "verify reg.example:99999/app:1", "", 2, "port '99999' of 'reg.example:99999'" },
        { "verify reg.example/App:1", "", 2, "repository name 'App' is not valid" },
        { "verify reg.example/app@sha256:abc", "", 2, "'sha256:abc' is not a sha256 digest" },
        { "verify reg.exa_mple/app:1", "", 2, "'reg.exa_mple' is not a valid registry host" },
        { "verify oci:base", "", 2, "expected oci:DIR/REPOSITORY" },
        { "verify reg.example/app:1 --require bogus", "", 2, "unknown attestation kind 'bogus'" },
        { "push --registry oci: --layout {layout} --artifacts {artifacts}", "", 2, "name a directory" },
        { "push --registry not|a|host --layout {layout} --artifacts {artifacts}", "", 2, "--registry 'not a host': expected HOST[:port][/NAMESPACE] (no spaces)" },
        { "push --registry reg.example/ns:v1 --layout {layout} --artifacts {artifacts}", "", 2, "without a tag or digest" },
        { "push --registry http://registry.example/ns --layout {layout} --artifacts {artifacts}", "", 2, "plain HTTP to 'registry.example' is refused without --insecure" },
        { "push --registry registry.example/ns --username ci --layout {layout} --artifacts {artifacts}", "", 2, "HARDEN_REGISTRY_PASSWORD" },
        { "deploy --registry oci:x --artifacts {artifacts}", "", 2, "--registry 'oci:x': a cluster pulls from a registry host" },
        { "deploy --registry reg.example:0/ns --artifacts {artifacts}", "", 2, "port '0' of 'reg.example:0'" },
        // Hosts that do not answer, or answer in the wrong protocol: one line naming the host, exit 3.
        { "push --registry 127.0.0.1:{dead}/ns --layout {layout} --artifacts {root}/push-dead", "", 3, "registry 127.0.0.1:{dead}: cannot connect" },
        { "push --registry https://{plain}/ns --layout {layout} --artifacts {root}/push-tls", "", 3, "registry {plain}: TLS handshake failed" },
        { "verify 127.0.0.1:{dead}/ns/base:1 --key {root}/cosign.pub", "", 3, "registry 127.0.0.1:{dead}: cannot connect" },
        { "verify [::1]:{dead}/ns/base:1", "", 3, "registry [::1]:{dead}: cannot connect" },
        { "sign --artifacts {down}", "", 3, "registry 127.0.0.1:{dead}: cannot connect" },
        { "smoke --docker-host not-a-uri --artifacts {artifacts}", "", 2, "--docker-host 'not-a-uri'" },
        { "smoke --artifacts {artifacts}", "DOCKER_HOST=unix:///nonexistent/docker.sock", 3, "Docker engine at unix:///nonexistent/docker.sock does not answer" },
        // Files: named, with the fix.
        { "build --images {images} --lock {root}/corrupt.lock.json --cache {root}/cache --out {root}/out", "", 2, "corrupt.lock.json" },
        { "scan --policy {root}/bad-policy.yaml --layout {layout} --out {artifacts}", "", 2, "bad-policy.yaml" },
        { "scan --policy {root}/missing.yaml --layout {layout} --out {artifacts}", "", 2, "missing.yaml" },
        { "lock --images {root}/nowhere", "", 2, "nowhere: no image set here" },
        { "merge {root}/nowhere", "", 2, "nowhere': no such artifacts directory" },
        { "sign --artifacts {root}/nowhere", "", 2, "pushed.json: missing" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadInput_EndsInOneClearLine(string args, string env, int exitCode, string expected)
    {
        var argv = args.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(a => ws.Expand(a.Replace('|', ' '))).ToArray();
        var environment = env.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(kv => kv.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
        var (code, stdout, stderr) = Harden(ws.Root, argv, environment);
        var all = stdout + stderr;
        Assert.True(code == exitCode, $"harden {string.Join(' ', argv)} exited {code}, expected {exitCode}:\n{all}");
        Assert.Contains(ws.Expand(expected), stderr);
        Assert.DoesNotContain("   at ", all);
        Assert.DoesNotContain("Nullable`1", all);
        Assert.DoesNotContain("Exception:", all);
        var errorLines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(errorLines.Length == 1, $"expected one line on stderr, got {errorLines.Length}:\n{stderr}");
        Assert.StartsWith("error: ", errorLines[0]);
    }

    [Fact]
    public void Version_PrintsTheVersion()
    {
        var (code, stdout, _) = Harden(ws.Root, ["--version"], new Dictionary<string, string>());
        Assert.Equal(0, code);
        Assert.Matches(@"^\d+\.\d+\.\d+", stdout.Trim());
    }

    [Fact]
    public void Catalog_KnowsEveryCommandAndItsOptions()
    {
        // The "did you mean" machinery reads Spectre's command model; an upgrade that hides it must fail here.
        var app = new Spectre.Console.Cli.CommandApp();
        app.Configure(c => { HardenImage.Cli.Commands.BuildCommandRegistration.AddBuildCommands(c); HardenImage.Cli.Commands.RegistryCommandsRegistration.AddRegistryCommands(c); });
        var catalog = HardenImage.Cli.CommandCatalog.Read(app);
        Assert.Equal(["lock", "fetch", "build", "push"], catalog.Select(c => c.Path));
        Assert.Contains("--check", catalog[0].Options.SelectMany(o => o.Names));
    }

    internal static (int Code, string StdOut, string StdErr) Harden(string cwd, string[] args, IDictionary<string, string> env)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "harden.dll");
        var environment = new Dictionary<string, string>(env) { ["NO_COLOR"] = "1", ["HARDEN_CACHE"] = Path.Combine(cwd, "cache") };
        return RequiredService.Run("dotnet", [dll, .. args], workingDirectory: cwd, env: environment, timeout: TimeSpan.FromMinutes(2));
    }
}
