using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Tests.Build;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Cli;

/// <summary>Issue 11 §9: the advice a corrupt lock gives works when followed (it used to fail the same way).</summary>
[Trait("Category", "Integration")]
public sealed class CorruptLockAdviceTests
{
    [Fact]
    public void CorruptLock_BuildSaysHowToRecover_AndLockUpdateFollowingItSucceeds()
    {
        using var ws = new ImageSetWorkspace();
        File.WriteAllText(ws.LockPath, "{\"lockVersion\": 1, \"sources\": [ {\"name\": ");
        var env = new Dictionary<string, string> { ["NO_COLOR"] = "1", ["HARDEN_CACHE"] = ws.Cache };
        var dll = Path.Combine(AppContext.BaseDirectory, "harden.dll");

        var (code, _, stderr) = RequiredService.Run("dotnet", [dll, "build", "--images", ws.ImagesDir, "--out", ws.Artifacts], env: env);
        Assert.Equal(2, code);
        Assert.Contains("images.lock.json: not a valid lock file", stderr);
        Assert.Contains("'harden lock --update'", stderr);
        Assert.False(File.Exists(Path.Combine(ws.Artifacts, "build.json")));

        // Following the advice works.
        var (lockCode, lockOut, lockErr) = RequiredService.Run("dotnet", [dll, "lock", "--update", "--images", ws.ImagesDir], env: env);
        Assert.True(lockCode == 0, lockOut + lockErr);
        Assert.Contains("replacing an unreadable lock", lockOut);
        Assert.Equal(["base", "tool"], LockFile.Load(ws.LockPath).Images.Select(i => i.Name));

        // lock --check on a corrupt lock stays an error (a gate never repairs).
        File.WriteAllText(ws.LockPath, "not json");
        var (checkCode, _, checkErr) = RequiredService.Run("dotnet", [dll, "lock", "--check", "--images", ws.ImagesDir], env: env);
        Assert.Equal(2, checkCode);
        Assert.Contains("not a valid lock file", checkErr);
    }
}
