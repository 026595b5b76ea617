using System.Diagnostics;
using System.Formats.Tar;
using System.Text;
using CsCheck;
using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Deb;
using HardenImage.Deploy;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Scan;
using HardenImage.Signing;
using HardenImage.Tests.Apt;
using HardenImage.Tests.Deb;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Fuzz;

/// <summary>
/// Issue 17 §6, the fuzzing harness that stays: every parser and reader of outside input is fed mutated valid
/// inputs (CsCheck, seeded and replayable). Each input must either parse or be refused with one single-line
/// HardenException — no other exception type, at most <see cref="MaxAllocatedBytes"/> allocated and
/// <see cref="HangAfter"/> spent per input — and inputs that are certainly corrupt (cut short; a Release line
/// changed under its signature) must be refused, never accepted.
/// </summary>
/// <remarks>
/// Budget: <c>HARDEN_FUZZ_ITERATIONS</c> inputs per target (default <see cref="DefaultIterations"/>, about 30 s for
/// the whole set on 2 shared cores); set it to e.g. 100000 for a long run on demand (docs/limits.md).
/// </remarks>
[Collection("Fuzz")] // one target at a time: the allocation bound is per thread, and CI cores are few
public sealed class ParserFuzzTests
{
    public const int DefaultIterations = 150;
    private const long MaxAllocatedBytes = 96L << 20;
    // A hang detector, not a performance assertion: inputs here parse in milliseconds.
    private static readonly TimeSpan HangAfter = TimeSpan.FromSeconds(20);

