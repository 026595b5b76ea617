// One task per pipeline stage (docs/architecture.md). Each calls the CLI; nothing clever lives here.

Task("Compile")
    .Does(() => DotNetBuild("HardenImage.sln", new DotNetBuildSettings { Configuration = Options.Configuration }));

// Release checks its options before any work (Setup runs before the first task): a typo in --registry or a
// missing key must not surface after a 20-minute build.
Setup(context =>
{
    if (Options.Target is "Release" or "HardenImageRelease") ValidateRelease();
});

Task("Lock")
    .Description("Check images/images.lock.json against images/*.yaml (offline; fails when stale). --relock=true re-resolves changed images, --relock=update everything")
    .IsDependentOn("Compile")
    .Does(() =>
    {
        // The lock changes only when asked: a CI run (or a laptop) never rewrites it behind the user's back.
        if (Options.Relock == "update") Harden("lock --update");
        else if (Options.Relock == "true") Harden("lock");
        else Harden("lock --check", failureHint: "the lock is stale: run 'dotnet cake --target=Lock --relock=true' (or 'harden lock') and commit images/images.lock.json");
    });

Task("Fetch")
    .Description("Download the locked .debs into the content-addressed cache")
    .IsDependentOn("Lock")
    .Does(() => Harden("fetch"));

Task("Build")
    .Description("Assemble hardened, reproducible OCI images into artifacts/oci")
    .IsDependentOn("Fetch")
    .Does(() => Harden($"build --out {Options.Artifacts}"));

Task("Sbom")
    .Description("CycloneDX 1.6 SBOM per image and architecture into artifacts/sbom")
    .IsDependentOn("Build")
    .Does(() => Harden($"sbom --out {Options.Artifacts}"));

Task("Scan")
    .Description("Offline vulnerability scan, VEX, and the policy gate (policies/vulnerabilities.yaml)")
    .IsDependentOn("Sbom")
    .Does(() => Harden($"scan --out {Options.Artifacts}"));

Task("Smoke")
    .Description("Run every image with the pod's restrictions and run its checks: amd64 in the Docker engine, arm64 emulated (qemu-user-static)")
    .IsDependentOn("Scan")
    .IsDependentOn("Services")
    .Does(() => Harden($"smoke --artifacts {Options.Artifacts}"));

// The default Smoke runs arm64 images emulated with the light model workload (one process: tiny model + forward
// passes) to keep the main job short; this runs every server check of every arm64 image under emulation (slow).
Task("SmokeArm64Full")
    .Description("Smoke the arm64 images under qemu-user-static with the full model-server checks (minutes per PyTorch import)")
    .IsDependentOn("Services")
    .Does(() => Harden($"smoke --artifacts {Options.Artifacts} --platform linux/arm64 --emulated-workload full"));

Task("Push")
    .Description("Push the image set to the registry (default: the OCI layout registry artifacts/registry)")
    .IsDependentOn("Smoke")
    .Does(() => Harden($"push --registry {Options.Registry} --artifacts {Options.Artifacts}{Insecure()}"));

Task("Sign")
    .Description("cosign signatures and SBOM/provenance/vuln attestations (a development key when none is given)")
    .IsDependentOn("Push")
    .Does(() => Harden($"sign --artifacts {Options.Artifacts}{KeyOption()}{Insecure()}"));

Task("Verify")
    .Description("Verify every pushed image: signatures, digest binding, required attestations, no critical findings")
    .IsDependentOn("Sign")
    .Does(() =>
    {
        foreach (var reference in PushedReferences())
            Harden($"verify {reference} --key {PublicKey()} --require sbom,provenance,vuln --no-critical{Insecure()}", selectImages: false);
    });

Task("Deploy")
    .Description("Kubernetes manifests pinned by digest + Kyverno/policy-controller admission policies into artifacts/deploy")
    .IsDependentOn("Verify")
    .Does(() => Harden($"deploy --artifacts {Options.Artifacts} --key {PublicKey()}{DeployRegistry()}", selectImages: false));

Task("Services")
    .Description("Install (as root) and start what the integration tests and smoke runs use: .ci/services")
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
            // ToolImage needs the harden image, which Default does not build: the HardenImage target runs it.
            Filter = string.IsNullOrEmpty(Options.TestFilter) ? "Category!=AwsLive&Category!=ArchiveLive&Category!=ToolImage" : Options.TestFilter,
            Loggers = new[] { "console;verbosity=normal", "trx" },
            ResultsDirectory = "TestResults",
        };
        DotNetTest("tests/HardenImage.Tests/HardenImage.Tests.csproj", settings);
    });

Task("Default")
    .Description("The main job on the embedded defaults: lock → build → sbom → scan → smoke → push → sign → verify → deploy")
    .IsDependentOn("Deploy");

