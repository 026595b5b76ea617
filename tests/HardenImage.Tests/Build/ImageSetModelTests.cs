using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Lock;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>images/*.yaml errors name the file, the line and the fix.</summary>
public sealed class ImageSetModelTests : IDisposable
{
    private readonly TempDir _dir = new("hi-model");

    public ImageSetModelTests()
    {
        Directory.CreateDirectory(_dir.Combine("keys"));
        File.WriteAllBytes(_dir.Combine("keys", "k.gpg"), [1]);
        File.WriteAllText(_dir.Combine("sources.yaml"), """
            sources:
              debian:
                url: http://127.0.0.1:1/debian
                suites: [trixie]
                architectures: [amd64, arm64]
                keyring: keys/k.gpg
            """);
    }

    public void Dispose() => _dir.Dispose();

    private void Image(string name, string yaml) => File.WriteAllText(_dir.Combine(name + ".yaml"), yaml);

    private HardenException LoadFails() => Assert.Throws<HardenException>(() => ImageSet.Load(_dir.Path));

    [Fact]
    public void Load_ReadsEveryFieldAndInheritsFromParent()
    {
        Image("base", "name: base\nversion: \"13\"\nsources: [debian]\narchitectures: [amd64, arm64]\npackages: [libc6]\nexclude: [debconf]\nworkdir: /home/nonroot\n");
        Image("python", "name: python\nfrom: base\npackages: [python3.13-minimal]\nentrypoint: [/usr/bin/python3]\nenv: {A: b}\nsymlinks: {/usr/bin/python3: python3.13}\nsmoke:\n  - name: runs\n    command: [\"-c\", \"print(1)\"]\n    outputContains: \"1\"\n");
        var set = ImageSet.Load(_dir.Path);
        Assert.Equal(["base", "python"], set.InBuildOrder().Select(i => i.Name));
        var py = ImageSet.Effective(set, set.Images["python"]);
        Assert.Equal(["debian"], py.Sources);
        Assert.Equal(["amd64", "arm64"], py.Architectures);
        Assert.Equal("65532:65532", py.User);
        Assert.Equal("python3.13", py.Symlinks["/usr/bin/python3"]);
        Assert.Equal("1", py.Smoke[0].OutputContains);
        Assert.NotEqual(set.InputsSha256(set.Images["base"]), set.InputsSha256(set.Images["python"]));
    }

    [Fact]
    public void UnknownField_NamesFileLineAndSuggestion()
    {
        Image("base", "name: base\nsources: [debian]\narchitectures: [amd64]\npackges: [libc6]\n");
        var e = LoadFails();
        Assert.Contains("base.yaml:4", e.Message);
        Assert.Contains("unknown field 'packges'", e.Message);
        Assert.Contains("did you mean packages", e.Message);
    }

    [Fact]
    public void MissingParent_IsAnErrorListingKnownImages()
    {
        Image("child", "name: child\nfrom: bsae\npackages: [x]\n");
        Image("base", "name: base\nsources: [debian]\narchitectures: [amd64]\n");
        var e = LoadFails();
        Assert.Contains("child.yaml", e.Message);
        Assert.Contains("'bsae' is not an image", e.Message);
        Assert.Contains("did you mean base", e.Message);
    }

    [Fact]
    public void ParentCycle_IsAnError()
    {
        Image("a", "name: a\nfrom: b\n");
        Image("b", "name: b\nfrom: a\n");
        Assert.Contains("cycle", LoadFails().Message);
    }

    [Theory]
    [InlineData("packages: [python3]\nprovides: [\"python3 (= 3.13.5-1)\"]\n")]
    [InlineData("exclude: [python3]\nprovides: [python3]\n")]
    public void ProvidedAndInstalledOrExcluded_IsAnError(string fields)
    {
        Image("base", "name: base\nsources: [debian]\narchitectures: [amd64]\n" + fields);
        var e = LoadFails();
        Assert.Contains("base.yaml", e.Message);
        Assert.Contains("python3 is in provides: and also in packages: or exclude:", e.Message);
    }

    [Theory]
    [InlineData("python3 (>= 3.13)")]
    [InlineData("python3 | python3.13")]
    [InlineData("python3:any")]
    [InlineData("python3 [amd64]")]
    public void ProvidesEntry_NotInProvidesSyntax_IsAnErrorNamingTheLine(string entry)
    {
        Image("base", $"name: base\nsources: [debian]\narchitectures: [amd64]\nprovides: [\"{entry}\"]\n");
        var e = LoadFails();
        Assert.Contains("base.yaml:", e.Message);
        Assert.Contains($"provides: '{entry}'", e.Message);
    }

    [Fact]
    public void RequestedAndExcluded_IsAnError()
    {
        Image("base", "name: base\nsources: [debian]\narchitectures: [amd64]\npackages: [debconf]\nexclude: [debconf]\n");
        Assert.Contains("both in packages: and in exclude:", LoadFails().Message);
    }

    [Fact]
    public void UnknownSource_AndUnsupportedArchitecture_AreErrors()
    {
        Image("base", "name: base\nsources: [debain]\narchitectures: [amd64]\n");
        Assert.Contains("did you mean debian", LoadFails().Message);
        Image("base", "name: base\nsources: [debian]\narchitectures: [riscv64]\n");
        Assert.Contains("'riscv64' is not supported", LoadFails().Message);
    }

    [Fact]
    public void RootUser_IsRefused()
    {
        Image("base", "name: base\nsources: [debian]\narchitectures: [amd64]\nuser: root\n");
        Assert.Contains("root is refused", LoadFails().Message);
    }

    [Fact]
    public void MissingKeyring_NamesTheSource()
    {
        File.Delete(_dir.Combine("keys", "k.gpg"));
        Image("base", "name: base\nsources: [debian]\narchitectures: [amd64]\n");
        var e = LoadFails();
        Assert.Contains("source 'debian' keyring", e.Message);
    }

    [Fact]
    public void NameMustMatchFile()
    {
        Image("base", "name: bass\nsources: [debian]\narchitectures: [amd64]\n");
        Assert.Contains("name the file bass.yaml", LoadFails().Message);
    }

    [Fact]
    public void InvalidYaml_NamesTheLine()
    {
        Image("base", "name: base\nsources: [debian\n");
        Assert.Contains("not valid YAML", LoadFails().Message);
    }

    [Fact]
    public void ShippedImageSet_Loads()
    {
        var root = RepoRoot.Find();
        var set = ImageSet.Load(Path.Combine(root, "images"));
        Assert.Contains("base", set.Images.Keys);
        Assert.Equal(["amd64", "arm64"], set.Images["base"].Architectures);
    }
}