    private static long Iterations =>
        long.TryParse(Environment.GetEnvironmentVariable("HARDEN_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : DefaultIterations;

    /// <param name="Cost">How many times dearer one input is than the usual (InRelease: three signature checks over
    /// 100 KB, ~0.5 s here); the target gets that many times fewer inputs.</param>
    private sealed record Target(Func<byte[][]> Seeds, Action<byte[]> Parse, bool PrefixIsCorrupt, int Cost = 1);

    private static readonly string Repo = RepoRoot.Find();
    private static readonly string Data = Path.Combine(AppContext.BaseDirectory, "TestData");

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static readonly InReleaseVerifier InRelease = new(new FixedClock(new DateTimeOffset(2026, 11, 26, 0, 0, 0, TimeSpan.Zero)));
    private static readonly Lazy<OpenPgpKeyring> Keyring = new(() => OpenPgpKeyring.Load(Path.Combine(Data, "Apt", "debian-archive-keyring.gpg")));

    // Scratch copies of the shipped inputs, made once per run and left to the OS temp cleaner on exit.
    private static readonly Lazy<TempDir> ImageDir = new(() => CopyOf("images"));
    private static readonly Lazy<TempDir> SourcesDir = new(() => CopyOf("images"));
    private static readonly Lazy<TempDir> DeployDir = new(() => new TempDir("hi-fuzz-deploy"));

    private static readonly Dictionary<string, Target> Targets = new()
    {
        ["Packages (deb822)"] = new(
            () => [Utf8("Package: a\nVersion: 1:2.0-1\nArchitecture: amd64\nSource: b (2.0-1)\nFilename: pool/a.deb\nSHA256: 00\nSize: 10\n" +
                        "Depends: c (>= 1) | d, e\nDescription: x\n multi\n .\n line\n\nPackage: c\nVersion: 1\nArchitecture: all\nFilename: c.deb\nSHA256: 01\nSize: 1\n")],
            b => PackagesIndex.Read(new MemoryStream(b), "fuzz", "http://127.0.0.1/debian").ToList(),
            PrefixIsCorrupt: false),
        ["InRelease"] = new(
            () => [File.ReadAllBytes(Path.Combine(Data, "Apt", "trixie.InRelease"))],
            b => InRelease.Verify(b, Keyring.Value, "fuzz"),
            PrefixIsCorrupt: true, Cost: 15),
        [".deb (ar, control.tar, data.tar: none, gz, zst, xz)"] = new(
            () => [File.ReadAllBytes(Path.Combine(Data, "Deb", "base-files_13.8+deb13u8_amd64.deb")), SmallDeb("data.tar"),
                   SmallDeb("data.tar.zst"), SmallDeb("data.tar.gz")],
            ReadDeb,
            PrefixIsCorrupt: true),
        ["lock"] = new(
            () => [Utf8(SmallLock())],
            b => BoundedJson.Deserialize<LockFile>(b, "fuzz", "lock file", InputLimits.MaxLockBytes, LockFile.JsonOptions),
            PrefixIsCorrupt: true),
        ["build.json"] = new(
            () => [Utf8("""{"version":1,"epoch":1700000000,"images":[{"name":"base","index":"sha256:00","tags":["latest"],"architectures":[{"architecture":"amd64","manifest":"sha256:01","config":"sha256:02","layers":[]}]}]}""")],
            b => BoundedJson.Deserialize<BuildManifest>(b, "fuzz", "build record", InputLimits.MaxRecordBytes, LockFile.JsonOptions),
            PrefixIsCorrupt: true),
        ["OCI index"] = new(
            () => [OciJson.Serialize(new ImageIndex { Manifests = [Descriptor("a"), Descriptor("b") with { Platform = new Platform { Architecture = "arm64", Variant = "v8" } }] })],
            b => OciJson.Deserialize<ImageIndex>(b, "fuzz"),
            PrefixIsCorrupt: true),
        ["OCI manifest"] = new(
            () => [OciJson.Serialize(new ImageManifest { Config = Descriptor("c"), Layers = [Descriptor("l")], Annotations = new() { ["k"] = "v" } })],
            b => OciJson.Deserialize<ImageManifest>(b, "fuzz"),
            PrefixIsCorrupt: true),
        ["OCI config"] = new(
            () => [OciJson.Serialize(new ImageConfig { Architecture = "amd64", RootFs = new RootFs { DiffIds = ["sha256:00"] },
                       Config = new ContainerConfig { User = "65532", Env = ["A=b"], ExposedPorts = new() { ["80/tcp"] = new object() } } })],
            b => OciJson.Deserialize<ImageConfig>(b, "fuzz"),
            PrefixIsCorrupt: true),
        ["image YAML (images/*.yaml)"] = new(
            () => [File.ReadAllBytes(Path.Combine(Repo, "images", "base.yaml"))],
            b => { File.WriteAllBytes(ImageDir.Value.Combine("images", "base.yaml"), b); ImageSet.Load(ImageDir.Value.Combine("images")); },
            PrefixIsCorrupt: false),
        ["sources YAML"] = new(
            () => [File.ReadAllBytes(Path.Combine(Repo, "images", "sources.yaml"))],
            b => { File.WriteAllBytes(SourcesDir.Value.Combine("images", "sources.yaml"), b); ImageSet.Load(SourcesDir.Value.Combine("images")); },
            PrefixIsCorrupt: false),
        ["policy YAML"] = new(
            () => [File.ReadAllBytes(Path.Combine(Repo, "policies", "vulnerabilities.yaml"))],
            b => VulnerabilityPolicy.Parse(Encoding.UTF8.GetString(b), "fuzz.yaml"),
            PrefixIsCorrupt: false),
        ["deploy YAML"] = new(
            () => [File.ReadAllBytes(Path.Combine(Repo, "deploy", "inference-cpu.yaml"))],
            b => { var f = DeployDir.Value.Combine("inference-cpu.yaml"); File.WriteAllBytes(f, b); DeploymentDescriptions.Load(f); },
            PrefixIsCorrupt: false),
        ["OSV JSON"] = new(
            () => Directory.EnumerateFiles(Path.Combine(Data, "Scan", "vulndb", "pypi", "aquasecurity-vuln-list-osv"), "*.json", SearchOption.AllDirectories)
                .Order(StringComparer.Ordinal).Take(4).Select(File.ReadAllBytes).ToArray(),
            b => { using var d = BoundedJson.Parse(b, "fuzz", "advisory file", InputLimits.MaxAdvisoryFileBytes); if (OsvReader.LooksLikeOsv(d.RootElement)) OsvReader.Read(d.RootElement, "fuzz").ToList(); },
            PrefixIsCorrupt: true),
        ["OSV YAML"] = new(
            () => Directory.EnumerateFiles(Path.Combine(Data, "Scan", "vulndb", "pypi", "pypa-advisory-database"), "*.yaml", SearchOption.AllDirectories)
                .Order(StringComparer.Ordinal).Take(4).Select(File.ReadAllBytes).ToArray(),
            b => { var root = OsvReader.YamlToJson(Encoding.UTF8.GetString(b), "fuzz.yaml"); if (OsvReader.LooksLikeOsv(root)) OsvReader.Read(root, "fuzz.yaml").ToList(); },
            PrefixIsCorrupt: false),
        ["Debian tracker JSON (both formats)"] = new(
            () => [File.ReadAllBytes(Path.Combine(Data, "Scan", "vulndb", "debian", "anchore-vunnel-fixtures", "debian.json")),
                   .. Directory.EnumerateFiles(Path.Combine(Data, "Scan", "vulndb", "debian", "aquasecurity-vuln-list-debian"), "*.json", SearchOption.AllDirectories)
                       .Order(StringComparer.Ordinal).Take(3).Select(File.ReadAllBytes)],
            ReadTracker,
            PrefixIsCorrupt: true),
        ["SBOM and scan report JSON"] = new(
            () => [Utf8("""{"bomFormat":"CycloneDX","specVersion":"1.6","serialNumber":"urn:uuid:0","components":[{"type":"library","name":"libc6","version":"2.41","purl":"pkg:deb/debian/libc6@2.41"}]}"""),
                   Utf8("""{"scannedAt":"2026-12-01T00:00:00Z","image":"base","findings":[{"id":"CVE-1","severity":"high"}],"policy":{"passed":true}}""")],
            b =>
            {
                var node = BoundedJson.ParseNode(b, "fuzz", "report", InputLimits.MaxReportBytes);
                if (node is System.Text.Json.Nodes.JsonObject o && o.ContainsKey("bomFormat")) Predicates.CycloneDx(b);
                else Predicates.Vuln(new VulnScanInput { ScannerUri = "u", ScannerVersion = "1", Result = node, ScanStartedOn = DateTimeOffset.UnixEpoch, ScanFinishedOn = DateTimeOffset.UnixEpoch });
            },
            PrefixIsCorrupt: true),
    };

    public static TheoryData<string> TargetNames() => new(Targets.Keys);

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void MutatedInput_IsParsedOrRefusedCleanly_WithBoundedCost(string target)
    {
        var t = Targets[target];
        var seeds = t.Seeds();
        Assert.NotEmpty(seeds);
        foreach (var seed in seeds) t.Parse(seed); // the seeds themselves are valid: the harness tests the right thing
        Explained(() => Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.ULong)
            .Sample(pick =>
            {
                byte[] input;
                try { input = Mutator.Mutate(seeds[pick.Item1], pick.Item2); }
                catch (Exception e) { _lastFailure = "mutator: " + e; throw; }
                Check(target, t, input);
            }, iter: Math.Max(5, Iterations / t.Cost), threads: 1));
    }

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void TruncatedInput_IsRefused_WhereTheFormatCanTell(string target)
    {
        var t = Targets[target];
        var seeds = t.Seeds();
        Explained(() => Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Double[0, 1])
            .Sample(pick =>
            {
                var seed = seeds[pick.Item1];
                // Whitespace after the last byte that matters (a trailing newline, an ar pad byte) may go unnoticed.
                var cut = (int)(pick.Item2 * (seed.Length - 2));
                var refused = Check(target, t, seed[..cut]);
                if (t.PrefixIsCorrupt) Assert.True(refused, $"{target}: a copy cut to {cut} of {seed.Length} bytes was accepted");
            }, iter: Math.Max(5, Iterations / 5 / t.Cost), threads: 1));
    }

