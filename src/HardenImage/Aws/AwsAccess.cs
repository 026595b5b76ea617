using HardenImage.Common;

namespace HardenImage.Aws;

/// <summary>What the user says about AWS on push/sign/verify; anything null comes from the environment (AWS_PROFILE, AWS_REGION...).</summary>
public sealed record AwsAccess
{
    /// <summary>Region for KMS keys named without an ARN; ECR's region always comes from the registry host.</summary>
    public string? Region { get; init; }

    public string? Profile { get; init; }

    /// <summary>Send AWS API calls (ECR control plane, KMS) here instead of the public endpoints: VPC endpoints, loopback tests.</summary>
    public Uri? Endpoint { get; init; }

    /// <summary>KMS key (id, alias or ARN) that encrypts repositories harden creates in ECR; null = AES256.</summary>
    public string? RepositoryKmsKey { get; init; }

    /// <summary>From the --aws-region, --aws-profile, --aws-endpoint and --kms-key values; a bad endpoint is refused in one line.</summary>
    public static AwsAccess From(string? region, string? profile, string? endpoint, string? repositoryKmsKey = null)
    {
        Uri? uri = null;
        if (!string.IsNullOrWhiteSpace(endpoint) && (!Uri.TryCreate(endpoint, UriKind.Absolute, out uri) || uri.Scheme is not ("http" or "https")))
            throw new HardenException($"--aws-endpoint '{endpoint}': expected an http(s) URL such as https://api.ecr.eu-west-1.amazonaws.com/.");
        return new AwsAccess { Region = region, Profile = profile, Endpoint = uri, RepositoryKmsKey = repositoryKmsKey };
    }
}
