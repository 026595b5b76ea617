using System.Diagnostics;
using HardenImage.Apt;
using HardenImage.Common;
using HardenImage.Tests.Fixtures;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Apt;

[Trait("Category", "Integration")]
public sealed class AptRepositoryClientTests : IDisposable
{
    private readonly TempDir _cacheDir = new("hi-aptcache");
    private readonly HttpClient _http = AptRepositoryClient.CreateHttpClient(TimeSpan.FromSeconds(2));

    private AptRepositoryClient Client(AptRepositoryOptions? options = null) => new(_http, new AptIndexCache(_cacheDir.Path), options);

    private static AptRepositoryFixture SmallRepo(string suite = "stable", FixtureKeyType key = FixtureKeyType.Ed25519) =>
        new AptRepositoryFixture(suite, architectures: ["amd64", "arm64"], keyType: key).Add(
            new FakePackage("libfoo1", "1.2-3").WithSource("foo", "1.2-3").WithMultiArch("same")
                .WithDepends("libc6 (>= 2.36)").WithPreDepends("dpkg (>= 1.15)").WithFile("/usr/lib/libfoo.so.1", "not really ELF"),
            new FakePackage("libfoo1", "1.2-3", "arm64").WithSource("foo", "1.2-3").WithMultiArch("same"),
            new FakePackage("libc6", "2.41-7").Essential().WithProvides("libc6-abi"),
            new FakePackage("tzdata", "2025b-4", "all").WithFile("/usr/share/zoneinfo/UTC", "TZif"));

    [Fact]
    public async Task Fetch_HappyPath_VerifiesAndParsesEveryIndex()
    {
        using var repo = SmallRepo().Publish();
        var index = await Client().FetchAsync(repo.Source("fixture"));

        Assert.Equal("fixture", index.SourceName);
        Assert.Equal("stable", index.Suite);
        Assert.Equal(Sha256Hex.OfFile(repo.InReleasePath), index.InReleaseSha256);
        Assert.Equal(repo.KeyFingerprint[^16..], Assert.Single(index.Signers));
        Assert.Equal(2, index.Indices.Count);
        Assert.All(index.Indices, i => Assert.EndsWith("Packages.xz", i.Url));

        var byKey = index.Packages.ToLookup(p => p.Name);
        Assert.Equal(["amd64", "arm64"], byKey["libfoo1"].Select(p => p.Architecture).Order());
        var tz = Assert.Single(byKey["tzdata"]); // Architecture: all is in both indices, kept once
        Assert.Equal("all", tz.Architecture);
        var foo = byKey["libfoo1"].First(p => p.Architecture == "amd64");
        Assert.Equal(("foo", "1.2-3"), (foo.SourceName, foo.SourceVersion));
        Assert.Equal("libc6 (>= 2.36)", foo.Depends);
        Assert.Equal("dpkg (>= 1.15)", foo.PreDepends);
        Assert.Equal("same", foo.MultiArch);
        Assert.Equal("fixture", foo.Origin);
        Assert.Equal(repo.BaseUrl, foo.BaseUrl);
        var libc = Assert.Single(byKey["libc6"]);
        Assert.True(libc.Essential);
        Assert.Equal("libc6-abi", libc.Provides);
        Assert.Equal(("libc6", "2.41-7"), (libc.SourceName, libc.SourceVersion));

        // Filename + BaseUrl really downloads the .deb the index describes.
        var deb = await _http.GetByteArrayAsync(foo.BaseUrl + "/" + foo.Filename);
        Assert.Equal(foo.Sha256, Sha256Hex.Of(deb));
        Assert.Equal(foo.Size, deb.Length);
        Assert.Equal(index.Date, index.ToLockedSource().Date);
    }

    [Fact]
    public async Task Fetch_ArmouredKeyringAndRsaKey_Work()
    {
        using var repo = SmallRepo(key: FixtureKeyType.Rsa).Publish();
        var index = await Client().FetchAsync(repo.Source(armouredKeyring: true));
        Assert.Equal(4, index.Packages.Count);
    }

    [Fact]
    public async Task Fetch_RejectsTamperedInRelease_BadSignature()
    {
        using var repo = SmallRepo().Publish();
        var text = File.ReadAllText(repo.InReleasePath);
        var at = text.IndexOf("Suite: stable", StringComparison.Ordinal) + "Suite: ".Length;
        repo.TamperByte(repo.InReleasePath, at);
        var e = await Assert.ThrowsAsync<HardenException>(() => Client().FetchAsync(repo.Source("fx")));
        Assert.Contains("BAD signature", e.Message);
        Assert.Contains("'fx'", e.Message);
        Assert.Contains(repo.KeyFingerprint[^16..], e.Message);
    }

    [Fact]
    public async Task Fetch_RejectsKeyNotInKeyring()
    {
        using var repo = SmallRepo().Publish();
        var source = repo.Source("fx") with { KeyringPaths = [TestFiles.Path("debian-archive-keyring.gpg")] };
        var e = await Assert.ThrowsAsync<HardenException>(() => Client().FetchAsync(source));
        Assert.Contains("not in keyring", e.Message);
        Assert.Contains(repo.KeyFingerprint[^16..], e.Message);
        Assert.Contains("'fx'", e.Message);
    }

