using HardenImage.Aws;
using HardenImage.Common;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Aws;

/// <summary>Region and credential resolution (no process-wide environment is touched: lookups are injected).</summary>
public class AwsContextTests
{
    private static Func<string, string?> Env(params (string Key, string Value)[] vars) =>
        k => vars.FirstOrDefault(v => v.Key == k).Value;

    private static readonly AwsClientOptions WithKeys = new() { Credentials = new Amazon.Runtime.BasicAWSCredentials("AKIDX", "secret") };

    [Fact]
    public void Region_ExplicitOptionWinsOverEnvironment()
    {
        var ctx = AwsContext.Resolve(WithKeys with { Region = "eu-west-1" }, Env(("AWS_REGION", "us-east-2"), ("AWS_DEFAULT_REGION", "ap-south-1")));
        Assert.Equal("eu-west-1", ctx.Region);
    }

    [Fact]
    public void Region_AwsRegionThenAwsDefaultRegion()
    {
        Assert.Equal("us-east-2", AwsContext.Resolve(WithKeys, Env(("AWS_REGION", "us-east-2"), ("AWS_DEFAULT_REGION", "ap-south-1"))).Region);
        Assert.Equal("ap-south-1", AwsContext.Resolve(WithKeys, Env(("AWS_DEFAULT_REGION", "ap-south-1"))).Region);
    }

    [Fact]
    public void Profile_SuppliesCredentialsAndRegion()
    {
        using var dir = new TempDir("hi-aws");
        var file = dir.Combine("credentials");
        File.WriteAllText(file, "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = defaultsecret\n\n" +
                                "[ci]\naws_access_key_id = AKIDCI\naws_secret_access_key = cisecret\naws_session_token = citoken\nregion = eu-north-1\n");
        var ctx = AwsContext.Resolve(new AwsClientOptions { SharedCredentialsFile = file }, Env(("AWS_PROFILE", "ci")));
        Assert.Equal("eu-north-1", ctx.Region);
        var creds = ctx.Credentials.GetCredentials();
        Assert.Equal(("AKIDCI", "cisecret", "citoken"), (creds.AccessKey, creds.SecretKey, creds.Token));

        var missing = Assert.Throws<HardenException>(() => AwsContext.Resolve(new AwsClientOptions { SharedCredentialsFile = file, Profile = "nope", Region = "us-east-1" }, Env()));
        Assert.Contains("'nope'", missing.Message);
    }

    [Fact]
    public void Region_MissingEverywhere_SaysWhereToSetIt()
    {
        using var dir = new TempDir("hi-aws");
        var file = dir.Combine("credentials");
        File.WriteAllText(file, "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = defaultsecret\n");
        var e = Assert.Throws<HardenException>(() => AwsContext.Resolve(new AwsClientOptions { SharedCredentialsFile = file }, Env()));
        Assert.Contains("AWS_REGION", e.Message);
    }

    [Theory]
    [InlineData("us-east-1.evil.example")]
    [InlineData("US-EAST-1")]
    [InlineData("us-east-1/")]
    [InlineData("")]
    public void Region_NotShapedLikeARegion_IsRejected(string region) =>
        Assert.Throws<HardenException>(() => new AwsContext(WithKeys.Credentials!, region));

    [Fact]
    public void Endpoint_IsServicePrefixAndRegion_UnlessOverridden()
    {
        var ctx = new AwsContext(WithKeys.Credentials!, "eu-west-1");
        Assert.Equal(new Uri("https://api.ecr.eu-west-1.amazonaws.com/"), ctx.EndpointFor("api.ecr"));
        Assert.Equal(new Uri("https://inspector-scan.cn-north-1.amazonaws.com.cn/"), ctx.WithRegion("cn-north-1").EndpointFor("inspector-scan"));
        var local = new AwsContext(WithKeys.Credentials!, "eu-west-1", new Uri("http://127.0.0.1:9/"));
        Assert.Equal(new Uri("http://127.0.0.1:9/"), local.EndpointFor("inspector2"));
    }
}
