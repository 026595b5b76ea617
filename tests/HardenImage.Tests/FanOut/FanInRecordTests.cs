using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.FanOut;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.FanOut;

/// <summary>
/// Issue 13, bad input at the fan-in: a missing platform record, two records with different manifests for the same
/// inputs, a record of another plan, a record of an image the plan does not have. Each is refused naming what and
/// where, before anything is written.
/// </summary>
public sealed class FanInRecordTests : IDisposable
{
    private readonly TempDir _dir = new("hi-fanin");

    private static readonly BuildPlan Plan = new()
    {
        Matrix = new PlanMatrix(
        [
            Entry(0, "base", "amd64"), Entry(1, "base", "arm64"),
        ]),
        FanIn = new PlanFanIn { Images = new(StringComparer.Ordinal) { ["base"] = ["linux/amd64", "linux/arm64/v8"] }, Needs = [0, 1] },
    };

    private static PlanEntry Entry(int i, string image, string arch) => new()
    {
        Index = i, Image = image, Architecture = arch, Platform = HardenImage.Oci.PlatformName.ForArchitecture(arch), Runner = BuildPlan.RunnerFor(arch),
        Inputs = new string((char)('a' + i), 64), Changed = true, Cache = CacheState.Miss,
    };

    private string Job(string name, params (string Image, string Arch, string Inputs, char Manifest)[] records)
    {
        var dir = _dir.Combine(name);
        foreach (var (image, arch, inputs, manifest) in records)
            new PlatformRecord
            {
                Image = image, Platform = HardenImage.Oci.PlatformName.ForArchitecture(arch), Inputs = inputs, Registry = "127.0.0.1:5000/ns", Repository = "ns/" + image,
                Manifest = new BuiltArchitecture { Architecture = arch, Manifest = "sha256:" + new string(manifest, 64), ManifestSize = 10 },
                Cache = CacheState.Miss, CacheReason = "test",
            }.Save(dir);
        return dir;
    }

    [Fact]
    public void FanIn_AllRecordsPresentAndAgreeing_MatchesEveryEntry()
    {
        var a = Job("a", ("base", "amd64", Plan.Jobs[0].Inputs, '1'));
        var b = Job("b", ("base", "arm64", Plan.Jobs[1].Inputs, '2'));
        var again = Job("c", ("base", "arm64", Plan.Jobs[1].Inputs, '2')); // a retried job that agrees
        var matched = FanInAssembler.Match(Plan, [a, b, again]);
        Assert.Equal(["sha256:" + new string('1', 64), "sha256:" + new string('2', 64)], matched.OrderBy(kv => kv.Key).Select(kv => kv.Value.Record.Manifest.Manifest));
    }

    [Fact]
    public void FanIn_ReadsRecordsDirectlyInADirectory_AsACiArtifactDownloadLeavesThem()
    {
        var a = Job("a", ("base", "amd64", Plan.Jobs[0].Inputs, '1'));
        var b = Job("b", ("base", "arm64", Plan.Jobs[1].Inputs, '2'));
        var flat = _dir.Combine("jobs", "job-1");
        Directory.CreateDirectory(flat);
        File.Move(PlatformRecord.PathFor(b, "base", "arm64"), Path.Combine(flat, "base.arm64.json"));
        Assert.Equal(2, FanInAssembler.Match(Plan, [a, flat]).Count);
    }

    [Fact]
    public void FanIn_MissingPlatformRecord_IsRefused_NamingThePlanEntry()
    {
        var a = Job("a", ("base", "amd64", Plan.Jobs[0].Inputs, '1'));
        var e = Assert.Throws<HardenImage.Common.HardenException>(() => FanInAssembler.Match(Plan, [a]));
        Assert.StartsWith("fan-in: no record for plan entry 1 (base linux/arm64/v8) in " + a, e.Message);
        Assert.Contains("that job failed or its artifacts were not passed to the fan-in; re-run it", e.Message);
    }

    [Fact]
    public void FanIn_TwoRecordsWithDifferentManifestsForTheSameInputs_FailsLoudly_ShowingBoth()
    {
        var a = Job("a", ("base", "amd64", Plan.Jobs[0].Inputs, '1'), ("base", "arm64", Plan.Jobs[1].Inputs, '2'));
        var b = Job("b", ("base", "arm64", Plan.Jobs[1].Inputs, '3'));
        var e = Assert.Throws<HardenImage.Common.HardenException>(() => FanInAssembler.Match(Plan, [a, b]));
        Assert.Equal($"non-deterministic build: 'base' (linux/arm64/v8) with inputs {Plan.Jobs[1].Inputs} is sha256:{new string('2', 64)} in {PlatformRecord.PathFor(a, "base", "arm64")} " +
                     $"but sha256:{new string('3', 64)} in {PlatformRecord.PathFor(b, "base", "arm64")}. Same inputs must give the same manifest: compare the two jobs' layers (harden export) and report it.", e.Message);
    }

    [Fact]
    public void FanIn_RecordOfAnotherPlan_IsRefused()
    {
        var a = Job("a", ("base", "amd64", new string('f', 64), '1'), ("base", "arm64", Plan.Jobs[1].Inputs, '2'));
        var e = Assert.Throws<HardenImage.Common.HardenException>(() => FanInAssembler.Match(Plan, [a]));
        Assert.Contains("'base' (linux/amd64) was built from inputs ffffffffffff…, the plan entry 0 expects aaaaaaaaaaaa…: a record of another plan or commit", e.Message);
    }

    [Fact]
    public void FanIn_RecordOfAnImageNotInThePlan_IsRefused()
    {
        var a = Job("a", ("ghost", "amd64", new string('a', 64), '1'));
        var e = Assert.Throws<HardenImage.Common.HardenException>(() => FanInAssembler.Match(Plan, [a]));
        Assert.Contains("image 'ghost' (linux/amd64) is not in the plan (it has: base linux/amd64, base linux/arm64/v8)", e.Message);
    }

    [Fact]
    public void FanIn_RecordUnderAnotherFileName_IsRefused()
    {
        var a = Job("a", ("base", "amd64", Plan.Jobs[0].Inputs, '1'));
        File.Move(PlatformRecord.PathFor(a, "base", "amd64"), PlatformRecord.PathFor(a, "base", "arm64"));
        var e = Assert.Throws<HardenImage.Common.HardenException>(() => FanInAssembler.Match(Plan, [a]));
        Assert.Contains("records image 'base' (amd64) under another file name", e.Message);
    }

    public void Dispose() => _dir.Dispose();
}
