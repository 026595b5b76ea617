using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Tests.Fixtures;

namespace HardenImage.Tests.Build;

/// <summary>
/// Issue 11 §4: an image's timestamp comes from its own inputs, so adding an unrelated image — here one from a
/// second, newer suite — leaves every other image's digests bit for bit (no re-push, re-sign, re-deploy).
/// </summary>
public sealed class PerImageEpochTests
{
    private static readonly DateTimeOffset NewerSuiteDate = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    [Trait("Category", "Integration")]
    [Fact]
    public async Task AddingAnImageFromANewerSuite_KeepsEveryOtherDigestBitForBit()
    {
        using var ws = new ImageSetWorkspace();
        await ws.LockAsync();
        var before = (await ws.BuildAsync()).Manifest;
        Assert.Equal(ws.Repo.ReleaseDate!.Value.ToUnixTimeSeconds(), before.Image("base")!.Epoch);

        using var newer = new AptRepositoryFixture(architectures: ["amd64", "arm64"]);
        foreach (var arch in new[] { "amd64", "arm64" })
            newer.Add(new FakePackage("extra-tool", "1.0-1", arch).WithFile("/usr/bin/extra-tool", "extra " + arch, (UnixFileMode)Convert.ToInt32("755", 8)));
        newer.ReleaseDate = NewerSuiteDate;
        newer.Publish();
        File.Copy(newer.KeyringPath, Path.Combine(ws.ImagesDir, "keys", "newer.gpg"));
        File.AppendAllText(Path.Combine(ws.ImagesDir, "sources.yaml"), $"""

              newer:
                url: {newer.BaseUrl}
                suites: [stable]
                components: [main]
                architectures: [amd64, arm64]
                keyring: keys/newer.gpg
            """);
        ws.WriteImage("extra", """
            name: extra
            sources: [newer]
            architectures: [amd64, arm64]
            packages: [extra-tool]
            entrypoint: [/usr/bin/extra-tool]
            """);
        await ws.LockAsync();
        Assert.True(LockFile.Load(ws.LockPath).Epoch() == NewerSuiteDate, "the set's newest suite is now the new one");

        // Built from scratch into a fresh directory, so nothing is reused from the first build.
        var after = (await ws.BuildAsync(artifacts: ws.Combine("artifacts-after"), force: true)).Manifest;

        foreach (var name in new[] { "base", "tool" })
        {
            var (b, a) = (before.Image(name)!, after.Image(name)!);
            Assert.Equal(b.Index, a.Index);
            Assert.Equal(b.Architectures.Select(x => (x.Architecture, x.Manifest, x.Config)), a.Architectures.Select(x => (x.Architecture, x.Manifest, x.Config)));
            Assert.Equal(b.Epoch, a.Epoch);
        }
        Assert.Equal(NewerSuiteDate.ToUnixTimeSeconds(), after.Image("extra")!.Epoch);
    }

    [Fact]
    public void EpochFor_TakesTheNewestSuiteOfTheImageAndItsParents_Only()
    {
        LockedPackage P(string origin) => new()
        {
            Name = "p-" + origin.Replace('/', '-'), Version = "1", Architecture = "amd64", Source = "p", SourceVersion = "1",
            Url = "http://x/p.deb", Sha256 = new string('a', 64), Size = 1, Origin = origin,
        };
        LockedImage I(string name, string? from, params string[] origins) => new()
        {
            Name = name, From = from, InputsSha256 = "x",
            Architectures = [new LockedArchitecture { Architecture = "amd64", Packages = origins.Select(P).ToList() }],
        };
        LockedSource S(string name, int day) => new()
        {
            Name = name, Url = "http://x", Suite = "s", InReleaseSha256 = "x", Date = new DateTimeOffset(2025, 1, day, 0, 0, 0, TimeSpan.Zero),
        };
        var lockFile = new LockFile
        {
            Sources = [S("debian/trixie", 10), S("debian-security/trixie-security", 20), S("vendor/stable", 30)],
            Images = [I("base", null, "debian/trixie"), I("child", "base", "debian-security/trixie-security"), I("other", null, "vendor/stable"), I("empty", null)],
        };
        Assert.Equal(10, lockFile.EpochFor("base").Day);
        Assert.Equal(20, lockFile.EpochFor("child").Day);
        Assert.Equal(30, lockFile.EpochFor("other").Day);
        Assert.Equal(DateTimeOffset.UnixEpoch, lockFile.EpochFor("empty"));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("1e9")]
    [InlineData(" 5")]
    [InlineData("99999999999999999999")]
    public void SourceDateEpoch_InvalidEnvironmentValue_IsAnError(string value)
    {
        var e = Assert.Throws<HardenImage.Common.HardenException>(() => SourceDateEpoch.Parse(value));
        Assert.Contains("SOURCE_DATE_EPOCH=", e.Message);
        Assert.Equal(2, e.ExitCode);
    }

    [Fact]
    public void SourceDateEpoch_UnsetOrEmpty_MeansPerImageDefault()
    {
        Assert.Null(SourceDateEpoch.Parse(null));
        Assert.Null(SourceDateEpoch.Parse(""));
        Assert.Equal(1700000000, SourceDateEpoch.Parse("1700000000"));
    }
}
