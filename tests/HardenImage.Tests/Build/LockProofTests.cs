using System.Security.Cryptography;
using System.Text;
using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Tests.Fixtures;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>
/// A lock arrives through pull requests: it is input, not proof (issue 10 §1, §3 for indices, §4; issue 17 §4).
/// Every attack is built for real against the signed loopback repository: a hand-edited entry pointing at another
/// server's .deb, a kept entry with a wrong SHA-256, an emptied package list, a replayed older InRelease, a forged
/// parsed-index cache entry. Each asserts the specific reason of refusal and that the lock and artifacts stay as they were.
/// </summary>
[Trait("Category", "Integration")]
public sealed class LockProofTests
{
    private static readonly CacheAuthenticationKey Key = new(Encoding.UTF8.GetBytes("lock-proof-tests-key-0123456789ab"));

    /// <summary>A fresh hermetic image set whose repository serves by-hash indices like the Debian archive.</summary>
    private static ImageSetWorkspace NewWorkspace()
    {
        var w = new ImageSetWorkspace();
        w.Repo.AcquireByHash = true;
        w.Repo.Publish();
        return w;
    }

    private static AptSuiteIndexReader Reader(ImageSetWorkspace w, string cache, HttpClient http, CacheAuthenticationKey? key = null)
    {
        var indices = new AptIndexCache(Path.Combine(cache, "indices"));
        var client = new AptRepositoryClient(http, indices, proofs: new IndexProofCache(indices.RootDirectory, key ?? Key));
        return new AptSuiteIndexReader(client, w.ImagesDir);
    }

    private static async Task<LockProof> ProveAsync(ImageSetWorkspace w, string? cache = null, LockProofOptions? options = null, CacheAuthenticationKey? key = null)
    {
        using var http = AptRepositoryClient.CreateHttpClient();
        return await new LockProver(Reader(w, cache ?? w.Cache, http, key)).ProveAsync(ImageSet.Load(w.ImagesDir), LockFile.Load(w.LockPath), null, options);
    }

    private static async Task<LockOutcome> LockAsync(ImageSetWorkspace w, bool update = false, bool allowRollback = false, string? cache = null)
    {
        using var http = AptRepositoryClient.CreateHttpClient();
        var existing = File.Exists(w.LockPath) ? LockFile.Load(w.LockPath) : null;
        var outcome = await new ImageLocker(Reader(w, cache ?? w.Cache, http))
            .LockAsync(ImageSet.Load(w.ImagesDir), existing, new LockOptions { Update = update, AllowRollback = allowRollback });
        outcome.Lock.Save(w.LockPath);
        return outcome;
    }

    private static void EditEntry(ImageSetWorkspace w, string image, string arch, string name, Func<LockedPackage, LockedPackage> edit)
    {
        var lockFile = LockFile.Load(w.LockPath);
        var packages = lockFile.Image(image)!.Architectures.Single(a => a.Architecture == arch).Packages;
        var i = packages.FindIndex(p => p.Name == name);
        packages[i] = edit(packages[i]);
        lockFile.Save(w.LockPath);
    }

    private static LockedPackage Entry(ImageSetWorkspace w, string image, string arch, string name) =>
        LockFile.Load(w.LockPath).Image(image)!.Architectures.Single(a => a.Architecture == arch).Packages.Single(p => p.Name == name);