    [Fact]
    public async Task Fetch_RejectsTamperedPackagesIndex_HashMismatch()
    {
        using var repo = SmallRepo().Publish();
        repo.TamperByte(repo.PackagesPath("amd64", ".xz"));
        var e = await Assert.ThrowsAsync<HardenException>(() => Client().FetchAsync(repo.Source("fx")));
        Assert.Contains("does not match the signed Release", e.Message);
        Assert.Contains("main/binary-amd64/Packages.xz", e.Message);
        // Nothing unverified was left in the cache: every blob there is what its name says.
        var dir = Path.Combine(_cacheDir.Path, "apt-indices", "sha256");
        var files = Directory.Exists(dir) ? Directory.GetFiles(dir) : [];
        Assert.All(files, f => Assert.Equal(Path.GetFileName(f), Sha256Hex.OfFile(f)));
    }

    [Fact]
    public async Task Fetch_RejectsMirrorServingOtherBytes_EvenWithRightLength()
    {
        using var repo = SmallRepo().Publish();
        var bytes = File.ReadAllBytes(repo.PackagesPath("arm64", ".xz"));
        bytes[^5] ^= 0x40;
        repo.Server.SetFault(repo.RelativeUrlPath(repo.PackagesPath("arm64", ".xz")), new HttpFault.Replace(bytes));
        var e = await Assert.ThrowsAsync<HardenException>(() => Client().FetchAsync(repo.Source()));
        Assert.Contains("binary-arm64/Packages.xz does not match", e.Message);
    }

    [Fact]
    public async Task Fetch_RejectsExpiredValidUntil_NamesSourceAndOverride()
    {
        using var repo = SmallRepo();
        repo.ReleaseDate = DateTimeOffset.UtcNow.AddDays(-10);
        repo.ReleaseValidUntil = DateTimeOffset.UtcNow.AddDays(-3);
        repo.Publish();
        var e = await Assert.ThrowsAsync<HardenException>(() => Client().FetchAsync(repo.Source("old")));
        Assert.Contains("'old'", e.Message);
        Assert.Contains("expired", e.Message);
        Assert.Contains("AllowExpiredRelease", e.Message);
        var index = await Client().FetchAsync(repo.Source("old") with { AllowExpiredRelease = true });
        Assert.NotNull(index.ValidUntil);
    }

