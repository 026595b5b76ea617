using System.Text.Json.Nodes;
using HardenImage.Contracts;
using HardenImage.Build;
using HardenImage.Signing;

namespace HardenImage.Tests.Signing;

/// <summary>
/// The SLSA provenance harden sign attests for an image (threat R): every .deb of the image and of the images it is
/// built FROM (once per image, however many architectures lock it), and nothing of an unrelated image of the lock.
/// </summary>
public sealed class ProvenanceTests
{
    private static LockedPackage Deb(string name, string arch, char hash) => new()
    {
        Name = name, Version = "1.0-1", Architecture = arch, Source = name, SourceVersion = "1.0-1",
        Url = $"http://deb.debian.org/debian/pool/main/{name}_{arch}.deb", Sha256 = new string(hash, 64), Size = 100, Origin = "debian/trixie",
    };

    private static LockedImage Image(string name, string? from, params LockedPackage[] packages) => new()
    {
        Name = name, From = from, InputsSha256 = new string('0', 64),
        // arm64 locks the same files: an Architecture: all .deb is one dependency of the image, not two.
        Architectures = [new LockedArchitecture { Architecture = "amd64", Packages = [.. packages] }, new LockedArchitecture { Architecture = "arm64", Packages = [.. packages] }],
    };

    [Fact]
    public void ResolvedDependencies_TheImageAndItsParents_OncePerImage_NotOtherImages()
    {
        var libc = Deb("libc6", "amd64", 'a');
        var lockFile = new LockFile
        {
            Images =
            [
                Image("base", null, libc),
                Image("python", "base", Deb("python3", "amd64", 'b'), libc), // libc6 again: each image's own list names it
                Image("unrelated", null, Deb("nginx", "amd64", 'c')),
            ],
        };
        var predicate = Provenance.ForImage("python", "registry.example/ns", "ns/python", lockFile);
        var build = predicate["buildDefinition"]!;
        Assert.Equal(Provenance.BuildType, build["buildType"]!.GetValue<string>());
        Assert.Equal("python", build["externalParameters"]!["image"]!.GetValue<string>());
        Assert.Equal("ns/python", build["externalParameters"]!["repository"]!.GetValue<string>());
        var deps = build["resolvedDependencies"]!.AsArray().Select(d => d!["name"]!.GetValue<string>()).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["libc6@1.0-1?arch=amd64", "libc6@1.0-1?arch=amd64", "python3@1.0-1?arch=amd64"], deps);
    }

    [Fact]
    public void WithoutALock_NoResolvedDependencies()
    {
        var predicate = Provenance.ForImage("base", "oci:artifacts/registry", "base", null);
        Assert.Empty(predicate["buildDefinition"]!["resolvedDependencies"]!.AsArray());
    }
}
