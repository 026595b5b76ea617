using System.Text.Json;
using HardenImage.Cli;
using HardenImage.Cli.Commands;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Sbom;
using Spectre.Console.Cli;

namespace HardenImage.Tests.Scan;

/// <summary>Runs the real commands (as registered by AddScanCommands) over a small built image.</summary>
[Collection("ScanCli")] // the commands resolve relative defaults against the working directory
public class ScanCliTests
{
    private static int Run(params string[] args)
    {
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.PropagateExceptions();
            c.AddScanCommands();
        });
        return CliHost.Run(app, args);
    }

    private static string WriteBuild(TempDir dir, string name, string manifestDigest)
    {
        var build = new { images = new[] { new { name, index = "sha256:" + new string('0', 64), architectures = new[] { new { architecture = "amd64", manifest = manifestDigest, config = "sha256:" + new string('1', 64), layers = Array.Empty<string>() } } } } };
        Directory.CreateDirectory(dir.Combine("artifacts"));
        File.WriteAllText(dir.Combine("artifacts", "build.json"), JsonSerializer.Serialize(build));
        return dir.Combine("artifacts");
    }

    [Fact]
    public void Cli_SbomScanAndGate_WriteOutputsAndExitOneOnFailure()
    {
        using var dir = new TempDir("hi-cli");
        var layout = OciLayout.OpenOrCreate(dir.Combine("artifacts", "oci"));
        var digest = new TestImage().OsRelease()
            .Package("libc6", "2.41-10", source: "glibc")
            .PythonDist("usr/lib/python3/dist-packages", "torch", "2.5.1")
            .WriteTo(layout);
        var outDir = WriteBuild(dir, "inference-cpu", digest);
        var lockPath = ScanFixtures.WriteLock(dir.Combine("images.lock.json"), "inference-cpu", TestImage.Locked("libc6", "2.41-10", "glibc", "2.41-10"));
        var db = ScanFixtures.RealDb;
        var cache = dir.Combine("cache");

        Assert.Equal(0, Run("sbom", "--layout", dir.Combine("artifacts", "oci"), "--lock", lockPath, "--out", outDir));
        var sbom = File.ReadAllBytes(Path.Combine(outDir, "sbom", "inference-cpu.amd64.cdx.json"));
        SchemaValidation.AssertCycloneDx(sbom);

        // torch 2.5.1 has no CVSS in the excerpts; an allow-everything-but-unknown policy passes, the strict one fails.
        var strict = dir.Combine("strict.yaml");
        File.WriteAllText(strict, "failOnFixable: [critical, high, medium, low, unknown]\n");
        var code = Run("scan", "--layout", dir.Combine("artifacts", "oci"), "--lock", lockPath, "--out", outDir, "--db", db, "--cache", cache, "--policy", strict);
        Assert.Equal(1, code);
        var stem = Path.Combine(outDir, "scan", "inference-cpu.amd64");
        using (var report = JsonDocument.Parse(File.ReadAllBytes(stem + ".json")))
        {
            Assert.False(report.RootElement.GetProperty("policy").GetProperty("passed").GetBoolean());
            Assert.Contains(report.RootElement.GetProperty("findings").EnumerateArray(), f => f.GetProperty("id").GetString() == "CVE-2025-32434");
        }
        SchemaValidation.AssertCycloneDx(File.ReadAllBytes(stem + ".cdx-vex.json"));
        SchemaValidation.AssertOpenVex(File.ReadAllBytes(stem + ".openvex.json"));

        var lenient = dir.Combine("lenient.yaml");
        File.WriteAllText(lenient, "failOnFixable: []\nmaxUnfixed: {}\n");
        Assert.Equal(0, Run("scan", "--layout", dir.Combine("artifacts", "oci"), "--lock", lockPath, "--out", outDir, "--db", db, "--cache", cache, "--policy", lenient));
        Assert.Single(Directory.GetFiles(Path.Combine(cache, "advisory-index")));

        // Without the lock nothing says which release libc6 is from: unscanned, the gate fails and the report names it.
        var noLock = dir.Combine("no-lock.json");
        Assert.Equal(1, Run("scan", "--layout", dir.Combine("artifacts", "oci"), "--lock", noLock, "--out", outDir, "--db", db, "--cache", cache, "--policy", lenient));
        using (var report = JsonDocument.Parse(File.ReadAllBytes(stem + ".json")))
            Assert.Equal("libc6", Assert.Single(report.RootElement.GetProperty("unscanned").EnumerateArray()).GetProperty("package").GetString());
        Assert.Equal(0, Run("scan", "--layout", dir.Combine("artifacts", "oci"), "--lock", noLock, "--out", outDir, "--db", db, "--cache", cache, "--policy", lenient, "--allow-unscanned"));

        // No data and not allowed: exit 2 with the how-to; allowed: outputs marked unscanned.
        Assert.Equal(2, Run("scan", "--layout", dir.Combine("artifacts", "oci"), "--lock", lockPath, "--out", outDir, "--db", dir.Combine("missing")));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void Cli_DbUpdate_UnreachableFailsFastWithExitTwo()
    {
        using var dir = new TempDir("hi-cli");
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        var port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(2, Run("db", "update", "--out", dir.Combine("feeds"), "--tracker-url", $"http://127.0.0.1:{port}/tracker/data/json",
            "--osv-url", $"http://127.0.0.1:{port}", "--connect-timeout", "5"));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"took {sw.Elapsed}"); // refused at once; only a hang reaches this generous bound
        Assert.False(Directory.Exists(dir.Combine("feeds")) && Directory.EnumerateFiles(dir.Combine("feeds")).Any());
    }
}
