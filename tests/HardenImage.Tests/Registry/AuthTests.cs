using System.Text;
using HardenImage.Registry;
using HardenImage.Tests.Infrastructure;
using Org.BouncyCastle.Crypto.Generators;

namespace HardenImage.Tests.Registry;

/// <summary>Basic auth against a real htpasswd registry, docker config credentials, and a Bearer token flow.</summary>
public sealed class AuthTests
{
    private static string Htpasswd(TempDir dir, string user, string password)
    {
        // htpasswd -B is in apache2-utils, absent here: the same bcrypt entry from BouncyCastle.
        var salt = new byte[16];
        Random.Shared.NextBytes(salt);
        var hash = OpenBsdBCrypt.Generate("2y", password.ToCharArray(), salt, 5);
        var path = dir.Combine("htpasswd");
        File.WriteAllText(path, $"{user}:{hash}\n");
        return path;
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task BasicAuth_PushesWithCredentials_AndFailsClearlyWithoutOrWithWrongOnes()
    {
        using var dir = new TempDir();
        using var server = RegistryFixture.Start(Htpasswd(dir, "ci", "s3cret-pass"));
        var (layout, baseIndex, _) = RegistryTestKit.TwoImages(dir);
        var images = ImagePusher.ImagesInLayout(layout, only: "base");

        var anonymous = await Assert.ThrowsAsync<RegistryAuthenticationException>(() =>
            new ImagePusher(layout, RegistryTestKit.Client(server.Host)).PushAsync(images));
        Assert.Contains("docker login", anonymous.Message);

        var wrong = await Assert.ThrowsAsync<RegistryAuthenticationException>(() =>
            new ImagePusher(layout, RegistryTestKit.Client(server.Host, new ExplicitCredentialProvider(server.Host, "ci", "nope"))).PushAsync(images));
        Assert.DoesNotContain("nope", wrong.Message);

        var registry = RegistryTestKit.Client(server.Host, new ExplicitCredentialProvider(server.Host, "ci", "s3cret-pass"));
        var result = await new ImagePusher(layout, registry).PushAsync(images);
        Assert.Equal(baseIndex.Digest, result[0].IndexDigest);
        await RegistryTestKit.AssertAllBlobsVerify(registry, "base", layout, baseIndex);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task BasicAuth_CredentialsFromDockerConfigJson()
    {
        using var dir = new TempDir();
        using var server = RegistryFixture.Start(Htpasswd(dir, "ci", "from-config"));
        var (layout, baseIndex, _) = RegistryTestKit.TwoImages(dir);
        var config = dir.Combine("docker", "config.json");
        Directory.CreateDirectory(Path.GetDirectoryName(config)!);
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("ci:from-config"));
        File.WriteAllText(config, $"{{\"auths\":{{\"http://{server.Host}\":{{\"auth\":\"{auth}\"}},\"other.example\":{{\"auth\":\"eDp5\"}}}}}}");

        var registry = RegistryTestKit.Client(server.Host, new DockerConfigCredentialProvider(config));
        await new ImagePusher(layout, registry).PushAsync(ImagePusher.ImagesInLayout(layout, only: "base"));

        Assert.NotNull(await registry.ResolveManifestAsync("base", "latest"));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task DockerConfig_CredHelperIsRunWithTheHostOnStdin()
    {
        using var dir = new TempDir();
        var script = dir.Combine("docker-credential-fake");
        File.WriteAllText(script, "#!/bin/sh\nread host\nif [ \"$host\" = \"reg.example:5000\" ]; then echo '{\"ServerURL\":\"reg.example:5000\",\"Username\":\"u\",\"Secret\":\"p\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n");
        var config = dir.Combine("config.json");
        File.WriteAllText(config, "{\"credHelpers\":{\"reg.example:5000\":\"fake\"},\"credsStore\":\"fake\"}");
        var programs = new List<string>();
        // The helper gets the host on stdin, as docker runs it.
        var real = new DockerConfigCredentialProvider(config, (program, stdin, ct) =>
        {
            programs.Add(program);
            return Task.FromResult(RequiredService.Run("/bin/sh", ["-c", $"printf '%s\\n' \"$0\" | sh {dir.Combine(program)} get", stdin]).StdOut);
        });

        Assert.Equal(("u", "p"), await real.GetAsync("reg.example:5000", default));
        // Not in credHelpers: credsStore is asked, and "not found" means no credentials rather than an error.
        Assert.Null(await real.GetAsync("unknown.example", default));
        Assert.Equal(["docker-credential-fake", "docker-credential-fake"], programs);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Bearer_TokenIsFetchedWithBasicCredentials_CachedPerScope_AndRequestRetried()
    {
        using var dir = new TempDir();
        using var fake = new FakeRegistry(new FakeRegistryMode { Bearer = true, TokenCredentials = ("robot", "t0ken-pass") });
        var (layout, baseIndex, _) = RegistryTestKit.TwoImages(dir);
        var registry = RegistryTestKit.Client(fake.Authority, new ExplicitCredentialProvider(fake.Authority, "robot", "t0ken-pass"));

        var results = await new ImagePusher(layout, registry, parallelism: 4).PushAsync(ImagePusher.ImagesInLayout(layout));

        Assert.Equal(2, results.Count);
        Assert.True(fake.HasBlob("app", TestImages.BlobsOf(layout, baseIndex)[0].Digest) || fake.HasBlob("base", TestImages.BlobsOf(layout, baseIndex)[0].Digest));
        // Two repositories × (pull, pull+push, mount) scopes at most — not one token per request.
        Assert.InRange(fake.TokenRequests, 2, 6);
        var requests = fake.Requests.Count;
        Assert.True(requests > 20, $"only {requests} requests");

        var denied = RegistryTestKit.Client(fake.Authority, new ExplicitCredentialProvider(fake.Authority, "robot", "wrong"));
        var e = await Assert.ThrowsAsync<RegistryAuthenticationException>(() => denied.BlobExistsAsync("base", baseIndex.Digest));
        Assert.Contains("token request", e.Message);
        Assert.DoesNotContain("wrong", e.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Bearer_TokenIsReusedUntilItExpires_ThenFetchedAgain()
    {
        // Time is the fake clock's, shared by registry and client: a slow machine cannot expire the token early.
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 11, 26, 0, 0, 0, TimeSpan.Zero));
        using var fake = new FakeRegistry(new FakeRegistryMode { Bearer = true, TokenLifetimeSeconds = 2, Clock = clock });
        var registry = RegistryTestKit.Client(fake.Authority, clock: clock);
        var digest = HardenImage.Oci.Digest.Of([1, 2, 3]).ToString();

        Assert.False(await registry.BlobExistsAsync("repo", digest));
        Assert.False(await registry.BlobExistsAsync("repo", digest));
        Assert.Equal(1, fake.TokenRequests);
        // Renewed a quarter of its lifetime early (2 s - 0.5 s): still good at +1.4 s, renewed at +1.5 s.
        clock.Advance(TimeSpan.FromSeconds(1.4));
        Assert.False(await registry.BlobExistsAsync("repo", digest));
        Assert.Equal(1, fake.TokenRequests);
        clock.Advance(TimeSpan.FromSeconds(0.1));
        Assert.False(await registry.BlobExistsAsync("repo", digest));
        Assert.Equal(2, fake.TokenRequests);
        Assert.False(await registry.BlobExistsAsync("repo", digest));
        Assert.Equal(2, fake.TokenRequests);
    }

    [Fact]
    public void AuthChallenge_ParsesQuotedParametersWithCommas()
    {
        var c = AuthChallenge.Parse("Bearer realm=\"https://auth.example/token\",service=\"registry.example\",scope=\"repository:a/b:pull,push\"");
        Assert.NotNull(c);
        Assert.Equal("Bearer", c!.Scheme);
        Assert.Equal("https://auth.example/token", c.Realm);
        Assert.Equal("registry.example", c.Service);
        Assert.Equal("repository:a/b:pull,push", c.Scope);
        Assert.Equal("hi", AuthChallenge.Parse("Basic realm=hi")!.Realm);
    }

    [Fact]
    public void ScopeFor_NamesTheRepositoryAndAction()
    {
        using var get = new HttpRequestMessage(HttpMethod.Head, "http://r/v2/ns/app/blobs/sha256:00");
        Assert.Equal("repository:ns/app:pull", RegistryAuthHandler.ScopeFor(get));
        using var put = new HttpRequestMessage(HttpMethod.Put, "http://r/v2/ns/app/manifests/latest");
        Assert.Equal("repository:ns/app:pull,push", RegistryAuthHandler.ScopeFor(put));
    }
}