Task("Release")
    .Description("The same pipeline against a real registry: dotnet cake --target=Release --registry=HOST/NS [--key=REF]")
    .IsDependentOn("Deploy");

// --- harden in its own image (images/harden.yaml, docs/fanout.md "The tool image") ---

// The per-architecture payload images/harden.yaml names as publish/harden-{arch}.
(string Rid, string Arch)[] HardenPublishTargets => new[] { ("linux-x64", "amd64"), ("linux-arm64", "arm64") };

Task("Publish")
    .Description("Per-architecture payload: self-contained publish of the harden CLI (linux/amd64, linux/arm64) into images/publish/harden-{arch}")
    .Does(() =>
    {
        foreach (var (rid, arch) in HardenPublishTargets)
        {
            var final = System.IO.Path.GetFullPath($"images/publish/harden-{arch}");
            // Published beside the final directory and swapped in whole: a failed publish leaves the previous output
            // (or none), never a mix; publishing into an old directory would keep files a newer build no longer has.
            var temp = System.IO.Path.GetFullPath($"images/publish/.harden-{arch}.tmp");
            if (System.IO.Directory.Exists(temp)) System.IO.Directory.Delete(temp, recursive: true);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            DotNetPublish("src/HardenImage.Cli/HardenImage.Cli.csproj", new DotNetPublishSettings
            {
                Configuration = "Release",
                Runtime = rid,
                SelfContained = true,
                OutputDirectory = temp,
                // Same bytes from any checkout path (the image must be reproducible): ContinuousIntegrationBuild maps the
                // checkout to /_/ (the Regex generator names its file-local types by a hash of the source path), the
                // intermediate files stay inside the checkout so that mapping covers them, no PDB, and no git
                // revision in the version (the image index carries the revision; a docs-only commit changes no byte).
                ArgumentCustomization = args => args
                    .Append("--artifacts-path").AppendQuoted($"obj/harden-publish")
                    .Append("-p:ContinuousIntegrationBuild=true")
                    .Append("-p:IncludeSourceRevisionInInformationalVersion=false")
                    .Append("-p:DebugType=none"),
            });
            if (System.IO.Directory.Exists(final)) System.IO.Directory.Delete(final, recursive: true);
            System.IO.Directory.Move(temp, final);
            Information($"published harden for {arch} into {final} in {clock.Elapsed.TotalSeconds:0} s");
        }
    });

// Not part of Default: two self-contained publishes and a build of harden inside harden cost ~3-4 minutes on the
// 2-core CI machine, which the main job's 10-minute budget does not have (docs/fanout.md, "The tool image").
Task("HardenImage")
    .Description("Publish harden, then lock-check, build, SBOM, scan and smoke images/harden.yaml, and run it as a fan-out job (tests ToolImage*)")
    .IsDependentOn("Lock")
    .IsDependentOn("Publish")
    .IsDependentOn("Services")
    .Does(() =>
    {
        Harden("fetch --image harden", selectImages: false);
        Harden($"build --out {Options.Artifacts} --image harden", selectImages: false);
        Harden($"sbom --out {Options.Artifacts} --image harden", selectImages: false);
        Harden($"scan --out {Options.Artifacts} --image harden", selectImages: false);
        Harden($"smoke --artifacts {Options.Artifacts} --image harden", selectImages: false);
        // A real `harden build` inside the image against a signed loopback apt repository, and the rendered Indexed
        // Job's pod run on Docker: test fixtures (signed repository, registry), so they run as tests.
        DotNetTest("tests/HardenImage.Tests/HardenImage.Tests.csproj", new DotNetTestSettings
        {
            Configuration = Options.Configuration,
            Filter = "Category=ToolImage",
            // Beside the Test target's results, so CI's closing line counts these tests too.
            Loggers = new[] { "console;verbosity=normal", "trx" },
            ResultsDirectory = "TestResults/tool-image",
            EnvironmentVariables = new Dictionary<string, string> { ["HARDEN_ARTIFACTS"] = System.IO.Path.GetFullPath(Options.Artifacts) },
        });
    });

Task("HardenImageRelease")
    .Description("HardenImage, then push, sign and verify the harden image (--registry, --key as for Release)")
    .IsDependentOn("HardenImage")
    .Does(() =>
    {
        Harden($"push --registry {Options.Registry} --artifacts {Options.Artifacts} --image harden{Insecure()}", selectImages: false);
        Harden($"sign --artifacts {Options.Artifacts} --image harden{KeyOption()}{Insecure()}", selectImages: false);
        foreach (var reference in PushedReferences(only: "harden"))
            Harden($"verify {reference} --key {PublicKey()} --require sbom,provenance,vuln --no-critical{Insecure()}", selectImages: false);
    });
