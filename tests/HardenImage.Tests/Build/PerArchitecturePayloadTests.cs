using System.Formats.Tar;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Oci;

namespace HardenImage.Tests.Build;

/// <summary>
/// <c>files: - source: publish/app-{arch}</c>: each architecture's layer gets its own build output (a self-contained
/// .NET publish differs per architecture), read by the same PayloadReader under the same rules (threat I), and a
/// missing or hostile per-architecture source is refused with one line naming the file:line and the architecture.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PerArchitecturePayloadTests : IAsyncLifetime
{
    private readonly ImageSetWorkspace W = new();

    public async Task InitializeAsync()
    {
        await W.LockAsync();
        await W.BuildAsync();
    }

    public Task DisposeAsync()
    {
        W.Dispose();
        return Task.CompletedTask;
    }

    private void Publish(string arch, string content)
    {
        var dir = Path.Combine(W.ImagesDir, "publish", "app-" + arch);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "app"), content);
        File.SetUnixFileMode(Path.Combine(dir, "app"), (UnixFileMode)Convert.ToInt32("755", 8));
    }

    private const string AppYaml = "name: app\nfrom: base\nfiles:\n  - source: publish/app-{arch}\n    target: /opt/app\n    mode: \"0755\"\n";

    private string ReadFromImage(string tag, string arch, string path)
    {
        var reader = new OciLayoutReader(OciLayout.Open(Path.Combine(W.Artifacts, "oci")));
        var resolved = reader.Resolve(tag, new Platform { Architecture = arch, Os = "linux" });
        // The image's own layer is the last one.
        using var layer = reader.OpenUncompressed(resolved.Manifest.Layers[^1]);
        using var tar = new TarReader(layer);
        while (tar.GetNextEntry() is { } e)
            if (e.Name.TrimStart('.', '/') == path.TrimStart('/') && e.DataStream != null)
                return new StreamReader(e.DataStream).ReadToEnd();
        throw new Xunit.Sdk.XunitException($"{path} not in {tag} ({arch})");
    }

    // Compared by content (hex), so an unchanged index.json/build.json compares equal.
    private string Artifacts() =>
        Convert.ToHexString(File.ReadAllBytes(Path.Combine(W.Artifacts, "oci", "index.json"))) + "/" +
        Convert.ToHexString(File.ReadAllBytes(Path.Combine(W.Artifacts, "build.json")));

    [Fact]
    public async Task PerArchPayload_EachArchitectureGetsItsOwnSource()
    {
        Publish("amd64", "x86-64 build");
        Publish("arm64", "aarch64 build");
        W.WriteImage("app", AppYaml);
        await W.LockAsync(false, "app");
        await W.BuildAsync(null, null, false, "app");
        Assert.Equal("x86-64 build", ReadFromImage("app", "amd64", "/opt/app/app"));
        Assert.Equal("aarch64 build", ReadFromImage("app", "arm64", "/opt/app/app"));

        // A new arm64 publish must rebuild (the layer key covers each architecture's source), and only arm64 changes.
        Publish("arm64", "aarch64 build 2");
        await W.BuildAsync(null, null, false, "app");
        Assert.Equal("x86-64 build", ReadFromImage("app", "amd64", "/opt/app/app"));
        Assert.Equal("aarch64 build 2", ReadFromImage("app", "arm64", "/opt/app/app"));
    }

    [Fact]
    public async Task PerArchPayload_MissingArchitectureOutput_IsAClearError()
    {
        Publish("amd64", "x86-64 build");
        W.WriteImage("app", AppYaml);
        // Lock does not need the build output (it is produced by the publish step, after lock --check).
        await W.LockAsync(false, "app");
        var before = Artifacts();
        var e = await Assert.ThrowsAsync<HardenException>(() => W.BuildAsync(null, null, false, "app"));
        Assert.StartsWith(Path.Combine(W.ImagesDir, "app.yaml") + ":4: files: source 'publish/app-{arch}' has no build output for arm64: 'publish/app-arm64' does not exist", e.Message);
        Assert.Contains("dotnet cake --target=Publish", e.Message);
        Assert.Equal(before, Artifacts());
    }

    [Fact]
    public async Task PerArchPayload_UnknownPlaceholder_IsRefusedOnLoad()
    {
        W.WriteImage("app", AppYaml.Replace("{arch}", "{platform}"));
        var e = await Assert.ThrowsAsync<HardenException>(() => W.LockAsync(false, "app"));
        Assert.Contains("app.yaml", e.Message);
        Assert.Contains("files: source 'publish/app-{platform}' has an unknown placeholder; the only one is {arch}", e.Message);
        W.WriteImage("app", AppYaml.Replace("{arch}", "{arch"));
        e = await Assert.ThrowsAsync<HardenException>(() => W.LockAsync(false, "app"));
        Assert.Contains("has an unknown placeholder", e.Message);
    }

    [Theory]
    [InlineData("../host/{arch}", "contains a '..' segment")]
    [InlineData("/work/publish/{arch}", "is an absolute path")]
    [InlineData("{arch}/../../etc", "contains a '..' segment")]
    public async Task PerArchPayload_PathEscape_IsRefusedOnLoad(string source, string reason)
    {
        // The placeholder opens no new hole: the resolved source obeys the same rules, checked before any build output exists.
        // Quoted: a YAML plain scalar cannot start with '{' (that is a flow mapping).
        W.WriteImage("app", AppYaml.Replace("publish/app-{arch}", "\"" + source + "\""));
        var before = Artifacts();
        var e = await Assert.ThrowsAsync<HardenException>(() => W.BuildAsync(null, null, false, "app"));
        Assert.StartsWith(Path.Combine(W.ImagesDir, "app.yaml") + ":4: files: source", e.Message);
        Assert.Contains(reason, e.Message);
        Assert.Equal(before, Artifacts());
    }

    [Fact]
    public async Task PerArchPayload_SymlinkedOutputDirectory_IsRefused()
    {
        // A publish directory that is a link to a host directory (CI secrets) is refused like any payload symlink.
        var host = Path.Combine(W.Combine("host"), "secrets");
        Directory.CreateDirectory(host);
        File.WriteAllText(Path.Combine(host, "app"), "host secret");
        Publish("amd64", "x86-64 build");
        Directory.CreateDirectory(Path.Combine(W.ImagesDir, "publish"));
        Directory.CreateSymbolicLink(Path.Combine(W.ImagesDir, "publish", "app-arm64"), host);
        W.WriteImage("app", AppYaml);
        await W.LockAsync(false, "app");
        var before = Artifacts();
        var e = await Assert.ThrowsAsync<HardenException>(() => W.BuildAsync(null, null, false, "app"));
        Assert.Contains("files: source 'publish/app-arm64' has 'publish/app-arm64', which is a symlink", e.Message);
        Assert.DoesNotContain("host secret", e.Message);
        Assert.Equal(before, Artifacts());
        // Dangling: still the same refusal, not "no build output".
        Directory.Delete(host, recursive: true);
        e = await Assert.ThrowsAsync<HardenException>(() => W.BuildAsync(null, null, false, "app"));
        Assert.Contains("which is a symlink", e.Message);
    }
}
