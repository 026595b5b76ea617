using HardenImage.Cli.Commands;
using HardenImage.Tests.Infrastructure;
using Spectre.Console.Cli;

namespace HardenImage.Tests.Deploy;

public sealed class DeployCommandTests
{
    private static int RunHarden(params string[] args)
    {
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.PropagateExceptions();
            c.AddDeployCommands();
        });
        return app.Run(args);
    }

    [Fact]
    public void Deploy_RendersEveryDescriptionIntoArtifactsDeploy()
    {
        using var ws = new DeployWorkspace();
        Assert.Equal(0, RunHarden("deploy", "--deploy-dir", ws.DeployDir, "--artifacts", ws.Artifacts,
            "--registry", DeployWorkspace.Registry, "--images", Path.Combine(RepoRoot.Find(), "images"), "--name", "inference-cpu"));
        Assert.True(File.Exists(Path.Combine(ws.Artifacts, "deploy", "inference-cpu", "02-deployment.yaml")));
        Assert.False(Directory.Exists(Path.Combine(ws.Artifacts, "deploy", "inference-cuda")));
        Assert.True(File.Exists(Path.Combine(ws.Artifacts, "deploy", "admission", "kyverno-verify-images.yaml")));
    }
}
