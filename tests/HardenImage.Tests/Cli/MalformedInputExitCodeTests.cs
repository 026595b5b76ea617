using System.IO.Compression;
using System.Text;
using HardenImage.Oci;
using HardenImage.Tests.Common;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Cli;

/// <summary>
/// Issue 17 §5: malformed input of any kind ends with exit 2 and ONE line that names the file — never exit 134, a
/// stack trace or a hang. Each case runs the real `harden` process (a stack overflow or an abort would show as
/// such) over a copy of the shipped images/ with one input broken; hostile inputs are made here, not committed.
/// </summary>
[Trait("Category", "Integration")]
public sealed class MalformedInputExitCodeTests
{
    private sealed record Case(string[] Args, string NamedFile);

    private static readonly Dictionary<string, Func<TempDir, Case>> Cases = new()
    {
        // images/*.yaml and sources.yaml (harden lock --check)
        ["image yaml nested 100,000 deep"] = d => Images(d, "base.yaml", HostileYaml.DeepFlow(100_000)),
        ["image yaml nested 1,000 deep (block)"] = d => Images(d, "base.yaml", HostileYaml.DeepBlock(1_000)),
        ["image yaml alias bomb"] = d => Images(d, "base.yaml", HostileYaml.BillionLaughsOsv().Replace("id: PYSEC-0000-1\n", "")),
        ["image yaml control byte"] = d => Images(d, "base.yaml", "packages: [libc6\u0007]\n"),
        ["image yaml escape sequence"] = d => Images(d, "base.yaml", "description: \u001b[2Jwiped\n"),
        ["image yaml list as a key"] = d => Images(d, "base.yaml", "? [a, b]\n: 1\n"),
        ["image yaml mapping as a key (flow)"] = d => Images(d, "base.yaml", "{{a: 1}: 2}\n"),
        ["image yaml duplicate key"] = d => Images(d, "base.yaml", "packages: [a]\npackages: [b]\n"),
        ["image yaml not UTF-8"] = d => Images(d, "base.yaml", null, [.. "packages: [\xff"u8.ToArray().Take(11), 0xFF, 0xFE, (byte)']']),
        ["image yaml unterminated quote"] = d => Images(d, "base.yaml", "packages: ['libc6\n"),
        ["image yaml 2 MiB (sparse)"] = d => Images(d, "base.yaml", null, null, sparse: 2L << 20),
        ["image yaml packages is a mapping"] = d => Images(d, "base.yaml", "packages: {libc6: yes}\n"),
        ["image yaml top level is a list"] = d => Images(d, "base.yaml", "- libc6\n"),
        ["sources yaml nested 10,000 deep"] = d => Images(d, "sources.yaml", HostileYaml.DeepFlow(10_000, "sources")),
        ["sources yaml list as a key"] = d => Images(d, "sources.yaml", "sources:\n  - ? [x]\n    : y\n"),
        ["sources yaml list as a source name"] = d => Images(d, "sources.yaml", "sources:\n  ? [debian]\n  : {url: 'http://127.0.0.1/'}\n"),
        // images/images.lock.json
        ["lock is JSON null"] = d => Lock(d, "null"),
        ["lock packages null"] = d => Lock(d, LockWith("null")),
        ["lock packages [null]"] = d => Lock(d, LockWith("[null]")),
        ["lock truncated"] = d => Lock(d, "{\"lockVersion\":1,\"images\":[{\"name\":"),
        ["lock nested 100,000 deep"] = d => Lock(d, "{\"images\":" + new string('[', 100_000) + new string(']', 100_000) + "}"),
        ["lock lockVersion is a string"] = d => Lock(d, "{\"lockVersion\":\"one\"}"),
        ["lock 65 MiB (sparse)"] = d => Lock(d, null, sparse: 65L << 20),
        // policies/vulnerabilities.yaml (harden scan --policy; read first)
        ["policy nested 10,000 deep"] = d => Policy(d, HostileYaml.DeepFlow(10_000, "failOnFixable")),
        ["policy alias bomb"] = d => Policy(d, HostileYaml.BillionLaughsOsv().Replace("id: PYSEC-0000-1\nmodified: '2024-01-01T00:00:00Z'\n", "")),
        ["policy control byte"] = d => Policy(d, "failOnFixable: [critical\u0001]\n"),
        ["policy list as a key"] = d => Policy(d, "? [failOnFixable]\n: [critical]\n"),
        // advisory data (harden scan --db)
        ["db: OSV YAML alias bomb (1 KB)"] = d => Db(d, "PYSEC-0000-1.yaml", Encoding.UTF8.GetBytes(HostileYaml.BillionLaughsOsv())),
        ["db: OSV YAML nested 100,000 deep"] = d => Db(d, "deep.yaml", Encoding.UTF8.GetBytes(HostileYaml.DeepFlow(100_000, "affected"))),
        ["db: tracker JSON nested 100,000 deep"] = d => Db(d, "tracker.json", Encoding.UTF8.GetBytes(new string('[', 100_000) + new string(']', 100_000))),
        ["db: OSV JSON truncated"] = d => Db(d, "GHSA-1.json", "{\"id\":\"GHSA-1\",\"affected\":["u8.ToArray()),
        ["db: OSV JSONL with a broken line"] = d => Db(d, "all.jsonl", "{\"id\":\"A\",\"modified\":\"m\"}\n{\"id\":\n"u8.ToArray()),
        ["db: zip that is not a zip"] = d => Db(d, "all.zip", Enumerable.Repeat((byte)0x50, 300).ToArray()),
        ["db: zip with a 3 GB entry"] = d => Db(d, "all.zip", ZipWithDeclaredEntrySize(3_000_000_000)),
        // artifacts/build.json and the OCI layout (harden sbom)
        ["build.json images null"] = d => Build(d, "{\"version\":1,\"images\":null}"),
        ["build.json architectures [null]"] = d => Build(d, "{\"version\":1,\"images\":[{\"name\":\"base\",\"index\":\"sha256:00\",\"architectures\":[null]}]}"),
        ["build.json truncated"] = d => Build(d, "{\"version\":1,\"images\":[{"),
        ["OCI manifest with layers null"] = d => Manifest(d, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"m\",\"digest\":\"sha256:00\",\"size\":1},\"layers\":null}"),
        ["OCI manifest with config null"] = d => Manifest(d, "{\"schemaVersion\":2,\"config\":null,\"layers\":[]}"),
    };