    [Fact]
    public async Task Fetch_UnreachableRepository_FailsFastAndNamesUrl()
    {
        var port = LoopbackPort.Free();
        using var repo = SmallRepo().Publish();
        var source = repo.Source("gone") with { BaseUrl = $"http://127.0.0.1:{port}/debian" };
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<HardenException>(() => Client().FetchAsync(source));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"took {sw.Elapsed}"); // only a hang (retries with back-off, a 30 s connect timeout) reaches this
        Assert.Contains($"http://127.0.0.1:{port}/debian", e.Message);
        Assert.Contains("unreachable", e.Message);
    }

    [Fact]
    public async Task Fetch_ServerThatNeverAnswers_TimesOutAsUnreachable()
    {
        using var repo = SmallRepo().Publish();
        repo.Server.SetFault(repo.RelativeUrlPath(repo.InReleasePath), new HttpFault.Hang());
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<HardenException>(() =>
            Client(new AptRepositoryOptions { ConnectTimeout = TimeSpan.FromSeconds(1) }).FetchAsync(repo.Source("slow")));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"took {sw.Elapsed}"); // the 1 s connect timeout, not the default 30 s x retries
        Assert.Contains("unreachable", e.Message);
        Assert.Contains(repo.BaseUrl, e.Message);
    }

    [Fact]
    public async Task Fetch_ServerError_NamesUrlAndStatus()
    {
        using var repo = SmallRepo().Publish();
        repo.Server.SetFault(repo.RelativeUrlPath(repo.InReleasePath), new HttpFault.Status(500));
        var e = await Assert.ThrowsAsync<HardenException>(() => Client().FetchAsync(repo.Source()));
        Assert.Contains("HTTP 500", e.Message);
        Assert.Contains("/dists/stable/InRelease", e.Message);
    }

    [Fact]
    public async Task Fetch_DroppedConnectionOnIndex_IsAClearError()
    {
        using var repo = SmallRepo().Publish();
        repo.Server.SetFault(repo.RelativeUrlPath(repo.PackagesPath("amd64", ".xz")), new HttpFault.TruncateBody(100));
        var e = await Assert.ThrowsAsync<HardenException>(() => Client().FetchAsync(repo.Source()));
        Assert.Contains("binary-amd64/Packages.xz", e.Message);
    }

    [Fact]
    public async Task Fetch_FallsBackToGzipThenPlainWhenXzIsMissing()
    {
        using var repo = SmallRepo().Publish();
        repo.Server.SetFault(repo.RelativeUrlPath(repo.PackagesPath("amd64", ".xz")), new HttpFault.Status(404));
        repo.Server.SetFault(repo.RelativeUrlPath(repo.PackagesPath("arm64", ".xz")), new HttpFault.Status(404));
        repo.Server.SetFault(repo.RelativeUrlPath(repo.PackagesPath("arm64", ".gz")), new HttpFault.Status(404));
        var index = await Client().FetchAsync(repo.Source());
        Assert.EndsWith("binary-amd64/Packages.gz", index.Indices[0].Url);
        Assert.EndsWith("binary-arm64/Packages", index.Indices[1].Url);
        Assert.Equal(4, index.Packages.Count);
    }

    [Fact]
    public async Task Fetch_SecondRun_UsesVerifiedCache_AndRefetchesInRelease()
    {
        using var repo = SmallRepo().Publish();
        await Client().FetchAsync(repo.Source());
        var before = repo.Server.Requests.Count;
        var again = await Client().FetchAsync(repo.Source());
        var newRequests = repo.Server.Requests.Skip(before).ToList();
        Assert.Equal(["GET /dists/stable/InRelease"], newRequests);
        Assert.Equal(4, again.Packages.Count);

        // A cache entry changed on disk is detected on read and fetched again.
        var cached = Path.Combine(_cacheDir.Path, "apt-indices", "sha256", again.Indices[0].Sha256);
        repo.TamperByte(cached);
        before = repo.Server.Requests.Count;
        await Client().FetchAsync(repo.Source());
        Assert.Contains("GET /dists/stable/main/binary-amd64/Packages.xz", repo.Server.Requests.Skip(before));
        Assert.Equal(again.Indices[0].Sha256, Sha256Hex.OfFile(cached));
    }

    [Fact]
    public async Task Fetch_RepublishedRepository_SeesNewPackages()
    {
        using var repo = SmallRepo().Publish();
        var first = await Client().FetchAsync(repo.Source());
        repo.Add(new FakePackage("newcomer", "0.1-1")).Publish();
        var second = await Client().FetchAsync(repo.Source());
        Assert.DoesNotContain(first.Packages, p => p.Name == "newcomer");
        Assert.Contains(second.Packages, p => p.Name == "newcomer");
        Assert.NotEqual(first.InReleaseSha256, second.InReleaseSha256);
    }

    [Fact]
    public async Task Fetch_FlatRepository_LikeNvidiaCuda()
    {
        using var repo = new AptRepositoryFixture("./", architectures: ["amd64"]).Add(
            new FakePackage("cuda-toolkit-12-8", "12.8.1-1").WithDepends("cuda-nvcc-12-8"),
            new FakePackage("cuda-nvcc-12-8", "12.8.93-1"),
            new FakePackage("cuda-arm-only", "1.0-1", "arm64")).Publish();
        var index = await Client().FetchAsync(repo.Source("cuda"));
        Assert.Equal(["cuda-nvcc-12-8", "cuda-toolkit-12-8"], index.Packages.Select(p => p.Name).Order());
        Assert.EndsWith("/Packages.xz", Assert.Single(index.Indices).Url);
        var pkg = index.Packages[0];
        Assert.Equal(pkg.Sha256, Sha256Hex.Of(await _http.GetByteArrayAsync(pkg.BaseUrl + "/" + pkg.Filename)));
    }

    [Fact]
    public async Task Fetch_UbuntuStyleSuite_LikeNeuron()
    {
        using var repo = new AptRepositoryFixture("jammy").Add(new FakePackage("aws-neuronx-runtime-lib", "2.24.5-1")).Publish();
        var index = await Client().FetchAsync(repo.Source("neuron") with { Suite = "jammy" });
        Assert.Equal("aws-neuronx-runtime-lib", Assert.Single(index.Packages).Name);
    }

    [Fact]
    public async Task Fetch_RejectsReleaseOfAnotherSuite_Downgrade()
    {
        using var repo = SmallRepo("stable").Publish();
        // Serve stable's signed InRelease under the name 'testing' (a mirror swapping releases).
        Directory.CreateDirectory(Path.Combine(repo.RootDirectory, "dists", "testing"));
        File.Copy(repo.InReleasePath, Path.Combine(repo.RootDirectory, "dists", "testing", "InRelease"));
        var e = await Assert.ThrowsAsync<HardenException>(() => Client().FetchAsync(repo.Source() with { Suite = "testing" }));
        Assert.Contains("not 'testing'", e.Message);
    }

    [Fact]
    public async Task Fetch_UnknownArchitecture_SaysWhatTheRepositoryOffers()
    {
        using var repo = SmallRepo().Publish();
        var e = await Assert.ThrowsAsync<HardenException>(() => Client().FetchAsync(repo.Source() with { Architectures = ["riscv64"] }));
        Assert.Contains("binary-riscv64", e.Message);
        Assert.Contains("amd64 arm64", e.Message);
    }

    public void Dispose()
    {
        _http.Dispose();
        _cacheDir.Dispose();
    }
}
