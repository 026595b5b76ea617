using HardenImage.Aws;
using HardenImage.Registry;
using HardenImage.Tests.Aws;
using HardenImage.Tests.SignFlow;

namespace HardenImage.Tests.Registry;

/// <summary>
/// Push, sign, verify, model fetch and deploy reach a registry with one credential chain, in the order
/// docs/signing.md ("Registries and AWS") documents: the run's own credentials (push --username), then ECR's
/// GetAuthorizationToken for ECR hosts, then the docker config.
/// </summary>
public sealed class CredentialChainTests
{
    private const string EcrHost = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

    private static string[] Order(CredentialProviderChain chain) => chain.Providers.Select(p => p.GetType().Name).ToArray();

    [Fact]
    public void Order_GivenCredentialsThenEcrTokenThenDockerConfig()
    {
        using var clients = new RegistryClients(new AwsAccess());
        var ecr = RegistryTarget.Parse(EcrHost + "/team");
        var given = new ExplicitCredentialProvider(EcrHost, "user", "secret");
        Assert.Equal(["ExplicitCredentialProvider", "EcrRegistryCredentials", "DockerConfigCredentialProvider"], Order(clients.CredentialsFor(ecr, given)));
        // sign, verify, fetch: nothing given on the command line, the same chain without it.
        Assert.Equal(["EcrRegistryCredentials", "DockerConfigCredentialProvider"], Order(clients.CredentialsFor(ecr)));
        // ECR tokens are never offered to another registry (Information disclosure).
        var distribution = RegistryTarget.Parse("registry.example:5000/team");
        Assert.Equal(["ExplicitCredentialProvider", "DockerConfigCredentialProvider"],
            Order(clients.CredentialsFor(distribution, new ExplicitCredentialProvider("registry.example:5000", "user", "secret"))));
        Assert.Equal(["DockerConfigCredentialProvider"], Order(clients.CredentialsFor(distribution)));
    }

    [Fact]
    [Trait("Category", "Integration")] // a SigV4-verifying loopback ECR
    public async Task GivenCredentials_WinOverTheEcrToken_WhichWinsWithoutThem()
    {
        await using var aws = new SigV4LoopbackServer(region: "eu-west-1");
        using var registry = new FakeRegistry(new FakeRegistryMode { Ecr = true });
        AwsSignFlowTests.ServeEcr(aws, registry);
        using var clients = new RegistryClients(new AwsAccess(), contextForRegion: _ => aws.Context());
        var ecr = RegistryTarget.Parse(EcrHost + "/team");

        var given = await clients.CredentialsFor(ecr, new ExplicitCredentialProvider(EcrHost, "user", "given-secret")).GetAsync(EcrHost, CancellationToken.None);
        Assert.Equal(("user", "given-secret"), given);
        Assert.Empty(aws.ExchangesFor(EcrApiClient.TargetPrefix + "GetAuthorizationToken"));

        var token = await clients.CredentialsFor(ecr).GetAsync(EcrHost, CancellationToken.None);
        Assert.Equal(("AWS", "ecr-token-password"), token);
        Assert.Single(aws.ExchangesFor(EcrApiClient.TargetPrefix + "GetAuthorizationToken"));
    }
}
