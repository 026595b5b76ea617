using System.Text;
using HardenImage.Common;
using HardenImage.Deploy;
using HardenImage.Registry;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Common;

/// <summary>
/// Denial of service: the last inputs read without a bound — docker's config.json (credentials) and manifests/CRD
/// bundles read back as YAML — are read like every other input now: a size bound on the bytes read (a symlink to
/// /dev/zero ends), depth and node bounds (billion laughs, [[[[…), and one line naming the file, never its contents.
/// </summary>
public sealed class UnboundedInputReadTests
{
    [Fact]
    public async Task DockerConfig_ThatIsDevZero_OrHuge_IsOneLineNamingIt_NotMemoryExhaustion()
    {
        using var dir = new TempDir("hi-dockercfg");
        var config = dir.Combine("config.json");
        File.CreateSymbolicLink(config, "/dev/zero");
        var zero = await Assert.ThrowsAsync<HardenException>(() => new DockerConfigCredentialProvider(config).GetAsync("r.example", CancellationToken.None))
            .WaitAsync(TimeSpan.FromSeconds(30));
        Assert.StartsWith($"{config}: the docker config file is larger than 1 MiB", zero.Message);
        Assert.EndsWith("Fix or remove the docker config file.", zero.Message);

        File.Delete(config);
        var secret = "c2VjcmV0LXRva2VuLXZhbHVl";
        File.WriteAllText(config, "{\"auths\":{\"r.example\":{\"auth\":\"" + secret + "\"}}, \"pad\":\"" + new string('x', 2 << 20) + "\"}");
        var huge = await Assert.ThrowsAsync<HardenException>(() => new DockerConfigCredentialProvider(config).GetAsync("r.example", CancellationToken.None));
        Assert.Contains("larger than 1 MiB", huge.Message);
        Assert.DoesNotContain(secret, huge.Message);

        File.WriteAllText(config, new string('[', 100_000));
        var deep = await Assert.ThrowsAsync<HardenException>(() => new DockerConfigCredentialProvider(config).GetAsync("r.example", CancellationToken.None));
        Assert.StartsWith($"{config}: the docker config file is not valid JSON", deep.Message);
    }

    [Fact]
    public void ManifestYaml_BillionLaughs_AndDeepNesting_AreRefusedNamingTheSource()
    {
        var laughs = new StringBuilder("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (var i = 1; i < 12; i++) laughs.Append($"{(char)('a' + i)}: &{(char)('a' + i)} [*{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}]\n");
        var e = Assert.Throws<HardenException>(() => ManifestYaml.ReadAll(laughs.ToString(), "bundle.yaml"));
        Assert.StartsWith("bundle.yaml", e.Message);
        var deep = Assert.Throws<HardenException>(() => ManifestYaml.Read(new string('[', 50_000), "deploy.yaml"));
        Assert.StartsWith("deploy.yaml", deep.Message);
        // An honest multi-document bundle still reads.
        Assert.Equal(2, ManifestYaml.ReadAll("kind: A\n---\nkind: B\n", "ok.yaml").Count);
    }
}
