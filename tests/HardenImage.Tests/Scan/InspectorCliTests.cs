using System.Diagnostics;
using System.Text.Json;
using HardenImage.Contracts;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Tests.Aws;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Sbom;
using static HardenImage.Tests.Scan.InspectorFindingSourceTests;

namespace HardenImage.Tests.Scan;

/// <summary>
/// <c>harden scan --inspector</c> and <c>harden scan --ecr</c> as a user runs them: the real harden.dll in a child
/// process whose AWS settings come only from its environment (no ~/.aws, no instance metadata), talking to
/// <see cref="SigV4LoopbackServer"/> through <c>--inspector-endpoint</c>.
/// </summary>
[Trait("Category", "Integration")]
public class InspectorCliTests
{
    private static (int Code, string Output) Harden(string workingDirectory, IDictionary<string, string?> env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "harden.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        // Whatever AWS settings the test runner has must not leak in: the child sees only what the test gives it.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("AWS_", StringComparison.OrdinalIgnoreCase)).ToList())
            psi.Environment.Remove(key);
        psi.Environment["HOME"] = workingDirectory;
        psi.Environment["AWS_CONFIG_FILE"] = Path.Combine(workingDirectory, "no-aws-config");
        psi.Environment["AWS_SHARED_CREDENTIALS_FILE"] = Path.Combine(workingDirectory, "no-aws-credentials");
        psi.Environment["AWS_EC2_METADATA_DISABLED"] = "true";
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["COLUMNS"] = "250";
        foreach (var (k, v) in env)
            if (v == null) psi.Environment.Remove(k); else psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"harden {string.Join(' ', args)} did not finish in 2 minutes");
        }
        // Redirected, the console is 80 columns wide and wraps long lines: compare with whitespace runs collapsed.
        return (p.ExitCode, System.Text.RegularExpressions.Regex.Replace(stdout.Result + stderr.Result, @"\s+", " "));
    }

    private static Dictionary<string, string?> Keys(string? region = "us-east-1", string secret = SigV4LoopbackServer.DefaultSecretAccessKey) => new()
    {
        ["AWS_ACCESS_KEY_ID"] = SigV4LoopbackServer.DefaultAccessKeyId,
        ["AWS_SECRET_ACCESS_KEY"] = secret,
        ["AWS_REGION"] = region,
    };

    /// <summary>A built image (layout + build.json) with libc6, zlib1g and Jinja2, as 'harden build' leaves it.</summary>
    private static string[] BuiltImage(TempDir dir)
    {
        var layout = OciLayout.OpenOrCreate(dir.Combine("artifacts", "oci"));
        var digest = new TestImage().OsRelease()
            .Package("libc6", "2.41-10", source: "glibc")
            .Package("zlib1g", "1:1.3.dfsg+really1.3.1-1+b1", source: "zlib (1:1.3.dfsg+really1.3.1-1)")
            .PythonDist("usr/lib/python3/dist-packages", "Jinja2", "3.1.4")
            .WriteTo(layout);
        var build = new { images = new[] { new { name = "inference-cpu", index = "sha256:" + new string('0', 64),
            architectures = new[] { new { architecture = "amd64", manifest = digest, config = "sha256:" + new string('1', 64), layers = Array.Empty<string>() } } } } };
        File.WriteAllText(dir.Combine("artifacts", "build.json"), JsonSerializer.Serialize(build));
        var lockPath = ScanFixtures.WriteLock(dir.Combine("images.lock.json"), "inference-cpu", TestImage.Locked("libc6", "2.41-10", "glibc", "2.41-10"),
            TestImage.Locked("zlib1g", "1:1.3.dfsg+really1.3.1-1+b1", "zlib", "1:1.3.dfsg+really1.3.1-1"));
        return ["scan", "--layout", dir.Combine("artifacts", "oci"), "--lock", lockPath, "--out", dir.Combine("artifacts"),
            "--db", ScanFixtures.RealDb, "--cache", dir.Combine("cache")];
    }

    [Fact]
    public async Task Cli_Inspector_MergesFindingsNamesSourcesAndGates()
    {
        using var dir = new TempDir("hi-insp");
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector-scan", ScanRoute, CycloneDxAnswer(TrixieVulnerabilities));

        var (code, output) = Harden(dir.Path, Keys(), [.. BuiltImage(dir), "--inspector", "--inspector-endpoint", aws.Endpoint.ToString()]);

        Assert.True(code == 1, $"exit {code} (want 1: Inspector's fixable critical fails the default policy)\n{output}");
        Assert.True(output.Contains("CVE-2099-0001 in zlib1g"), output); // the gate names Inspector's critical
        Assert.True(output.Contains("amazon-inspector 3,"), output);     // and the console counts findings per source
        Assert.True(output.Contains("1 ScanSbom request(s)"), output);
        Assert.Equal(200, Assert.Single(aws.ExchangesFor(ScanRoute)).Status);
        using var report = JsonDocument.Parse(File.ReadAllBytes(dir.Combine("artifacts", "scan", "inference-cpu.amd64.json")));
        var findings = report.RootElement.GetProperty("findings").EnumerateArray().ToList();
        string[] Sources(string id) => findings.Single(f => f.GetProperty("id").GetString() == id && f.GetProperty("package").GetString() != "libc-bin")
            .GetProperty("sources").EnumerateArray().Select(s => s.GetString()!).ToArray();
        Assert.Equal(["amazon-inspector"], Sources("CVE-2099-0001"));
        Assert.Contains("amazon-inspector", Sources("CVE-2025-8058"));
        Assert.Contains(Sources("CVE-2025-8058"), s => s.StartsWith("debian-tracker", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cli_Inspector_WrongSecretFailsWithSignatureAdvice()
    {
        using var dir = new TempDir("hi-insp");
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector-scan", ScanRoute, CycloneDxAnswer(TrixieVulnerabilities));

        var (code, output) = Harden(dir.Path, Keys(secret: "wrong-secret-value"), [.. BuiltImage(dir), "--inspector", "--inspector-endpoint", aws.Endpoint.ToString()]);

        Assert.True(code == 2, $"exit {code}\n{output}");
        Assert.True(output.Contains("InvalidSignatureException"), output);
        Assert.True(output.Contains("AWS_SECRET_ACCESS_KEY"), output);
        Assert.False(output.Contains("wrong-secret-value"), output);
    }

    [Fact]
    public void Cli_Inspector_MissingRegionOrCredentialsSayHowToConfigure()
    {
        using var dir = new TempDir("hi-insp");
        var args = BuiltImage(dir);

        var (code, output) = Harden(dir.Path, Keys(region: null), [.. args, "--inspector", "--inspector-endpoint", "http://127.0.0.1:9/"]);
        Assert.True(code == 2, $"exit {code}\n{output}");
        Assert.True(output.Contains("No AWS region"), output);
        Assert.True(output.Contains("AWS_REGION"), output);
        Assert.True(output.Contains("--aws-region"), output);

        (code, output) = Harden(dir.Path, new Dictionary<string, string?> { ["AWS_REGION"] = "us-east-1" },
            [.. args, "--inspector", "--inspector-endpoint", "http://127.0.0.1:9/"]);
        Assert.True(code == 2, $"exit {code}\n{output}");
        Assert.True(output.Contains("No AWS credentials found"), output);
        Assert.True(output.Contains("AWS_ACCESS_KEY_ID"), output);

        (code, output) = Harden(dir.Path, Keys(), [.. args, "--inspector", "--inspector-endpoint", "http://inspector.example.com/"]);
        Assert.True(code == 2, $"exit {code}\n{output}");
        Assert.True(output.Contains("only allowed to a loopback address"), output);
    }

    [Fact]
    public async Task Cli_Ecr_PaginatesWritesReportAndExitsOneOnFixableCritical()
    {
        using var dir = new TempDir("hi-insp");
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector2", FindingsRoute, ListFindingsAnswer(new Dictionary<string, (string, string, string, double, string?)[][]>
        {
            [Digest('a')] = ThreePages,
        }));
        aws.Handle("ecr", ScanStatusTarget, ScanStatusAnswer("PENDING", "COMPLETE"));
        var artifacts = dir.Combine("artifacts");
        Directory.CreateDirectory(artifacts);
        PushedFile.Save(Path.Combine(artifacts, "pushed.json"), "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml",
            [new ImagePushResult("python", "ml/python", Digest('0'), ["latest"], new Dictionary<string, string> { ["amd64"] = Digest('a') }, 0, 0, 0, 0, 0, 0)]);

        // No --region and no AWS_REGION: the region comes from the ECR registry in pushed.json.
        var (code, output) = Harden(dir.Path, Keys(region: null), "scan", "--ecr", "python", "--out", artifacts, "--inspector-endpoint", aws.Endpoint.ToString());

        Assert.True(code == 1, $"exit {code}\n{output}");
        Assert.True(output.Contains("waiting for ECR to finish scanning ml/python@"), output); // PENDING: waited, with progress
        Assert.Equal(3, aws.ExchangesFor(FindingsRoute).Count);
        Assert.All(aws.ExchangesFor(FindingsRoute), e => Assert.Equal(200, e.Status));
        Assert.True(output.Contains("4 finding(s) from amazon-inspector; policy: FAILED"), output);
        Assert.True(output.Contains("CVE-2099-2000 in libbaz"), output);
        using var report = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(artifacts, "scan", "python.inspector2.json")));
        Assert.Equal("us-east-1", report.RootElement.GetProperty("region").GetString());
        var ids = report.RootElement.GetProperty("images")[0].GetProperty("findings").EnumerateArray().Select(f => f.GetProperty("id").GetString());
        Assert.Equal(["CVE-2099-2000", "CVE-2099-3000", "CVE-2099-1000", "CVE-2099-1001"], ids);

        // A policy that accepts the critical until next year passes.
        var policy = dir.Combine("accept.yaml");
        File.WriteAllText(policy, "allowlist:\n  - {id: CVE-2099-2000, package: libbaz, justification: not reachable in inference, expires: '2099-01-01'}\n");
        (code, output) = Harden(dir.Path, Keys(region: null), "scan", "--ecr", "python", "--out", artifacts, "--policy", policy, "--inspector-endpoint", aws.Endpoint.ToString());
        Assert.True(code == 0, $"exit {code}\n{output}");
        Assert.True(output.Contains("4 finding(s) from amazon-inspector; policy: passed"), output);
        using var accepted = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(artifacts, "scan", "python.inspector2.json")));
        Assert.Equal("not reachable in inference", accepted.RootElement.GetProperty("images")[0].GetProperty("findings")[0]
            .GetProperty("allowlisted").GetProperty("justification").GetString());
    }
}