    /// <summary>SHA-256 over every file's path and bytes under <paramref name="dir"/>: "the artifacts are intact".</summary>
    private static string TreeDigest(string dir)
    {
        var sb = new StringBuilder();
        foreach (var f in Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            sb.Append(Path.GetRelativePath(dir, f)).Append(' ').Append(Sha256Hex.OfFile(f)).Append('\n');
        return Sha256Hex.Of(Encoding.UTF8.GetBytes(sb.ToString()));
    }

    private static (int Code, string Out) Harden(params string[] args)
    {
        var (code, stdout, stderr) = HardenImage.Tests.Cli.HelpTests.Harden(args);
        return (code, stdout + stderr);
    }

    [Fact]
    public async Task HandEditedLockEntry_PointingAtAnotherServersDeb_IsRefusedAtLockCheckFetchAndBuild_ArtifactsIntact()
    {
        using var w = NewWorkspace();
        await w.LockAsync();
        await w.BuildAsync();
        // The attacker's server: validly built .deb of the same name and version, different bytes, its own key.
        using var evil = new AptRepositoryFixture();
        evil.Add(new FakePackage("fake-su", "1.0-1").WithFile("/usr/bin/su", "attacker's binary", (UnixFileMode)Convert.ToInt32("4755", 8))).Publish();
        var evilDeb = File.ReadAllBytes(evil.DebPath("fake-su"));
        var evilUrl = $"{evil.BaseUrl}/{evil.RelativeUrlPath(evil.DebPath("fake-su"))}";
        EditEntry(w, "base", "amd64", "fake-su", p => p with { Url = evilUrl, Sha256 = Sha256Hex.Of(evilDeb), Size = evilDeb.Length });
        var editedLock = File.ReadAllText(w.LockPath);
        var artifacts = TreeDigest(w.Artifacts);

        // Library: the proof and a plain 'lock' (the image definition is unchanged, so the entry would be kept).
        var e = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w));
        Assert.Contains("lock entry base (amd64) fake-su 1.0-1 has SHA-256 " + Sha256Hex.Of(evilDeb), e.Message);
        Assert.Contains("but the signed index of fixture/stable says", e.Message);
        Assert.Contains("harden lock --update --image base --image tool", e.Message);
        Assert.Equal(1, e.ExitCode);
        await Assert.ThrowsAsync<HardenException>(() => LockAsync(w));
        Assert.Equal(editedLock, File.ReadAllText(w.LockPath));