    [Fact]
    public void InRelease_WithAReleaseLineChanged_IsNeverAccepted()
    {
        var seed = File.ReadAllBytes(Path.Combine(Data, "Apt", "trixie.InRelease"));
        var text = Encoding.ASCII.GetString(seed);
        var bodyStart = text.IndexOf("\n\n", StringComparison.Ordinal) + 2; // after the armour header of the signed part
        var bodyEnd = text.IndexOf("-----BEGIN PGP SIGNATURE-----", StringComparison.Ordinal);
        Explained(() => Gen.Select(Gen.Int[bodyStart, bodyEnd - 1], Gen.Byte[(byte)'!', (byte)'~'])
            .Where(p => seed[p.Item1] is > (byte)' ' and <= (byte)'~' && seed[p.Item1] != p.Item2 && seed[p.Item1] != (byte)'-')
            .Sample(p =>
            {
                var changed = (byte[])seed.Clone();
                changed[p.Item1] = p.Item2;
                Assert.True(Check("InRelease", Targets["InRelease"], changed), $"byte {p.Item1} changed to '{(char)p.Item2}' was accepted");
            }, iter: Math.Max(3, Iterations / 50), threads: 1));
    }

    /// <summary>CsCheck reports the seed to replay; this adds what went wrong for the smallest failing input.</summary>
    private static void Explained(Action sample)
    {
        _lastFailure = null;
        try { sample(); }
        catch (CsCheckException e)
        {
            Assert.Fail($"{e.Message}\n{_lastFailure ?? e.InnerException?.ToString() ?? e.ToString()}");
        }
    }

