using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Tests.Build;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Smoke;

/// <summary>
/// A hermetic image set for smoke runs, built once per test class on the signed loopback repository of
/// <see cref="ImageSetWorkspace"/>: <c>base</c> (static whoami payload and a declared command check, amd64+arm64),
/// <c>web</c> (a static C HTTP server reading PORT/HOST, probed on /healthz) and <c>bad</c> (opts in to setuid and a
/// "shell" that really executes, with a declared check that cannot pass): the failures smoke must catch.
/// The loaded images are kept in the engine for the class and removed at the end.
/// </summary>
public sealed class SmokeWorkspace : IAsyncLifetime
{
    public ImageSetWorkspace Workspace { get; private set; } = null!;
    public Uri DockerHost { get; private set; } = null!;
    public SmokeReport Report { get; private set; } = null!;

    public SmokeOptions Options => new()
    {
        ArtifactsDir = Workspace.Artifacts,
        ImagesDir = Workspace.ImagesDir,
        KeepImages = true,
        HttpTimeout = TimeSpan.FromSeconds(30),
        RunTimeout = TimeSpan.FromSeconds(60),
        // The fixture's arm64 images carry the same host-compiled (amd64) static payloads: emulating them would
        // only find that. Emulation has its own tests (EmulatedSmokeTests) on the real arm64 images.
        Emulate = false,
    };

    public async Task InitializeAsync()
    {
        DockerHost = RequiredService.DockerHost();
        Workspace = new ImageSetWorkspace();
        var payload = Path.Combine(Workspace.ImagesDir, "payload");
        var gcc = RequiredService.Tool("gcc", "gcc");
        RequiredService.RunOk(gcc, ["-static", "-Os", "-o", Path.Combine(payload, "httpd"),
            Path.Combine(AppContext.BaseDirectory, "TestData", "Smoke", "httpd.c")]);
        File.Delete(Path.Combine(Workspace.ImagesDir, "tool.yaml"));
        Workspace.WriteImage("base", """
            name: base
            version: "1.0"
            sources: [fixture]
            architectures: [amd64, arm64]
            packages: [base-files, fake-shell, fake-su, libfake1, ca-certificates]
            exclude: [debconf, debconf-2.0, mawk, awk]
            files:
              - source: payload/whoami
                target: /usr/local/bin/whoami
                mode: "0755"
            entrypoint: [/usr/local/bin/whoami]
            smoke:
              - name: says-who
                command: [hello]
                outputContains: "uid=65532 gid=65532 arg=hello"
            """);
        Workspace.WriteImage("web", """
            name: web
            from: base
            files:
              - source: payload/httpd
                target: /usr/local/bin/httpd
                mode: "0755"
            entrypoint: [/usr/local/bin/httpd]
            env:
              PORT: "8080"
            smoke:
              - name: healthz
                http: /healthz
                port: 8080
            """);
        Workspace.WriteImage("bad", """
            name: bad
            version: "1.0"
            sources: [fixture]
            architectures: [amd64]
            packages: [base-files, fake-su]
            exclude: [mawk, awk]
            allow:
              setuid: true
              shell: true
            files:
              - source: payload/whoami
                target: /usr/local/bin/whoami
                mode: "0755"
              - source: payload/whoami
                target: /usr/bin/sh
                mode: "0755"
            entrypoint: [/usr/local/bin/whoami]
            smoke:
              - name: impossible-output
                command: [hello]
                outputContains: "uid=0"
            """);
        await Workspace.LockAsync();
        await Workspace.BuildAsync();
        using var engine = new DockerEngine(DockerHost);
        Report = await new SmokeRunner(engine, Options).RunAsync();
    }

    public async Task DisposeAsync()
    {
        if (DockerHost != null && Workspace != null && File.Exists(Path.Combine(Workspace.Artifacts, "build.json")))
        {
            using var engine = new DockerEngine(DockerHost);
            foreach (var image in BuildManifest.Load(Path.Combine(Workspace.Artifacts, "build.json")).Images)
                foreach (var arch in image.Architectures)
                    await engine.RemoveImageAsync(SmokeRunner.TagFor(image.Name, arch.Architecture, arch.Config));
        }
        Workspace?.Dispose();
    }
}