        // CLI: lock --check, fetch and build all refuse before any byte comes from the attacker's server.
        var common = new[] { "--images", w.ImagesDir, "--cache", w.Cache };
        var check = Harden(["lock", "--check", .. common]);
        Assert.Equal(1, check.Code);
        Assert.Contains("fake-su 1.0-1 has SHA-256", check.Out);
        var fetch = Harden(["fetch", .. common]);
        Assert.Equal(1, fetch.Code);
        Assert.Contains("not proven by the signed indices", fetch.Out);
        var build = Harden(["build", "--force", "--out", w.Artifacts, .. common]);
        Assert.Equal(1, build.Code);
        Assert.Contains("fake-su 1.0-1 has SHA-256", build.Out);
        Assert.DoesNotContain(evil.Server.Requests, r => r.EndsWith(".deb", StringComparison.Ordinal));
        Assert.Equal(artifacts, TreeDigest(w.Artifacts));
        Assert.Equal(editedLock, File.ReadAllText(w.LockPath));
    }

    [Fact]
    public async Task LockEntryUrl_ToAnotherHost_IsRefused_EvenWithTheRightHash()
    {
        using var w = NewWorkspace();
        await w.LockAsync();
        // Same SHA-256 and size: the bytes would verify, but the lock must not choose where we connect to.
        EditEntry(w, "base", "arm64", "libfake1", p => p with { Url = "http://127.0.0.2:9/pool/main/l/libfake1_1.0-1_arm64.deb" });
        var edited = File.ReadAllText(w.LockPath);
        var e = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w));
        Assert.Contains("lock entry base (arm64) libfake1 1.0-1: url http://127.0.0.2:9/pool/main/l/libfake1_1.0-1_arm64.deb is not where the signed index puts it", e.Message);
        Assert.Contains(w.Repo.BaseUrl + "/pool/main/libfake1_1.0-1_arm64.deb", e.Message);
        await Assert.ThrowsAsync<HardenException>(() => LockAsync(w));
        Assert.Equal(edited, File.ReadAllText(w.LockPath));
    }

    [Fact]
    public async Task Lock_RefusesAKeptEntry_WithAWrongSha256_AndLeavesTheLockAsItWas()
    {
        using var w = NewWorkspace();
        await w.LockAsync();
        var wrong = new string('a', 64);
        var honest = Entry(w, "tool", "amd64", "fake-tool").Sha256;
        EditEntry(w, "tool", "amd64", "fake-tool", p => p with { Sha256 = wrong });
        var edited = File.ReadAllText(w.LockPath);
        // Nothing about the image changed, so 'lock' keeps the entry — and must still prove it.
        var e = await Assert.ThrowsAsync<HardenException>(() => LockAsync(w));
        Assert.Contains($"lock entry tool (amd64) fake-tool 2.0-1 has SHA-256 {wrong}, but the signed index of fixture/stable says {honest}", e.Message);
        Assert.Equal(edited, File.ReadAllText(w.LockPath));
        // A changed source version (it decides which advisories match in the scan) is refused too.
        EditEntry(w, "tool", "amd64", "fake-tool", p => p with { Sha256 = honest, SourceVersion = "99.0-1" });
        var v = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w));
        Assert.Contains("lock entry tool (amd64) fake-tool 2.0-1: source fake-tool 99.0-1 is not what the signed index says (fake-tool 2.0-1)", v.Message);
        // A changed size with the right hash is refused too.
        EditEntry(w, "tool", "amd64", "fake-tool", p => p with { SourceVersion = "2.0-1", Size = p.Size + 1 });
        var s = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w));
        Assert.Contains("lock entry tool (amd64) fake-tool 2.0-1 has size", s.Message);
    }

    [Fact]
    public async Task EmptyCache_ProvesTheLockedEntries_ThroughByHash_WhenThePlainIndexPathsAreGone()
    {
        using var w = NewWorkspace();
        await w.LockAsync();
        // A mirror mid-update (or a CI machine long after): the plain Packages paths no longer answer.
        foreach (var arch in new[] { "amd64", "arm64" })
            foreach (var ext in new[] { "", ".gz", ".xz" })
                w.Repo.Server.SetFault(w.Repo.RelativeUrlPath(w.Repo.PackagesPath(arch, ext)), new HttpFault.Status(404));
        using var empty = new TempDir("hi-emptycache");
        var proof = await ProveAsync(w, empty.Path);
        Assert.All(proof.Suites, s => Assert.True(s.Pinned));
        Assert.Contains(w.Repo.Server.Requests, r => r.Contains("/main/binary-amd64/by-hash/SHA256/", StringComparison.Ordinal));
        Assert.Equal(LockFile.Load(w.LockPath).Images.SelectMany(i => i.Architectures).Sum(a => a.Packages.Count), proof.Debs.Count);
    }

    [Fact]
    public async Task OldLock_StaysProvable_FromTheKeptInRelease_AndByHash_AfterTheMirrorMovedOn()
    {
        using var w = NewWorkspace();
        await w.LockAsync();
        var locked = LockFile.Load(w.LockPath).Sources.Single();
        // CI keeps only the small InRelease files of its cache; the mirror publishes a new release that drops fake-su 1.0-1.
        foreach (var f in Directory.GetFiles(Path.Combine(w.Cache, "indices", "apt-indices", "sha256")))
            if (Sha256Hex.OfFile(f) != locked.InReleaseSha256) File.Delete(f);
        if (Directory.Exists(Path.Combine(w.Cache, "indices", "apt-proofs"))) Directory.Delete(Path.Combine(w.Cache, "indices", "apt-proofs"), recursive: true);
        File.Delete(w.Repo.DebPath("fake-su"));
        File.Delete(Path.Combine(Path.GetDirectoryName(w.Repo.DebPath("fake-su"))!, "fake-su_1.0-1_arm64.deb"));
        w.Repo.ReleaseDate = w.Repo.ReleaseDate!.Value.AddDays(1);
        w.Repo.Publish();

        var proof = await ProveAsync(w);
        var suite = Assert.Single(proof.Suites);
        Assert.True(suite.Pinned);
        Assert.Equal(locked.InReleaseSha256, suite.InReleaseSha256);
        Assert.Contains(proof.Debs, d => d.Entry.Name == "fake-su");
        Assert.Contains(w.Repo.Server.Requests, r => r.Contains("/by-hash/SHA256/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task UnprovableEntry_NamesTheEntry_AndTheCommandThatReLocks()
    {
        using var w = NewWorkspace();
        await w.LockAsync();
        // The mirror moved on and dropped fake-su 1.0-1; a fresh machine has nothing of the old release.
        File.Delete(w.Repo.DebPath("fake-su"));
        File.Delete(Path.Combine(Path.GetDirectoryName(w.Repo.DebPath("fake-su"))!, "fake-su_1.0-1_arm64.deb"));
        w.Repo.ReleaseDate = w.Repo.ReleaseDate!.Value.AddDays(1);
        w.Repo.Publish();
        using var empty = new TempDir("hi-emptycache");
        var e = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w, empty.Path));
        Assert.Contains("lock entry base (amd64) fake-su 1.0-1 is not listed in the signed index of fixture/stable by the mirror's current InRelease", e.Message);
        Assert.Contains("is neither in the cache nor served any more", e.Message);
        Assert.Contains("'harden lock --update --image base --image tool'", e.Message);
        Assert.DoesNotContain("tool (amd64)", e.Message);
    }

    [Fact]
    public async Task ReplayedOlderInRelease_IsRefused_AndTheLockIsUnchanged()
    {
        using var w = NewWorkspace();
        await w.LockAsync();
        var before = File.ReadAllText(w.LockPath);
        // A mirror replays an older, validly signed release (no Valid-Until, like Debian's main suites).
        w.Repo.ReleaseDate = w.Repo.ReleaseDate!.Value.AddDays(-10);
        w.Repo.Publish();

        var e = await Assert.ThrowsAsync<HardenException>(() => LockAsync(w, update: true));
        Assert.Contains("fixture/stable: the mirror", e.Message);
        Assert.Contains("older than the 2025-05-17 00:00:00Z the lock records", e.Message);
        Assert.Contains("--allow-rollback", e.Message);
        Assert.Equal(before, File.ReadAllText(w.LockPath));
        // A fresh machine cannot prove the lock against the replayed release either.
        using var empty = new TempDir("hi-emptycache");
        var p = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w, empty.Path));
        Assert.Contains("older than the 2025-05-17 00:00:00Z the lock records (a replayed or stale mirror); refusing it", p.Message);
    }

    [Fact]
    public async Task AllowRollback_GoesBack_OnlyLoudly_AndReportsEveryDowngrade()
    {
        using var w = NewWorkspace();
        await w.LockAsync();
        File.Delete(w.Repo.DebPath("fake-su"));
        File.Delete(Path.Combine(Path.GetDirectoryName(w.Repo.DebPath("fake-su"))!, "fake-su_1.0-1_arm64.deb"));
        w.Repo.Add(new FakePackage("fake-su", "0.9-1", "amd64").WithFile("/usr/bin/su", "old su"),
                   new FakePackage("fake-su", "0.9-1", "arm64").WithFile("/usr/bin/su", "old su"));
        w.Repo.ReleaseDate = w.Repo.ReleaseDate!.Value.AddDays(-1);
        w.Repo.Publish();

        await Assert.ThrowsAsync<HardenException>(() => LockAsync(w, update: true));
        var outcome = await LockAsync(w, update: true, allowRollback: true);
        Assert.Equal(["base (amd64): fake-su 1.0-1 → 0.9-1", "base (arm64): fake-su 1.0-1 → 0.9-1"], outcome.Downgrades.Order(StringComparer.Ordinal));
        Assert.Contains(outcome.Warnings, x => x.StartsWith("ROLLBACK ALLOWED (--allow-rollback): fixture/stable", StringComparison.Ordinal));
        Assert.Equal("0.9-1", Entry(w, "base", "amd64", "fake-su").Version);
    }

    [Fact]
    public async Task EmptiedOrTrimmedPackages_AreRefused_ByLockCheckAndBuild()
    {
        using var w = NewWorkspace();
        await w.LockAsync();
        await w.BuildAsync();
        var artifacts = TreeDigest(w.Artifacts);
        var original = File.ReadAllText(w.LockPath);

        // 1. packages emptied by hand for one architecture.
        var lockFile = LockFile.Load(w.LockPath);
        lockFile.Image("base")!.Architectures.Single(a => a.Architecture == "arm64").Packages.Clear();
        lockFile.Save(w.LockPath);
        var e = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w));
        Assert.Contains("image 'base' (arm64): requested package 'base-files' is not in the lock", e.Message);
        var common = new[] { "--images", w.ImagesDir, "--cache", w.Cache };
        var check = Harden(["lock", "--check", .. common]);
        Assert.Equal(1, check.Code);
        Assert.Contains("requested package 'fake-su' is not in the lock", check.Out);
        var build = Harden(["build", "--out", w.Artifacts, .. common]);
        Assert.Equal(1, build.Code);
        Assert.Equal(artifacts, TreeDigest(w.Artifacts));

        // 2. one dependency removed, and a forged "dropped edge" to excuse it: the satisfier is not in exclude.
        File.WriteAllText(w.LockPath, original);
        lockFile = LockFile.Load(w.LockPath);
        var amd = lockFile.Image("base")!.Architectures.Single(a => a.Architecture == "amd64");
        amd.Packages.RemoveAll(p => p.Name == "fake-common");
        amd.DroppedDependencies.Add(new DroppedDependency { Package = "libfake1", Dependency = "fake-common (>= 1.0)", Reason = "excluded: fake-common" });
        lockFile.Save(w.LockPath);
        var d = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w));
        Assert.Contains("image 'base' (amd64): libfake1 depends on 'fake-common (>= 1.0)', which nothing in the lock provides", d.Message);
        // 3. a child image whose own packages are gone.
        File.WriteAllText(w.LockPath, original);
        lockFile = LockFile.Load(w.LockPath);
        lockFile.Image("tool")!.Architectures.Single(a => a.Architecture == "amd64").Packages.Clear();
        lockFile.Save(w.LockPath);
        var t = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w));
        Assert.Contains("image 'tool' (amd64): requested package 'fake-tool' is not in the lock", t.Message);
        // 4. an architecture the image does not build, smuggled in (fetch would have downloaded it).
        File.WriteAllText(w.LockPath, original);
        lockFile = LockFile.Load(w.LockPath);
        lockFile.Image("base")!.Architectures.Add(lockFile.Image("base")!.Architectures[0] with { Architecture = "riscv64" });
        lockFile.Save(w.LockPath);
        var x = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w));
        Assert.Contains("image 'base' is locked for riscv64, which it does not build", x.Message);
        // 5. a validly signed but unrequested package added (the shell fake-shell is requested by base; tool gets mawk).
        File.WriteAllText(w.LockPath, original);
        lockFile = LockFile.Load(w.LockPath);
        var baseAmd = lockFile.Image("base")!.Architectures.Single(a => a.Architecture == "amd64");
        lockFile.Image("tool")!.Architectures.Single(a => a.Architecture == "amd64").Packages.Add(
            baseAmd.Packages.Single(p => p.Name == "fake-su") with { Name = "mawk", Version = "1.3.4-1", Source = "mawk", SourceVersion = "1.3.4-1",
                Sha256 = Sha256Hex.OfFile(Path.Combine(Path.GetDirectoryName(w.Repo.DebPath("mawk"))!, "mawk_1.3.4-1_amd64.deb")),
                Size = new FileInfo(Path.Combine(Path.GetDirectoryName(w.Repo.DebPath("mawk"))!, "mawk_1.3.4-1_amd64.deb")).Length,
                Url = w.Repo.BaseUrl + "/pool/main/mawk_1.3.4-1_amd64.deb" });
        lockFile.Save(w.LockPath);
        var extra = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w));
        Assert.Contains("image 'tool' (amd64): mawk is in the lock, but neither requested nor needed by a requested package", extra.Message);
        // The honest lock is complete (the excluded debconf edges are legitimately dropped).
        File.WriteAllText(w.LockPath, original);
        Assert.NotEmpty((await ProveAsync(w)).Debs);
        var ok = Harden(["lock", "--check", .. common]);
        Assert.True(ok.Code == 0, ok.Out);
        Assert.Contains("lock is up to date and proven", ok.Out);
        var fetched = Harden(["fetch", .. common]);
        Assert.True(fetched.Code == 0, fetched.Out);
    }

    [Fact]
    public async Task ChildLockingItsParentsPackage_AtAnotherVersion_IsRefused_BeforeItOverwritesTheParentsFiles()
    {
        using var w = NewWorkspace();
        await w.LockAsync();
        await w.BuildAsync();
        var artifacts = TreeDigest(w.Artifacts);
        // The child 'tool' also locks the parent's libfake1, at another version: its layer would replace the parent's files.
        var lockFile = LockFile.Load(w.LockPath);
        var parentEntry = lockFile.Image("base")!.Architectures.Single(a => a.Architecture == "amd64").Packages.Single(p => p.Name == "libfake1");
        lockFile.Image("tool")!.Architectures.Single(a => a.Architecture == "amd64").Packages.Add(parentEntry with { Version = "9.9-1" });
        lockFile.Save(w.LockPath);
        var locked = File.ReadAllText(w.LockPath);

        var e = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w));
        Assert.Contains($"lock entry tool (amd64) libfake1 9.9-1: package libfake1 is also locked by its parent image 'base' at {parentEntry.Version}", e.Message);
        Assert.Contains($"(child 9.9-1, parent {parentEntry.Version})", e.Message);
        Assert.Contains("harden lock --update", e.Message);
        var common = new[] { "--images", w.ImagesDir, "--cache", w.Cache };
        var build = Harden(["build", "--out", w.Artifacts, .. common]);
        Assert.Equal(1, build.Code);
        Assert.Contains("is also locked by its parent image 'base'", build.Out);
        Assert.Equal(artifacts, TreeDigest(w.Artifacts));
        Assert.Equal(locked, File.ReadAllText(w.LockPath));
    }

    [Fact]
    public async Task NullOrMalformedLockFields_AreOneClearLine_NamingTheJsonPath()
    {
        using var w = NewWorkspace();
        await w.LockAsync();
        var json = File.ReadAllText(w.LockPath);
        var sha = Entry(w, "base", "amd64", "base-files").Sha256;
        File.WriteAllText(w.LockPath, json.Replace($"\"{sha}\"", "null"));
        var e = Assert.Throws<HardenException>(() => LockFile.Load(w.LockPath));
        // The strict reader refuses the null itself: one line, the JSON path, what it must hold, not a type name.
        Assert.Contains("the lock file is not valid: $.images[0].architectures[0].packages[0].sha256: must not be null (line ", e.Message);
        Assert.DoesNotContain("nullability annotation", e.Message);
        Assert.DoesNotContain("HardenImage.Build", e.Message);
        File.WriteAllText(w.LockPath, json.Replace("\"inReleaseSha256\": \"", "\"inReleaseSha256\": \"x"));
        var r = Assert.Throws<HardenException>(() => LockFile.Load(w.LockPath));
        Assert.Contains("$.sources[0].inReleaseSha256: must be 64 lower-case hex digits", r.Message);
    }

    [Fact]
    public async Task ForgedParsedIndexCache_IsDetected_Reported_AndRebuiltFromVerifiedBytes()
    {
        using var w = NewWorkspace();
        await w.LockAsync();
        await ProveAsync(w);
        var proofs = Directory.GetFiles(Path.Combine(w.Cache, "indices", "apt-proofs"), "*-amd64");
        var entryFile = Assert.Single(proofs);
        // The attacker controls the cache (not the key): swap fake-su's hash for the one of their .deb, and re-MAC
        // with a key of their own; and hand-edit the lock to match.
        var evilSha = Convert.ToHexStringLower(SHA256.HashData("evil"u8));
        var honestSha = Entry(w, "base", "amd64", "fake-su").Sha256;
        var text = File.ReadAllText(entryFile);
        var body = text[..text.LastIndexOf("mac ", StringComparison.Ordinal)].Replace(honestSha, evilSha);
        var attackerKey = new CacheAuthenticationKey(Encoding.UTF8.GetBytes("the attacker's own key, not ours"));
        File.WriteAllText(entryFile, body + "mac " + Convert.ToHexStringLower(attackerKey.Mac(Encoding.UTF8.GetBytes(body))) + "\n");
        EditEntry(w, "base", "amd64", "fake-su", p => p with { Sha256 = evilSha });

        var e = await Assert.ThrowsAsync<HardenException>(() => ProveAsync(w));
        Assert.Contains($"lock entry base (amd64) fake-su 1.0-1 has SHA-256 {evilSha}, but the signed index of fixture/stable says {honestSha}", e.Message);
        // Rebuilt: authentic again, with the honest hash; and the forgery was reported.
        Assert.Contains(honestSha, File.ReadAllText(entryFile));
        Assert.DoesNotContain(evilSha, File.ReadAllText(entryFile));
        EditEntry(w, "base", "amd64", "fake-su", p => p with { Sha256 = honestSha });
        File.AppendAllText(entryFile, "x");
        var proof = await ProveAsync(w);
        Assert.Contains(proof.Notices, n => n.Contains("does not authenticate", StringComparison.Ordinal) && n.Contains(Path.GetFileName(entryFile), StringComparison.Ordinal));
        // A cache written under another machine's key is never trusted, only re-derived.
        var other = await ProveAsync(w, key: new CacheAuthenticationKey(Encoding.UTF8.GetBytes("a different machine's key, 42 chars long")));
        Assert.NotEmpty(other.Notices);
    }

    // lock --update reads the compact index snapshot (the parsed-index cache) instead of decompressing and parsing
    // an index the verified Release still lists (issue 14 §4). These two tests show that it really is read, and that
    // a snapshot the cache's writer forged is not trusted.

    [Fact]
    public async Task LockUpdate_ReadsTheIndexSnapshot_WhenTheSignedReleaseStillListsItsIndex()
    {
        using var w = NewWorkspace();
        await LockAsync(w);
        var before = File.ReadAllText(w.LockPath);
        // Neither the mirror nor the index cache has the Packages indices any more: only the snapshot can answer.
        foreach (var f in Directory.GetFiles(Path.Combine(w.Repo.DistDirectory, "main"), "Packages*", SearchOption.AllDirectories)
                     .Concat(Directory.GetFiles(Path.Combine(w.Cache, "indices", "apt-indices", "sha256"))))
            File.Delete(f);
        foreach (var d in Directory.GetDirectories(Path.Combine(w.Repo.DistDirectory, "main"), "by-hash", SearchOption.AllDirectories))
            Directory.Delete(d, recursive: true);

        var outcome = await LockAsync(w, update: true);

        Assert.Empty(outcome.Warnings);
        Assert.Equal(before, File.ReadAllText(w.LockPath));
    }

    [Fact]
    public async Task LockUpdate_TamperedIndexSnapshot_IsNotTrusted_TheLockComesFromTheVerifiedIndex()
    {
        using var w = NewWorkspace();
        await LockAsync(w);
        var honestSha = Entry(w, "base", "amd64", "fake-su").Sha256;
        var entryFile = Assert.Single(Directory.GetFiles(Path.Combine(w.Cache, "indices", "apt-proofs"), "*-amd64"));
        // The attacker writes the cache but does not hold its key: fake-su now names their .deb, MAC'd with their own key.
        var evilSha = Convert.ToHexStringLower(SHA256.HashData("evil"u8));
        var text = File.ReadAllText(entryFile);
        var body = text[..text.LastIndexOf("mac ", StringComparison.Ordinal)].Replace(honestSha, evilSha);
        Assert.Contains(evilSha, body);
        var attackerKey = new CacheAuthenticationKey(Encoding.UTF8.GetBytes("the attacker's own key, not ours"));
        File.WriteAllText(entryFile, body + "mac " + Convert.ToHexStringLower(attackerKey.Mac(Encoding.UTF8.GetBytes(body))) + "\n");

        var outcome = await LockAsync(w, update: true);

        Assert.Equal(honestSha, Entry(w, "base", "amd64", "fake-su").Sha256);
        Assert.Contains(outcome.Warnings, n => n.Contains("does not authenticate", StringComparison.Ordinal) && n.Contains(Path.GetFileName(entryFile), StringComparison.Ordinal));
        // Re-derived from the verified index: authentic again, with the honest hash.
        Assert.Contains(honestSha, File.ReadAllText(entryFile));
        Assert.DoesNotContain(evilSha, File.ReadAllText(entryFile));

        // An authentic snapshot of another index, renamed to this index's digest, is not taken for it either.
        var otherFile = Assert.Single(Directory.GetFiles(Path.Combine(w.Cache, "indices", "apt-proofs"), "*-arm64"));
        File.Copy(otherFile, entryFile, overwrite: true);
        await LockAsync(w, update: true);
        Assert.Equal(honestSha, Entry(w, "base", "amd64", "fake-su").Sha256);
        Assert.StartsWith("hardenimage-index-proof v3 " + Path.GetFileName(entryFile).Replace("-amd64", " amd64"), File.ReadAllText(entryFile));
    }
}

