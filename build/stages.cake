// One task per pipeline stage (docs/architecture.md). Each calls the CLI; nothing clever lives here.

Task("Compile")
    .Does(() => DotNetBuild("HardenImage.sln", new DotNetBuildSettings { Configuration = Options.Configuration }));

Task("Lock")
    .Description("Resolve images/*.yaml against the signed apt sources into images/images.lock.json (keeps pins)")
    .IsDependentOn("Compile")
    .Does(() => Harden("lock"));

Task("Fetch")
    .Description("Download the locked .debs into the content-addressed cache")
    .IsDependentOn("Lock")
    .Does(() => Harden("fetch"));

Task("Build")
    .Description("Assemble hardened, reproducible OCI images into artifacts/oci")
    .IsDependentOn("Fetch")
    .Does(() => Harden($"build --out {Options.Artifacts}"));

Task("Services")
    .Description("Install (as root) and start what the integration tests use: .ci/services")
    .Does(() =>
    {
        var exit = StartProcess("bash", new ProcessSettings { Arguments = ".ci/services" });
        if (exit != 0) throw new CakeException(exit, ".ci/services failed: see its message above");
    });

Task("Test")
    .Description("Run every test (unit and integration against real services)")
    .IsDependentOn("Compile")
    .IsDependentOn("Services")
    .Does(() =>
    {
        var settings = new DotNetTestSettings
        {
            Configuration = Options.Configuration,
            NoBuild = true,
            Filter = string.IsNullOrEmpty(Options.TestFilter) ? "Category!=AwsLive" : Options.TestFilter,
            Loggers = new[] { "console;verbosity=normal", "trx" },
            ResultsDirectory = "TestResults",
        };
        DotNetTest("tests/HardenImage.Tests/HardenImage.Tests.csproj", settings);
    });

Task("Default")
    .Description("The main job: every stage implemented so far, on the embedded defaults")
    .IsDependentOn("Build");