    private static string? _lastFailure; // the tests of this class run one at a time (collection "Fuzz")

    /// <summary>Runs one input; true when it was refused (HardenException), false when accepted. Anything else fails.</summary>
    private static bool Check(string target, Target t, byte[] input)
    {
        try { return CheckCore(target, t, input); }
        catch (Exception e) when (e is not HardenException)
        {
            _lastFailure = e.Message;
            throw;
        }
    }

    private static bool CheckCore(string target, Target t, byte[] input)
    {
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        bool refused;
        try
        {
            t.Parse(input);
            refused = false;
        }
        catch (HardenException e)
        {
            Assert.False(string.IsNullOrWhiteSpace(e.Message), $"{target}: empty message");
            Assert.False(e.Message.Contains('\n'), $"{target}: message of more than one line: {e.Message}");
            refused = true;
        }
        catch (Exception e)
        {
            Assert.Fail($"{target}: {e.GetType().Name} instead of a HardenException for a {input.Length}-byte input " +
                        $"(base64 {Convert.ToBase64String(input.AsSpan(0, Math.Min(input.Length, 4096)))}): {e}");
            throw;
        }
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Assert.True(allocated < MaxAllocatedBytes, $"{target}: {allocated >> 20} MiB allocated for a {input.Length}-byte input");
        Assert.True(clock.Elapsed < HangAfter, $"{target}: {clock.Elapsed} for a {input.Length}-byte input");
        return refused;
    }

    private static TempDir CopyOf(string folder)
    {
        var dir = new TempDir("hi-fuzz");
        var source = Path.Combine(Repo, folder);
        foreach (var f in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var to = dir.Combine(folder, Path.GetRelativePath(source, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        return dir;
    }

    private static void ReadDeb(byte[] b)
    {
        using var reader = DebPackageReader.Open(new MemoryStream(b), "fuzz.deb");
        foreach (var e in reader.ReadDataEntries()) e.Content.CopyTo(Stream.Null);
    }

    private static void ReadTracker(byte[] b)
    {
        using var d = BoundedJson.Parse(b, "fuzz", "advisory file", InputLimits.MaxAdvisoryFileBytes);
        if (VulnListDebianReader.LooksLikeVulnList(d.RootElement))
        {
            var r = new VulnListDebianReader();
            r.Add(d.RootElement, "fuzz");
            r.Records().ToList();
        }
        else if (DebianTrackerReader.LooksLikeTracker(d.RootElement)) DebianTrackerReader.Read(d.RootElement, "fuzz").ToList();
        else throw new HardenException("fuzz: neither tracker format");
    }

    private static Descriptor Descriptor(string seed) => new()
    {
        MediaType = MediaTypes.ImageManifest,
        Digest = "sha256:" + Sha256Hex.Of(Encoding.UTF8.GetBytes(seed)),
        Size = 123,
        Platform = new Platform { Architecture = "amd64" },
    };

    private static string SmallLock()
    {
        var full = LockFile.Load(Path.Combine(Repo, "images", "images.lock.json"));
        var image = full.Images[0];
        var small = full with
        {
            Images = [image with { Architectures = [image.Architectures[0] with { Packages = image.Architectures[0].Packages.Take(3).ToList() }] }],
        };
        return small.ToJson();
    }

    private static byte[] SmallDeb(string dataMember)
    {
        var tar = new MemoryStream();
        using (var tw = new TarWriter(tar, TarEntryFormat.Gnu, leaveOpen: true))
        {
            tw.WriteEntry(CraftedDeb.Dir("./usr/"));
            tw.WriteEntry(CraftedDeb.File("./usr/a", Utf8("hello\n")));
            tw.WriteEntry(CraftedDeb.Link(TarEntryType.SymbolicLink, "./usr/l", "a"));
            tw.WriteEntry(CraftedDeb.Link(TarEntryType.HardLink, "./usr/h", "./usr/a"));
        }
        var bytes = tar.ToArray();
        var data = dataMember switch
        {
            "data.tar.zst" => HostileDebs.Zstd(bytes),
            "data.tar.gz" => Gzip(bytes),
            _ => bytes,
        };
        return HostileDebs.Deb(data, dataMember, CraftedDeb.Control + "Installed-Size: 4\n");
    }

    private static byte[] Gzip(byte[] bytes)
    {
        var ms = new MemoryStream();
        using (var gz = new System.IO.Compression.GZipStream(ms, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true)) gz.Write(bytes);
        return ms.ToArray();
    }
}