/// <summary>The key that authenticates derived cache entries must never be readable by whoever writes the cache.</summary>
public sealed class CacheAuthenticationKeyTests
{
    [Fact]
    public void CacheKey_InsideTheCache_IsRefused()
    {
        using var dir = new TempDir("hi-cachekey");
        var cache = dir.Combine("cache");
        var e = Assert.Throws<HardenException>(() => CacheAuthenticationKey.Load(cache, Path.Combine(cache, "config", "cache.key"), null));
        Assert.Contains("lies inside the cache", e.Message);
        Assert.Contains(CacheAuthenticationKey.EnvironmentVariable, e.Message);
        Assert.False(File.Exists(Path.Combine(cache, "config", "cache.key")));
    }

    [Fact]
    public void CacheKey_IsCreatedOnce_OwnerOnly_OutsideTheCache_AndTheEnvironmentWins()
    {
        using var dir = new TempDir("hi-cachekey");
        var cache = dir.Combine("cache");
        var keyFile = dir.Combine("config", "hardenimage", "cache.key");
        var first = CacheAuthenticationKey.Load(cache, keyFile, null);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
        var again = CacheAuthenticationKey.Load(cache, keyFile, null);
        Assert.Equal(first.Mac("x"u8), again.Mac("x"u8));
        var fromEnv = CacheAuthenticationKey.Load(cache, keyFile, "a CI secret of enough length, 32+");
        Assert.NotEqual(first.Mac("x"u8), fromEnv.Mac("x"u8));
        Assert.Throws<HardenException>(() => CacheAuthenticationKey.Load(cache, keyFile, "short"));
    }

