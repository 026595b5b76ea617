using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using HardenImage.Common;
using HardenImage.Deploy;
using HardenImage.FanOut;
using HardenImage.Tests.Deploy;
using HardenImage.Tests.Infrastructure;
using Json.Schema;

namespace HardenImage.Tests.FanOut;

/// <summary>
/// Issue 13 §4: <c>harden ci github</c> renders a workflow the official schema accepts with least-privilege
/// permissions (OIDC only where AWS is used, no script injection, pinned actions, the signing key only in the
/// fan-in), and <c>harden ci kubernetes</c> an Indexed Job + fan-in Job valid for Kubernetes 1.36 under the
/// inference pods' hardening.
/// </summary>
public sealed partial class CiRenderTests : IDisposable
{
    private readonly TempDir _dir = new("hi-ci");
    private static readonly Lazy<JsonSchema> WorkflowSchema = new(() =>
        JsonSchema.FromText(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", "FanOut", "github-workflow.json"))));
    private static readonly Lazy<ManifestSchemas> Kubernetes = new(() => new ManifestSchemas());

    private static JsonObject Workflow(GitHubWorkflowOptions o)
    {
        var yaml = ManifestYaml.Write(GitHubWorkflowRenderer.Render(o));
        var doc = ManifestYaml.Read(yaml)!.AsObject();
        var result = WorkflowSchema.Value.Evaluate(JsonSerializer.SerializeToElement(doc), new EvaluationOptions { OutputFormat = OutputFormat.List });
        Assert.True(result.IsValid, string.Join("\n", (result.Details ?? []).Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}"))));
        return doc;
    }

    private static IEnumerable<JsonObject> Steps(JsonObject workflow) =>
        workflow["jobs"]!.AsObject().SelectMany(j => j.Value!["steps"]!.AsArray().Select(s => s!.AsObject()));

    [Fact]
    public void CiGithub_Workflow_IsValidAgainstTheOfficialSchema_WithLeastPrivilege()
    {
        var wf = Workflow(new GitHubWorkflowOptions { Registry = "registry.example/hardened" });
        Assert.Empty(wf["permissions"]!.AsObject());
        // The schema is strict enough to catch a misspelt key (so "valid" above means something).
        var misspelt = wf.DeepClone().AsObject();
        misspelt["jobs"]!["build"]!["runs_on"] = "ubuntu-latest";
        Assert.False(WorkflowSchema.Value.Evaluate(JsonSerializer.SerializeToElement(misspelt)).IsValid);
        Assert.Equal(["plan", "build", "fanin"], wf["jobs"]!.AsObject().Select(j => j.Key).OrderBy(k => k == "plan" ? 0 : k == "build" ? 1 : 2));
        foreach (var (name, job) in wf["jobs"]!.AsObject())
            Assert.True(JsonNode.DeepEquals(new JsonObject { ["contents"] = "read" }, job!["permissions"]), $"{name}: {job!["permissions"]}");
        var build = wf["jobs"]!["build"]!;
        Assert.Equal("${{ matrix.runner }}", (string)build["runs-on"]!);
        Assert.Equal("${{ fromJSON(needs.plan.outputs.matrix) }}", (string)build["strategy"]!["matrix"]!);
        Assert.Equal("release", (string)wf["jobs"]!["fanin"]!["environment"]!);
        // No expression is expanded inside a script (branch names and matrix values reach scripts through env only).
        Assert.All(Steps(wf).Where(s => s["run"] != null), s => Assert.DoesNotContain("${{", (string)s["run"]!));
        // Every action is pinned by commit.
        Assert.All(Steps(wf).Where(s => s["uses"] != null), s => Assert.Matches(PinnedAction(), (string)s["uses"]!));
        // The signing key is a secret of the fan-in's sign step only.
        var secretSteps = wf["jobs"]!.AsObject().SelectMany(j => j.Value!["steps"]!.AsArray().Select(s => (Job: j.Key, Step: s!))).Where(x => x.Step.ToJsonString().Contains("secrets.")).ToList();
        Assert.Equal([("fanin", "sign")], secretSteps.Select(x => (x.Job, (string)x.Step["name"]!)));
    }

    [Fact]
    public void CiGithub_Ecr_GivesOidcToEveryJob_KmsKeyOnlyToTheFanIn()
    {
        var ecr = Workflow(new GitHubWorkflowOptions { Registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hardened", AwsRole = "arn:aws:iam::123456789012:role/harden" });
        Assert.All(ecr["jobs"]!.AsObject(), j => Assert.Equal("write", (string?)j.Value!["permissions"]!["id-token"]));
        Assert.All(ecr["jobs"]!.AsObject(), j => Assert.Contains(j.Value!["steps"]!.AsArray(), s => ((string?)s!["uses"])?.StartsWith("aws-actions/configure-aws-credentials@") == true
            && (string?)s["with"]!["aws-region"] == "eu-west-1"));

        var kms = Workflow(new GitHubWorkflowOptions { Registry = "registry.example/hardened", SigningKey = "awskms:///alias/release", AwsRole = "arn:aws:iam::123456789012:role/sign", AwsRegion = "eu-west-1" });
        Assert.Equal(["fanin"], kms["jobs"]!.AsObject().Where(j => j.Value!["permissions"]!["id-token"] != null).Select(j => j.Key));
        Assert.DoesNotContain("secrets.", kms.ToJsonString());
    }

    [Theory]
    [InlineData("123456789012.dkr.ecr.eu-west-1.amazonaws.com/hardened", "secret", "is ECR: give --aws-role")]
    [InlineData("registry.example/hardened", "awskms:///alias/release", "is AWS KMS: give --aws-role")]
    [InlineData("oci:artifacts/registry", "secret", "share a registry, not a local directory")]
    [InlineData("registry.example/hardened", "release/cosign.key", "a key file in the repository would publish it")]
    public void CiGithub_BadInput_IsOneClearError(string registry, string key, string message)
    {
        var e = Assert.Throws<HardenException>(() => GitHubWorkflowRenderer.Render(new GitHubWorkflowOptions { Registry = registry, SigningKey = key }));
        Assert.Contains(message, e.Message);
        Assert.Equal(2, e.ExitCode);
    }

    private KubernetesJobOptions KubernetesOptions(string registry = "registry.example/hardened", string signingKey = "secret", string? irsa = null)
    {
        var images = _dir.Combine("images");
        Directory.CreateDirectory(Path.Combine(images, "keys"));
        Directory.CreateDirectory(Path.Combine(images, "payload", "bin"));
        File.WriteAllText(Path.Combine(images, "base.yaml"), "name: base\n");
        File.WriteAllBytes(Path.Combine(images, "keys", "debian archive.gpg"), [0x99, 0x01, 0x0d, 0x00]);
        File.WriteAllText(Path.Combine(images, "payload", "bin", "tool"), "#!payload");
        File.WriteAllText(Path.Combine(images, ".hidden"), "not shipped");
        var plan = new BuildPlan
        {
            Matrix = new PlanMatrix([.. Enumerable.Range(0, 3).Select(i => new PlanEntry
            {
                Index = i, Image = "base", Architecture = i == 1 ? "arm64" : "amd64", Platform = i == 1 ? "linux/arm64/v8" : "linux/amd64",
                Runner = "ubuntu-latest", Inputs = new string('a', 64), Changed = true, Cache = CacheState.Miss,
            })]),
            FanIn = new PlanFanIn { Images = new() { ["base"] = ["linux/amd64", "linux/arm64/v8"] }, Needs = [0, 1, 2] },
        };
        return new KubernetesJobOptions
        {
            Plan = plan, PlanJson = plan.ToJson(), ImagesDir = images, PublicKeyPem = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
            Registry = registry, ToolImage = "registry.example/hardened/harden@sha256:" + new string('b', 64), RecordsClaim = "harden-records",
            SigningKey = signingKey, IrsaRole = irsa,
        };
    }

    [Fact]
    public void CiKubernetes_IndexedJobAndFanIn_AreValidKubernetes136_UnderTheInferencePodHardening()
    {
        var objects = KubernetesJobRenderer.Render(KubernetesOptions());
        foreach (var o in objects)
        {
            var roundTripped = ManifestYaml.Read(ManifestYaml.Write(o))!;
            Assert.True(Kubernetes.Value.Validate(roundTripped).Count == 0, $"{o["kind"]} {o["metadata"]!["name"]}: {string.Join("\n", Kubernetes.Value.Validate(roundTripped))}");
        }
        Assert.Equal(["ConfigMap", "ConfigMap", "Job", "Job"], objects.Select(o => (string)o["kind"]!));
        var fanOut = objects[2]["spec"]!;
        Assert.Equal(("Indexed", 3, 3), ((string)fanOut["completionMode"]!, (int)fanOut["completions"]!, (int)fanOut["parallelism"]!));
        var container = fanOut["template"]!["spec"]!["containers"]![0]!;
        Assert.Contains("/records/$(JOB_COMPLETION_INDEX)", container["args"]!.AsArray().Select(a => (string)a!));
        Assert.DoesNotContain("--entry", container["args"]!.AsArray().Select(a => (string)a!)); // the pod's JOB_COMPLETION_INDEX picks the entry
        foreach (var job in objects.Where(o => (string)o["kind"]! == "Job"))
        {
            var pod = job["spec"]!["template"]!["spec"]!;
            Assert.False((bool)pod["automountServiceAccountToken"]!);
            Assert.False((bool)pod["enableServiceLinks"]!);
            Assert.Null(pod["serviceAccountName"]);
            Assert.True((bool)pod["securityContext"]!["runAsNonRoot"]!);
            foreach (var c in pod["containers"]!.AsArray().Concat(pod["initContainers"]?.AsArray() ?? []))
            {
                var sc = c!["securityContext"]!;
                Assert.Equal((true, true, false, "ALL", "RuntimeDefault", 65532L),
                    ((bool)sc["runAsNonRoot"]!, (bool)sc["readOnlyRootFilesystem"]!, (bool)sc["allowPrivilegeEscalation"]!, (string)sc["capabilities"]!["drop"]![0]!, (string)sc["seccompProfile"]!["type"]!, (long)sc["runAsUser"]!));
                Assert.Matches("@sha256:[0-9a-f]{64}$", (string)c["image"]!);
                Assert.Contains(c["volumeMounts"]!.AsArray(), m => (string)m!["mountPath"]! == "/work"); // writable work volume
            }
        }
        // The signing key is mounted into the fan-in's sign step only.
        var fanIn = objects[3]["spec"]!["template"]!["spec"]!;
        Assert.Equal(["fanin", "sign"], fanIn["initContainers"]!.AsArray().Select(c => (string)c!["name"]!));
        var withKey = fanIn["initContainers"]!.AsArray().Concat(fanIn["containers"]!.AsArray())
            .Where(c => c!["volumeMounts"]!.AsArray().Any(m => (string)m!["name"]! == "signing")).Select(c => (string)c!["name"]!);
        Assert.Equal(["sign"], withKey);
        Assert.DoesNotContain(objects[2]["spec"]!["template"]!["spec"]!["volumes"]!.AsArray(), v => (string)v!["name"]! == "signing");
    }

    [Fact]
    public void CiKubernetes_ImageSetConfigMap_PutsEveryFileBackAtItsPath_AndLeavesDotFilesOut()
    {
        var o = KubernetesOptions();
        var objects = KubernetesJobRenderer.Render(o);
        var data = objects[1]["binaryData"]!.AsObject();
        var items = objects[2]["spec"]!["template"]!["spec"]!["volumes"]!.AsArray().Single(v => (string)v!["name"]! == "imageset")!["configMap"]!["items"]!.AsArray();
        var files = items.ToDictionary(i => (string)i!["path"]!, i => Convert.FromBase64String((string)data[(string)i!["key"]!]!));
        Assert.Equal(["base.yaml", "keys/debian archive.gpg", "payload/bin/tool"], files.Keys.Order(StringComparer.Ordinal));
        foreach (var (path, bytes) in files) Assert.Equal(File.ReadAllBytes(Path.Combine(o.ImagesDir, path)), bytes);
        Assert.All(data, kv => Assert.Matches("^[-._a-zA-Z0-9]+$", kv.Key));
    }

    [Fact]
    public void CiKubernetes_ImageSetConfigMap_KeepsAPayloadFilesExecuteBit()
    {
        // The kubelet projects ConfigMap files 0644: without an item mode an executable payload would reach the job
        // without its execute bit, the job's inputs digest would differ from the plan's and every pod would refuse
        // (found by running the pod locally: ToolImageTests).
        var o = KubernetesOptions();
        File.SetUnixFileMode(Path.Combine(o.ImagesDir, "payload", "bin", "tool"), (UnixFileMode)Convert.ToInt32("755", 8));
        var items = KubernetesJobRenderer.Render(o)[2]["spec"]!["template"]!["spec"]!["volumes"]!.AsArray()
            .Single(v => (string)v!["name"]! == "imageset")!["configMap"]!["items"]!.AsArray().ToDictionary(i => (string)i!["path"]!, i => i!["mode"]);
        Assert.Equal(Convert.ToInt32("755", 8), (int)items["payload/bin/tool"]!);
        Assert.Null(items["base.yaml"]); // not executable: the default 0644
    }

    [Fact]
    public void CiKubernetes_EcrOrKms_UsesAnIrsaServiceAccount_WithoutMountingTheApiToken()
    {
        var objects = KubernetesJobRenderer.Render(KubernetesOptions(signingKey: "awskms:///alias/release", irsa: "arn:aws:iam::123456789012:role/harden"));
        foreach (var o in objects) Assert.Empty(Kubernetes.Value.Validate(ManifestYaml.Read(ManifestYaml.Write(o))!));
        var sa = objects.Single(o => (string)o["kind"]! == "ServiceAccount");
        Assert.Equal("arn:aws:iam::123456789012:role/harden", (string)sa["metadata"]!["annotations"]!["eks.amazonaws.com/role-arn"]!);
        Assert.All(objects.Where(o => (string)o["kind"]! == "Job"), j =>
        {
            Assert.Equal("harden-builder", (string)j["spec"]!["template"]!["spec"]!["serviceAccountName"]!);
            Assert.False((bool)j["spec"]!["template"]!["spec"]!["automountServiceAccountToken"]!);
        });
        Assert.DoesNotContain("harden-signing-key", string.Join("", objects.Select(o => o.ToJsonString())));
    }

    [Theory]
    [InlineData("registry.example/hardened/harden:1.0", "secret", null, "pin it by digest")]
    [InlineData(null, "awskms:///alias/release", null, "needs AWS credentials: give --irsa-role")]
    public void CiKubernetes_BadInput_IsOneClearError(string? toolImage, string signingKey, string? irsa, string message)
    {
        var o = KubernetesOptions(signingKey: signingKey, irsa: irsa);
        if (toolImage != null) o = o with { ToolImage = toolImage };
        var e = Assert.Throws<HardenException>(() => KubernetesJobRenderer.Render(o));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void CiKubernetes_ImageSetTooBigForAConfigMap_IsRefused_NamingTheFile()
    {
        var o = KubernetesOptions();
        File.WriteAllBytes(Path.Combine(o.ImagesDir, "payload", "big.bin"), new byte[KubernetesJobRenderer.MaxImageSetBytes]);
        var e = Assert.Throws<HardenException>(() => KubernetesJobRenderer.Render(o));
        Assert.Contains("too big for a ConfigMap", e.Message);
        Assert.Contains("payload/big.bin", e.Message);
    }

    [GeneratedRegex("^[-a-z0-9]+/[-a-z0-9]+@[0-9a-f]{40}$")]
    private static partial Regex PinnedAction();

    public void Dispose() => _dir.Dispose();

    private static (int Code, string StdOut, string StdErr) Harden(string cwd, params string[] args) =>
        RequiredService.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "harden.dll"), .. args], workingDirectory: cwd,
            env: new Dictionary<string, string> { ["NO_COLOR"] = "1" }, timeout: TimeSpan.FromMinutes(2));

    [Trait("Category", "Integration")]
    [Fact]
    public void CiCommands_WriteTheRenderedFiles_AndRefuseBadInputWithOneLine()
    {
        var o = KubernetesOptions();
        File.WriteAllText(_dir.Combine("plan.json"), o.PlanJson);
        File.WriteAllText(_dir.Combine("cosign.pub"), o.PublicKeyPem);

        var gh = Harden(_dir.Path, "ci", "github", "--registry", "registry.example/hardened", "--out", "harden.yml");
        Assert.True(gh.Code == 0, gh.StdErr);
        Assert.StartsWith("# Rendered by 'harden ci github'", File.ReadAllText(_dir.Combine("harden.yml")));
        Assert.NotNull(ManifestYaml.Read(File.ReadAllText(_dir.Combine("harden.yml")))!["jobs"]!["fanin"]);

        var k8s = Harden(_dir.Path, "ci", "kubernetes", "--plan", "plan.json", "--images", o.ImagesDir, "--registry", "registry.example/hardened",
            "--tool-image", o.ToolImage, "--records-claim", "harden-records");
        Assert.True(k8s.Code == 0, k8s.StdErr);
        Assert.Equal(["ConfigMap", "ConfigMap", "Job", "Job"], ManifestYaml.ReadAll(k8s.StdOut).Select(d => (string)d!["kind"]!));

        var unpinned = Harden(_dir.Path, "ci", "kubernetes", "--plan", "plan.json", "--images", o.ImagesDir, "--registry", "registry.example/hardened",
            "--tool-image", "registry.example/hardened/harden:latest", "--records-claim", "harden-records");
        Assert.Equal(2, unpinned.Code);
        Assert.Single(unpinned.StdErr.Trim().Split('\n'));
        Assert.Contains("pin it by digest", unpinned.StdErr);
        Assert.Empty(unpinned.StdOut);
    }
}
