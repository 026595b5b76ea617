using System.Text.Json.Nodes;
using HardenImage.Common;
using HardenImage.Registry;

namespace HardenImage.FanOut;

/// <summary>What <c>harden ci github</c> renders for.</summary>
public sealed record GitHubWorkflowOptions
{
    /// <summary>--registry the jobs push to (distribution host/NS or ECR).</summary>
    public required string Registry { get; init; }
    /// <summary>"secret" (the PEM in secret HARDEN_SIGNING_KEY, its password in HARDEN_KEY_PASSWORD) or an <c>awskms://</c> key.</summary>
    public string SigningKey { get; init; } = "secret";
    /// <summary>The release key's public half, committed in the repository (the cache trusts only manifests it verifies).</summary>
    public string PublicKey { get; init; } = "cosign.pub";
    /// <summary>IAM role for GitHub OIDC; required when AWS is used (ECR registry or awskms:// key).</summary>
    public string? AwsRole { get; init; }
    public string? AwsRegion { get; init; }
    public string DotnetVersion { get; init; } = "10.0.x";
}

/// <summary>
/// <c>harden ci github</c>: plan job → matrix of per-platform jobs (amd64 on ubuntu-latest, arm64 on
/// ubuntu-24.04-arm, so smoke runs natively) → fan-in that assembles, pushes, signs, verifies and renders the
/// deployment. Least privilege: the workflow grants nothing; each job reads contents, and only jobs that talk to
/// AWS get <c>id-token: write</c> (OIDC, no stored AWS keys). Actions are pinned by commit. No <c>${{ }}</c> is
/// expanded inside a script: values reach <c>run:</c> through <c>env:</c> (no script injection from branch names or
/// matrix values). The signing key only exists in the fan-in job, from a secret of the <c>release</c> environment.
/// </summary>
public static class GitHubWorkflowRenderer
{
    // Pinned by commit (tags move); the comment in the rendered file names the release.
    private const string Checkout = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"; // v4.2.2
    private const string SetupDotnet = "actions/setup-dotnet@67a3573c9a986a3f9c594539f4ab511d57bb3ce9"; // v4.3.1
    private const string Upload = "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02"; // v4.6.2
    private const string Download = "actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093"; // v4.3.0
    private const string AwsCredentials = "aws-actions/configure-aws-credentials@e3dd6a429d7300a6a4c196c26e071d42e0343502"; // v4.0.2
    private const string Harden = "./.harden/harden";