    /// <summary>A 16–31 character key used to pass 'lock' (16 bytes) and fail 'build' (32 characters): one rule now.</summary>
    [Theory]
    [InlineData("0123456789abcdef")]                       // 16: the old lock/scan minimum
    [InlineData("0123456789abcdef0123456789abcde")]        // 31
    [InlineData("   0123456789abcdef0123456789abcde  \n")] // 31 once trimmed: white space is no key material
    public void ShortCacheKey_IsRefusedTheSame_ByLockAndBuild_NamingTheVariable(string secret)
    {
        using var dir = new TempDir("hi-cachekey");
        var cache = dir.Combine("cache");
        var keyFile = dir.Combine("config", "cache.key");
        var forLock = Assert.Throws<HardenException>(() => CacheAuthenticationKey.Load(cache, keyFile, secret));
        var forBuild = Assert.Throws<HardenException>(() => CacheKey.Load(cache, keyFile, secret));
        Assert.Equal(forLock.Message, forBuild.Message);
        Assert.StartsWith("HARDEN_CACHE_KEY: not a usable cache key (it must be text of at least 32 characters)", forLock.Message);
        Assert.DoesNotContain(secret.Trim(), forLock.Message);
        // The same length rule for a key file.
        Directory.CreateDirectory(Path.GetDirectoryName(keyFile)!);
        File.WriteAllText(keyFile, secret);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var fileLock = Assert.Throws<HardenException>(() => CacheAuthenticationKey.Load(cache, keyFile, null));
        Assert.Equal(fileLock.Message, Assert.Throws<HardenException>(() => CacheKey.Load(cache, keyFile, null)).Message);
        Assert.Contains(keyFile, fileLock.Message);
        // 32 characters pass both.
        var ok = new string('k', 32);
        Assert.NotNull(CacheAuthenticationKey.Load(cache, keyFile, ok));
        Assert.NotNull(CacheKey.Load(cache, keyFile, ok));
    }
}
