using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Registry;

/// <summary>ECR's differences, against a loopback fake that behaves like ECR where it differs from the spec.</summary>
public sealed class EcrQuirksTests
{
    private const string EcrHost = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

    /// <summary>The real factory path for an ECR target, with the transport pointed at the loopback fake.</summary>
    private static IRegistry EcrClient(FakeRegistry fake, int chunkSize) =>
        RegistryFactory.Create(RegistryTarget.Parse(EcrHost + "/team"), new RegistryClientOptions
        {
            Insecure = true,
            Credentials = RegistryTestKit.NoCredentials,
            Retry = RegistryTestKit.FastRetry with { MaxRetries = 2 },
            MonolithicLimit = 1024 * 1024,
            ChunkSize = chunkSize,
            Transport = () => new RedirectToLoopback(fake.Authority) { InnerHandler = new SocketsHttpHandler() },
        });

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Ecr_ChunksAreAtLeastFiveMiB_AndPatchAnswering201IsAccepted()
    {
        using var dir = new TempDir();
        using var fake = new FakeRegistry(new FakeRegistryMode { Ecr = true });
        await fake.EnsureAsync("team/model");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var index = TestImages.WriteImage(layout, "model", ["amd64"], 12 * 1024 * 1024, seed: 5);
        // Asking for 1 MiB chunks: the ECR target raises them to ECR's 5 MiB minimum.
        var registry = EcrClient(fake, chunkSize: 1024 * 1024);

        var results = await new ImagePusher(layout, registry, "team").PushAsync(ImagePusher.ImagesInLayout(layout));

        Assert.Empty(fake.Rejections);
        var patches = fake.Requests.Count(r => r.StartsWith("PATCH "));
        Assert.Equal(3, patches); // 12 MiB + tar header = 5 + 5 + 2
        Assert.Equal(index.Digest, results[0].IndexDigest);
        foreach (var b in TestImages.BlobsOf(layout, index)) Assert.True(fake.HasBlob("team/model", b.Digest));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Ecr_InterruptedUpload_RestartsTheUpload_InsteadOfResumingFromEcrsStuckRange()
    {
        using var dir = new TempDir();
        using var fake = new FakeRegistry(new FakeRegistryMode { Ecr = true }) { DropPatchNumber = 3 };
        await fake.EnsureAsync("team/model");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var index = TestImages.WriteImage(layout, "model", ["amd64"], 17 * 1024 * 1024, seed: 7);

        var results = await new ImagePusher(layout, EcrClient(fake, chunkSize: 5 * 1024 * 1024), "team").PushAsync(ImagePusher.ImagesInLayout(layout));

        Assert.Equal(index.Digest, results[0].IndexDigest);
        foreach (var b in TestImages.BlobsOf(layout, index)) Assert.True(fake.HasBlob("team/model", b.Digest));
        Assert.Equal(0, fake.RangeRefusals); // never resumed from ECR's Range
        Assert.DoesNotContain(fake.Requests, r => r.StartsWith("GET /v2/team/model/blobs/uploads/")); // nor asked for it
        Assert.True(fake.Requests.Count(r => r.StartsWith("POST /v2/team/model/blobs/uploads/")) >= 2, "the interrupted upload was not restarted");
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Ecr_FakeReallyKeepsItsRangeStuck_SoResumingFromItLoopsOn416()
    {
        using var dir = new TempDir();
        using var fake = new FakeRegistry(new FakeRegistryMode { Ecr = true }) { DropPatchNumber = 3 };
        await fake.EnsureAsync("model");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        TestImages.WriteImage(layout, "model", ["amd64"], 17 * 1024 * 1024, seed: 8);
        var retry = RegistryTestKit.FastRetry with { MaxRetries = 3 };
        var http = RegistryFactory.CreateHttpClient(new RegistryClientOptions { Insecure = true, Credentials = RegistryTestKit.NoCredentials, Retry = retry }, ecr: true, out _);
        var trusting = new DistributionRegistry(http, fake.Authority, new DistributionRegistryOptions
        {
            Insecure = true, MonolithicLimit = 1024, ChunkSize = 5 * 1024 * 1024, Retry = retry, RestartInterruptedUploads = false,
        });

        var e = await Assert.ThrowsAnyAsync<RegistryException>(() => new ImagePusher(layout, trusting).PushAsync(ImagePusher.ImagesInLayout(layout)));

        Assert.Contains("416", e.Message);
        Assert.True(fake.RangeRefusals >= 2, $"{fake.RangeRefusals} refusals");
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Ecr_SmallChunksAreRejectedByTheFake_SoTheMinimumIsReallyChecked()
    {
        using var dir = new TempDir();
        using var fake = new FakeRegistry(new FakeRegistryMode { Ecr = true });
        await fake.EnsureAsync("model");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        TestImages.WriteImage(layout, "model", ["amd64"], 3 * 1024 * 1024, seed: 6);
        var http = RegistryFactory.CreateHttpClient(new RegistryClientOptions { Insecure = true, Credentials = RegistryTestKit.NoCredentials, Retry = RegistryTestKit.FastRetry with { MaxRetries = 1 } }, ecr: true, out _);
        var tooSmall = new DistributionRegistry(http, fake.Authority, new DistributionRegistryOptions { Insecure = true, MonolithicLimit = 1024, ChunkSize = 1024 * 1024, Retry = RegistryTestKit.FastRetry with { MaxRetries = 1 } });

        await Assert.ThrowsAnyAsync<RegistryException>(() => new ImagePusher(layout, tooSmall).PushAsync(ImagePusher.ImagesInLayout(layout)));
        Assert.NotEmpty(fake.Rejections);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Ecr_PushToMissingRepository_SaysCreateIt_AndTheCreatorFixesIt()
    {
        using var dir = new TempDir();
        using var fake = new FakeRegistry(new FakeRegistryMode { Ecr = true });
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        TestImages.WriteImage(layout, "model", ["amd64"], 64 * 1024, seed: 7);
        var registry = EcrClient(fake, EcrQuirksHandler.MinimumChunkSize);

        var e = await Assert.ThrowsAsync<RepositoryNotFoundException>(() =>
            new ImagePusher(layout, registry, "team").PushAsync(ImagePusher.ImagesInLayout(layout)));
        Assert.Contains("repository 'team/model' does not exist in ECR", e.Message);
        Assert.Contains("--create-repositories", e.Message);

        var results = await new ImagePusher(layout, registry, "team", repositoryCreator: fake).PushAsync(ImagePusher.ImagesInLayout(layout));
        Assert.True(fake.Repositories.ContainsKey("team/model"));
        Assert.Single(results);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Ecr_ImmutableTag_IsAClearErrorNotARetry()
    {
        using var dir = new TempDir();
        using var fake = new FakeRegistry(new FakeRegistryMode { Ecr = true, ImmutableTags = true });
        await fake.EnsureAsync("team/model");
        var registry = EcrClient(fake, EcrQuirksHandler.MinimumChunkSize);
        var first = OciLayout.OpenOrCreate(dir.Combine("one"));
        TestImages.WriteImage(first, "model", ["amd64"], 1024, seed: 1);
        var second = OciLayout.OpenOrCreate(dir.Combine("two"));
        TestImages.WriteImage(second, "model", ["amd64"], 1024, seed: 2);
        await new ImagePusher(first, registry, "team").PushAsync(ImagePusher.ImagesInLayout(first));

        var e = await Assert.ThrowsAsync<ImmutableTagException>(() =>
            new ImagePusher(second, registry, "team").PushAsync(ImagePusher.ImagesInLayout(second)));
        Assert.Contains("tag is immutable", e.Message);
        // One tag PUT per push: the refusal was not retried.
        Assert.Equal(2, fake.Requests.Count(r => r == "PUT /v2/team/model/manifests/latest"));
    }

    [Fact]
    public async Task Ecr_ThrottlingExceptionBody_IsBackedOffAndRetried()
    {
        var calls = 0;
        var inner = new Scripted(() => ++calls == 1
            ? new HttpResponseMessage(System.Net.HttpStatusCode.BadRequest) { Content = new StringContent("{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}") }
            : new HttpResponseMessage(System.Net.HttpStatusCode.OK));
        using var client = new HttpClient(new RetryHandler(RegistryTestKit.FastRetry) { InnerHandler = new EcrQuirksHandler { InnerHandler = inner } });
        using var response = await client.GetAsync($"https://{EcrHost}/v2/team/model/tags/list");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, calls);
    }

    private sealed class Scripted(Func<HttpResponseMessage> next) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct) => Task.FromResult(next());
    }

    [Fact]
    public void RegistryTarget_RecognisesEcrHosts()
    {
        var t = RegistryTarget.Parse(EcrHost + "/team/ml");
        Assert.Equal(RegistryKind.Ecr, t.Kind);
        Assert.Equal("123456789012", t.EcrAccount);
        Assert.Equal("eu-west-1", t.EcrRegion);
        Assert.Equal("team/ml/vllm", t.RepositoryFor("vllm"));
        Assert.Equal(RegistryKind.Distribution, RegistryTarget.Parse("registry.example:5000/ns").Kind);
        Assert.Equal(RegistryKind.OciLayout, RegistryTarget.Parse("oci:artifacts/registry").Kind);
    }

    /// <summary>Sends requests for the ECR host to the loopback fake instead (the ECR handler still sees the ECR URL).</summary>
    private sealed class RedirectToLoopback(string authority) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            var b = new UriBuilder(request.RequestUri!) { Scheme = "http", Host = authority.Split(':')[0], Port = int.Parse(authority.Split(':')[1]) };
            request.RequestUri = b.Uri;
            return base.SendAsync(request, ct);
        }
    }
}