    public static TheoryData<string> CaseNames() => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void MalformedInput_ExitsTwo_WithOneLineNamingTheFile(string name)
    {
        using var dir = new TempDir("hi-malformed");
        var c = Cases[name](dir);
        var dll = Path.Combine(AppContext.BaseDirectory, "harden.dll");
        var (code, stdout, stderr) = RequiredService.Run("dotnet", [dll, .. c.Args], workingDirectory: dir.Path,
            env: new Dictionary<string, string> { ["COLUMNS"] = "100000", ["NO_COLOR"] = "1", ["HARDEN_CACHE"] = dir.Combine("cache") },
            timeout: TimeSpan.FromMinutes(2));
        var output = stdout + stderr;
        Assert.True(code == 2, $"exit {code} for '{name}':\n{output}");
        Assert.DoesNotContain("   at ", output);
        Assert.DoesNotContain("Unhandled exception", output);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var errorAt = Array.FindIndex(lines, l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.True(errorAt >= 0, $"no error line for '{name}':\n{output}");
        Assert.True(lines.Count(l => l.StartsWith("error:", StringComparison.Ordinal)) == 1, $"more than one error for '{name}':\n{output}");
        Assert.True(lines.Take(errorAt).All(l => l.StartsWith("warning:", StringComparison.Ordinal) || l.StartsWith("not checked", StringComparison.Ordinal)),
            $"output before the error for '{name}':\n{output}");
        // Spectre.Console wraps at 80 columns when output is redirected (spectre.console#216), so the one message may
        // span several physical lines here; everything after "error:" is that message, and it names the file.
        var message = string.Concat(lines.Skip(errorAt)).Replace(" ", "");
        Assert.True(message.Contains(c.NamedFile.Replace(" ", "")), $"the error does not name {c.NamedFile}:\n{output}");
    }

    private static string ValidLock(TempDir d)
    {
        var path = d.Combine("images.lock.json");
        File.Copy(Path.Combine(RepoRoot.Find(), "images", "images.lock.json"), path);
        return path;
    }

    private static string CopyImages(TempDir d)
    {
        var target = d.Combine("images");
        var source = Path.Combine(RepoRoot.Find(), "images");
        foreach (var f in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(target, Path.GetRelativePath(source, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        return target;
    }

    private static void Write(string path, string? text, byte[]? bytes, long sparse)
    {
        if (sparse > 0) { using var fs = File.Create(path); fs.SetLength(sparse); }
        else if (bytes != null) File.WriteAllBytes(path, bytes);
        else File.WriteAllText(path, text);
    }

    private static Case Images(TempDir d, string file, string? text, byte[]? bytes = null, long sparse = 0)
    {
        var images = CopyImages(d);
        Write(Path.Combine(images, file), text, bytes, sparse);
        return new(["lock", "--check", "--images", images, "--lock", Path.Combine(images, "images.lock.json")], Path.Combine(images, file));
    }

    private static string LockWith(string packages) =>
        $$"""{"lockVersion":1,"sources":[],"images":[{"name":"base","inputsSha256":"00","architectures":[{"architecture":"amd64","packages":{{packages}}}]}]}""";

    private static Case Lock(TempDir d, string? json, long sparse = 0)
    {
        var images = CopyImages(d);
        var lockPath = Path.Combine(images, "images.lock.json");
        Write(lockPath, json, null, sparse);
        return new(["lock", "--check", "--images", images, "--lock", lockPath], lockPath);
    }

    private static Case Policy(TempDir d, string yaml)
    {
        var policy = d.Combine("vulnerabilities.yaml");
        File.WriteAllText(policy, yaml);
        return new(["scan", "--policy", policy, "--out", d.Combine("artifacts"), "--layout", d.Combine("artifacts", "oci")], policy);
    }

    /// <summary>A valid, empty build (so scan reaches the advisory data) and one broken advisory file.</summary>
    private static Case Db(TempDir d, string file, byte[] content)
    {
        var artifacts = d.Combine("artifacts");
        OciLayout.OpenOrCreate(Path.Combine(artifacts, "oci"));
        File.WriteAllText(Path.Combine(artifacts, "build.json"), "{\"version\":1,\"images\":[]}");
        var db = d.Combine("db");
        Directory.CreateDirectory(db);
        File.WriteAllBytes(Path.Combine(db, file), content);
        return new(["scan", "--db", db, "--out", artifacts, "--layout", Path.Combine(artifacts, "oci"), "--lock", ValidLock(d),
            "--cache", d.Combine("cache")], file);
    }

    private static Case Build(TempDir d, string json)
    {
        var artifacts = d.Combine("artifacts");
        OciLayout.OpenOrCreate(Path.Combine(artifacts, "oci"));
        var build = Path.Combine(artifacts, "build.json");
        File.WriteAllText(build, json);
        return new(["sbom", "--out", artifacts, "--layout", Path.Combine(artifacts, "oci"), "--lock", ValidLock(d)], build);
    }

    /// <summary>A build.json that points at a manifest blob with <paramref name="manifest"/> as its (digest-correct) content.</summary>
    private static Case Manifest(TempDir d, string manifest)
    {
        var artifacts = d.Combine("artifacts");
        var layout = OciLayout.OpenOrCreate(Path.Combine(artifacts, "oci"));
        var bytes = Encoding.UTF8.GetBytes(manifest);
        var digest = Digest.Of(bytes).ToString();
        Directory.CreateDirectory(Path.GetDirectoryName(layout.BlobPath(digest))!);
        File.WriteAllBytes(layout.BlobPath(digest), bytes);
        File.WriteAllText(Path.Combine(artifacts, "build.json"),
            $$"""{"version":1,"images":[{"name":"base","index":"sha256:{{new string('0', 64)}}","architectures":[{"architecture":"amd64","manifest":"{{digest}}"}]}]}""");
        return new(["sbom", "--out", artifacts, "--layout", Path.Combine(artifacts, "oci"), "--lock", ValidLock(d)], digest);
    }

    /// <summary>A real zip of one small entry whose headers declare <paramref name="size"/> uncompressed bytes.</summary>
    private static byte[] ZipWithDeclaredEntrySize(uint size)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        using (var s = zip.CreateEntry("osv/PYSEC-1.json", CompressionLevel.NoCompression).Open())
            s.Write("{}"u8);
        var bytes = ms.ToArray();
        // Local header: uncompressed size at offset 22; central directory entry ("PK\x01\x02"): at offset 24.
        BitConverter.GetBytes(size).CopyTo(bytes, 22);
        var central = bytes.AsSpan().IndexOf("PK\x01\x02"u8);
        BitConverter.GetBytes(size).CopyTo(bytes, central + 24);
        return bytes;
    }
}
