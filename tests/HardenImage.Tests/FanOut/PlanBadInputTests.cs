using System.Text.Json.Nodes;

namespace HardenImage.Tests.FanOut;

/// <summary>
/// Issue 13, bad input on the command line: a plan entry naming an unknown image, an entry number the plan does
/// not have, a plan from another commit, and a fan-in missing a job — each exit 2 with one line naming the file
/// and entry, and nothing written over the previous artifacts.
/// </summary>
[Collection(FanOutCollection.Name)]
[Trait("Category", "Integration")]
public sealed class PlanBadInputTests(FanOutKit kit)
{
    private string WritePlan(string name, Action<JsonNode>? edit = null)
    {
        var path = kit.Dir(name);
        kit.Ok("planner", "plan", "--images", kit.Workspace.ImagesDir, "--out", path);
        if (edit != null)
        {
            var node = JsonNode.Parse(File.ReadAllText(path))!;
            edit(node);
            File.WriteAllText(path, node.ToJsonString());
        }
        return path;
    }

    private FanOutKit.Result Job(string plan, string entry, string outDir) =>
        kit.Harden("bad", "job", "--images", kit.Workspace.ImagesDir, "--plan", plan, "--entry", entry,
            "--registry", kit.RegistryFor("bad"), "--out", outDir);

    [Fact]
    public void Plan_WithoutRegistryAndKey_SaysTheCacheWasNotConsulted_AndEveryEntryChanged()
    {
        var plan = FanOutKit.Plan(File.ReadAllText(WritePlan("plain-plan.json")));
        Assert.All(plan.Jobs, e => Assert.Equal((true, "not-consulted"), (e.Changed, e.Cache)));
        var matrix = kit.Ok("planner", "plan", "--images", kit.Workspace.ImagesDir, "--matrix").StdOut.Trim();
        Assert.DoesNotContain('\n', matrix);
        var include = JsonNode.Parse(matrix)!["include"]!.AsArray();
        Assert.Equal(["base", "base", "tool", "tool"], include.Select(e => (string)e!["image"]!));
        Assert.Equal(Enumerable.Range(0, 4), include.Select(e => (int)e!["index"]!));
    }

    [Fact]
    public void Job_PlanEntryWithAnUnknownImage_IsRefused_NamingTheEntry()
    {
        var plan = WritePlan("ghost-plan.json", n => n["matrix"]!["include"]![1]!["image"] = "ghost");
        var outDir = kit.Dir("ghost-job");
        var r = Job(plan, "1", outDir);
        Assert.Equal(2, r.Code);
        Assert.Contains($"error: {plan}: entry 1: image 'ghost' is not in {kit.Workspace.ImagesDir} (it has: base, tool); run 'harden plan' again on this checkout.", r.StdErr);
        Assert.False(Directory.Exists(outDir), "a refused job writes nothing");
    }

    [Fact]
    public void Job_EntryNumberTheplanDoesNotHave_IsRefused()
    {
        var plan = WritePlan("short-plan.json");
        var r = Job(plan, "9", kit.Dir("short-job"));
        Assert.Equal(2, r.Code);
        Assert.Contains($"{plan}: no entry 9 (the plan has 4: 0 to 3)", r.StdErr);
    }

    [Fact]
    public void Job_PlanFromAnotherCommit_IsRefused_BeforeBuilding()
    {
        var plan = WritePlan("stale-plan.json", n => n["matrix"]!["include"]![0]!["inputs"] = new string('0', 64));
        var outDir = kit.Dir("stale-job");
        var r = Job(plan, "0", outDir);
        Assert.Equal(2, r.Code);
        Assert.Contains("the plan says inputs 000000000000… for 'base' (linux/amd64), this checkout computes", r.StdErr);
        Assert.Contains("run 'harden plan' again", r.StdErr);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Job_EditedPlanWithEntriesOutOfOrder_IsRefused()
    {
        var plan = WritePlan("edited-plan.json", n => n["matrix"]!["include"]![2]!["index"] = 7);
        var r = Job(plan, "0", kit.Dir("edited-job"));
        Assert.Equal(2, r.Code);
        Assert.Contains($"{plan}: entry 2 says index 7; the plan was edited", r.StdErr);
    }

    [Fact]
    public void FanIn_WithAJobMissing_IsRefused_AndThePreviousArtifactsStayIntact()
    {
        var plan = WritePlan("partial-plan.json");
        var job = kit.Dir("partial-jobs", "0");
        var r0 = Job(plan, "0", job);
        Assert.True(r0.Code == 0, r0.Output);
        var outDir = kit.Dir("partial-fanin");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "build.json"), "{\"images\": []}\n");
        var r = kit.Harden("bad", "fanin", "--images", kit.Workspace.ImagesDir, "--plan", plan, "--registry", kit.RegistryFor("bad"), "--out", outDir, job);
        Assert.Equal(2, r.Code);
        Assert.Contains("error: fan-in: no record for plan entry 1 (base linux/arm64/v8), plan entry 2 (tool linux/amd64), plan entry 3 (tool linux/arm64/v8)", r.StdErr);
        Assert.Equal("{\"images\": []}\n", File.ReadAllText(Path.Combine(outDir, "build.json")));
        Assert.False(Directory.Exists(Path.Combine(outDir, "oci")));
    }

    [Fact]
    public void FanIn_RecordThatDisagreesWithItsManifest_IsRefused_BeforeAnIndexIsWritten()
    {
        var plan = WritePlan("tamper-plan.json");
        var jobs = Enumerable.Range(0, 4).Select(i => kit.Dir("tamper-jobs", i.ToString())).ToList();
        foreach (var (dir, i) in jobs.Select((d, i) => (d, i)))
        {
            var r = kit.Harden($"tamper{i}", "job", "--images", kit.Workspace.ImagesDir, "--plan", plan, "--entry", i.ToString(), "--registry", kit.RegistryFor("tamper"), "--out", dir);
            Assert.True(r.Code == 0, r.Output);
        }
        // The tool/amd64 record claims base's layers only: a build.json describing other layers than the image has.
        var path = HardenImage.FanOut.PlatformRecord.PathFor(jobs[2], "tool", "amd64");
        var record = JsonNode.Parse(File.ReadAllText(path))!;
        record["manifest"]!["layers"]!.AsArray().RemoveAt(1);
        File.WriteAllText(path, record.ToJsonString());
        var outDir = kit.Dir("tamper-fanin");
        var fanin = kit.Harden("bad", ["fanin", "--images", kit.Workspace.ImagesDir, "--plan", plan, "--registry", kit.RegistryFor("tamper"), "--out", outDir, .. jobs]);
        Assert.Equal(2, fanin.Code);
        Assert.Contains("error: fan-in: the record of 'tool' (linux/amd64) disagrees with its manifest sha256:", fanin.StdErr);
        Assert.Contains("the record was edited or the job is confused; re-run that job.", fanin.StdErr, StringComparison.OrdinalIgnoreCase);
        Assert.False(File.Exists(Path.Combine(outDir, "build.json")));
        Assert.Null(HardenImage.Oci.OciLayout.Open(Path.Combine(outDir, "oci")).Resolve("tool"));
    }
}
