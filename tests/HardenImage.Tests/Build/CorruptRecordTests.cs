using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Registry;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>
/// A present but unreadable pushed.json or build.json used to be taken as absent, so 'sign' said "run 'harden push'
/// first" about a file that was there (misleading: the user re-pushes and the corruption stays). Present-but-corrupt
/// is now one line naming the file and the stage to re-run; only the build, which rewrites build.json, builds over
/// it — and says so.
/// </summary>
public sealed class CorruptRecordTests
{
    private const string Corrupt = "{\"registry\": ";

    [Trait("Category", "Integration")]
    [Fact]
    public void CorruptPushRecord_IsAnErrorNamingTheFile_NotMistakenForAMissingPush()
    {
        using var dir = new TempDir("hi-corrupt-pushed");
        var path = dir.Combine("pushed.json");
        Assert.Null(PushedFile.TryLoad(path));
        File.WriteAllText(path, Corrupt);
        var e = Assert.Throws<HardenException>(() => PushedFile.TryLoad(path));
        Assert.StartsWith($"{path}: the push record is not valid", e.Message);
        Assert.EndsWith("Re-run 'harden push' to write it again.", e.Message);
        Assert.Equal(2, e.ExitCode);

        // The CLI: sign says what is wrong with the file, not "missing", and leaves it as it was.
        var sign = HardenImage.Tests.Cli.BadInputTests.Harden(dir.Path, ["sign", "--artifacts", dir.Path], new Dictionary<string, string>());
        Assert.Equal(2, sign.Code);
        var output = System.Text.RegularExpressions.Regex.Replace(sign.StdOut + sign.StdErr, @"\s+", " ");
        Assert.Contains("the push record is not valid", output);
        Assert.Contains("Re-run 'harden push'", output);
        Assert.DoesNotContain("missing", output);
        Assert.DoesNotContain("   at ", sign.StdErr);
        Assert.Equal(Corrupt, File.ReadAllText(path));
    }

    [Fact]
    public void CorruptBuildRecord_IsAnErrorForReaders_NamingTheFileAndTheFix()
    {
        using var dir = new TempDir("hi-corrupt-build");
        var path = dir.Combine("build.json");
        Assert.Null(BuildManifest.TryLoad(path));
        File.WriteAllText(path, "{\"images\": [null]}");
        var e = Assert.Throws<HardenException>(() => BuildManifest.TryLoad(path));
        Assert.StartsWith($"{path}: the build record is not valid", e.Message);
        Assert.EndsWith("Re-run 'harden build' to write it again.", e.Message);
        var warnings = new List<string>();
        Assert.Null(BuildManifest.LoadOrRebuildOver(path, warnings.Add));
        Assert.StartsWith($"{path}: the build record is not valid", Assert.Single(warnings));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task CorruptBuildRecord_IsBuiltOver_WithAWarning_NotSilently()
    {
        using var w = new ImageSetWorkspace();
        await w.LockAsync();
        var first = await w.BuildAsync();
        var path = Path.Combine(w.Artifacts, "build.json");
        File.WriteAllText(path, "{ not json");

        var again = await w.BuildAsync();
        Assert.Contains(again.CacheRepairs, r => r.StartsWith($"{path}: the build record is not valid", StringComparison.Ordinal)
                                                 && r.Contains("rebuilding every selected image", StringComparison.Ordinal));
        Assert.False(again.UpToDate);
        // Rewritten, and the same images (deterministic) as before.
        Assert.Equal(first.Manifest.Images.Select(i => i.Index), BuildManifest.Load(path).Images.Select(i => i.Index));
    }
}