    public static JsonObject Render(GitHubWorkflowOptions o)
    {
        var target = RegistryTarget.Parse(o.Registry);
        if (target.Kind == RegistryKind.OciLayout)
            throw new HardenException($"--registry {o.Registry}: CI jobs run on separate machines and share a registry, not a local directory; name a registry host.");
        var kms = o.SigningKey.StartsWith("awskms://", StringComparison.Ordinal);
        if (!kms && o.SigningKey != "secret")
            throw new HardenException($"--signing-key '{o.SigningKey}': expected 'secret' (the PEM key in the secret HARDEN_SIGNING_KEY) or awskms://...; a key file in the repository would publish it.");
        var ecr = target.Kind == RegistryKind.Ecr;
        var region = o.AwsRegion ?? target.EcrRegion;
        if ((ecr || kms) && o.AwsRole == null)
            throw new HardenException($"{(ecr ? $"--registry {o.Registry} is ECR" : $"--signing-key {o.SigningKey} is AWS KMS")}: give --aws-role arn:aws:iam::ACCOUNT:role/NAME (assumed through GitHub OIDC; no AWS keys are stored).");
        if ((ecr || kms) && region == null)
            throw new HardenException("--aws-region: needed for the AWS KMS key (ECR takes it from the registry host).");

        JsonObject Env() => new()
        {
            ["HARDEN_REGISTRY"] = target.ToString(),
            ["HARDEN_CACHE"] = "${{ runner.temp }}/harden-cache",
        };
        JsonArray Setup(bool aws)
        {
            var steps = new JsonArray
            {
                new JsonObject { ["uses"] = Checkout, ["with"] = new JsonObject { ["persist-credentials"] = false } },
                new JsonObject { ["uses"] = SetupDotnet, ["with"] = new JsonObject { ["dotnet-version"] = o.DotnetVersion } },
                new JsonObject { ["name"] = "harden", ["run"] = "dotnet publish src/HardenImage.Cli -c Release -o .harden --nologo" },
            };
            if (aws)
                steps.Add(new JsonObject
                {
                    ["uses"] = AwsCredentials,
                    ["with"] = new JsonObject { ["role-to-assume"] = o.AwsRole, ["aws-region"] = region },
                });
            return steps;
        }
        JsonObject Permissions(bool idToken)
        {
            var p = new JsonObject { ["contents"] = "read" };
            if (idToken) p["id-token"] = "write";
            return p;
        }

        var plan = new JsonObject
        {
            ["runs-on"] = "ubuntu-latest",
            ["permissions"] = Permissions(ecr),
            ["env"] = Env(),
            ["outputs"] = new JsonObject { ["matrix"] = "${{ steps.plan.outputs.matrix }}" },
            ["steps"] = Add(Setup(ecr),
                new JsonObject
                {
                    ["id"] = "plan", ["name"] = "plan",
                    ["env"] = new JsonObject { ["PUBLIC_KEY"] = o.PublicKey },
                    ["run"] = $"echo \"matrix=$({Harden} plan --registry \"$HARDEN_REGISTRY\" --key \"$PUBLIC_KEY\" --out plan.json --matrix)\" >> \"$GITHUB_OUTPUT\"",
                },
                new JsonObject { ["uses"] = Upload, ["with"] = new JsonObject { ["name"] = "plan", ["path"] = "plan.json", ["retention-days"] = 7 } }),
        };

        var build = new JsonObject
        {
            ["needs"] = "plan",
            ["runs-on"] = "${{ matrix.runner }}",
            ["permissions"] = Permissions(ecr),
            ["strategy"] = new JsonObject { ["fail-fast"] = false, ["matrix"] = "${{ fromJSON(needs.plan.outputs.matrix) }}" },
            ["env"] = Env(),
            ["steps"] = Add(Setup(ecr),
                new JsonObject { ["uses"] = Download, ["with"] = new JsonObject { ["name"] = "plan" } },
                new JsonObject
                {
                    ["name"] = "build or reuse",
                    ["env"] = new JsonObject { ["ENTRY"] = "${{ matrix.index }}", ["PUBLIC_KEY"] = o.PublicKey },
                    ["run"] = $"{Harden} job --plan plan.json --entry \"$ENTRY\" --registry \"$HARDEN_REGISTRY\" --key \"$PUBLIC_KEY\" --out job",
                },
                new JsonObject
                {
                    ["name"] = "smoke (native platform)",
                    ["env"] = new JsonObject { ["IMAGE"] = "${{ matrix.image }}", ["PLATFORM"] = "${{ matrix.platform }}" },
                    // A verified hit was smoke-tested when it was built; only what this job built is run here.
                    ["run"] = $"if [ -d job/oci ]; then {Harden} smoke --artifacts job --image \"$IMAGE\" --platform \"$PLATFORM\"; fi",
                },
                new JsonObject
                {
                    ["uses"] = Upload,
                    ["with"] = new JsonObject { ["name"] = "job-${{ matrix.index }}", ["path"] = "job/fanout/", ["retention-days"] = 7 },
                }),
        };

        var signEnv = new JsonObject { ["PUBLIC_KEY"] = o.PublicKey };
        string signRun;
        if (kms)
        {
            signEnv["SIGNING_KEY"] = o.SigningKey;
            signRun = $"{Harden} sign --artifacts artifacts --key \"$SIGNING_KEY\"";
        }
        else
        {
            signEnv["HARDEN_SIGNING_KEY_PEM"] = "${{ secrets.HARDEN_SIGNING_KEY }}";
            signEnv["HARDEN_KEY_PASSWORD"] = "${{ secrets.HARDEN_KEY_PASSWORD }}";
            // The key lives for this step only, readable by the runner user alone.
            signRun = "umask 077\nkey=\"$RUNNER_TEMP/cosign.key\"\nprintf '%s\\n' \"$HARDEN_SIGNING_KEY_PEM\" > \"$key\"\n"
                      + $"{Harden} sign --artifacts artifacts --key \"$key\"\nrm -f \"$key\"";
        }
        var fanin = new JsonObject
        {
            ["needs"] = new JsonArray("plan", "build"),
            ["runs-on"] = "ubuntu-latest",
            ["environment"] = "release",
            ["permissions"] = Permissions(ecr || kms),
            ["env"] = Env(),
            ["steps"] = Add(Setup(ecr || kms),
                new JsonObject { ["uses"] = Download, ["with"] = new JsonObject { ["name"] = "plan" } },
                new JsonObject { ["uses"] = Download, ["with"] = new JsonObject { ["pattern"] = "job-*", ["path"] = "jobs" } },
                // Indexes only: the jobs pushed every blob, so the fan-in neither downloads layers nor uploads any.
                new JsonObject { ["name"] = "assemble and push indexes", ["run"] = $"{Harden} fanin --plan plan.json --registry \"$HARDEN_REGISTRY\" --push --out artifacts jobs/*" },
                new JsonObject { ["name"] = "sign", ["env"] = signEnv, ["run"] = signRun },
                new JsonObject
                {
                    ["name"] = "verify", ["env"] = new JsonObject { ["PUBLIC_KEY"] = o.PublicKey },
                    ["run"] = $"for ref in $(jq -r '.images[].reference' artifacts/pushed.json); do {Harden} verify \"$ref\" --key \"$PUBLIC_KEY\"; done",
                },
                new JsonObject
                {
                    ["name"] = "render deployment", ["env"] = new JsonObject { ["PUBLIC_KEY"] = o.PublicKey },
                    ["run"] = $"{Harden} deploy --artifacts artifacts --registry \"$HARDEN_REGISTRY\" --key \"$PUBLIC_KEY\"",
                },
                new JsonObject { ["uses"] = Upload, ["with"] = new JsonObject { ["name"] = "release", ["path"] = "artifacts/pushed.json\nartifacts/build.json\ndeploy/", ["retention-days"] = 30 } }),
        };

        return new JsonObject
        {
            ["name"] = "harden",
            ["on"] = new JsonObject
            {
                ["push"] = new JsonObject { ["branches"] = new JsonArray("main") },
                // Debian publishes security updates daily: rebuild what they change (the rest is a verified hit).
                ["schedule"] = new JsonArray(new JsonObject { ["cron"] = "17 5 * * *" }),
                ["workflow_dispatch"] = new JsonObject(),
            },
            ["permissions"] = new JsonObject(),
            ["concurrency"] = new JsonObject { ["group"] = "harden-${{ github.ref }}", ["cancel-in-progress"] = false },
            ["jobs"] = new JsonObject { ["plan"] = plan, ["build"] = build, ["fanin"] = fanin },
        };
    }

    private static JsonArray Add(JsonArray steps, params JsonObject[] more)
    {
        foreach (var s in more) steps.Add(s);
        return steps;
    }
}
