using HardenImage.Build;
using HardenImage.Lock;
using HardenImage.Python;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Python;

/// <summary>
/// An image set with one image ("app") whose python: block names two loopback indexes: "private" (Basic auth from
/// the environment variables HI_PRIVATE_USER/HI_PRIVATE_TOKEN, serving only hiext) and "public" (everything else).
/// The standard wheels: certifi 2023.5.7 (pure, a console script and a #!python script; a real PyPI advisory names
/// it) and hiext 1.0 (a compiled extension per architecture, manylinux_2_17, plus a musllinux build never chosen).
/// Python locking needs no apt repository: the glibc per architecture is given, as the apt lock's libc6 would.
/// </summary>
public sealed class PythonImageSet : IDisposable
{
    private readonly TempDir _dir = new("hi-python");
    public const string PrivateUser = "ci-bot", PrivateToken = "s3cret-token-never-logged";

    public PythonImageSet()
    {
        Private.RequiredCredentials = $"{PrivateUser}:{PrivateToken}";
        ImagesDir = _dir.Combine("images");
        Directory.CreateDirectory(Path.Combine(ImagesDir, "python"));
        Directory.CreateDirectory(Path.Combine(ImagesDir, "keys"));
        File.WriteAllText(Path.Combine(ImagesDir, "keys", "none.gpg"), "unused: python locking reads no apt source");
        File.WriteAllText(Path.Combine(ImagesDir, "sources.yaml"), """
            sources:
              fixture:
                url: http://127.0.0.1:9/unused
                suites: [stable]
                architectures: [amd64, arm64]
                keyring: keys/none.gpg
            """);
        Certifi = new WheelBuilder("certifi", "2023.5.7")
            .File("certifi/__init__.py", "from .core import where\n__version__ = '2023.05.07'\n")
            .File("certifi/core.py", "def where():\n    return '/etc/ssl/certs/ca-certificates.crt'\n")
            .File("certifi/cli.py", "from .core import where\ndef main():\n    print(where())\n")
            .File("certifi-2023.5.7.data/scripts/hi-where", "#!python\nimport certifi\nprint(certifi.where())\n", exec: true)
            .File("certifi-2023.5.7.data/scripts/hi-where3", "#!python3 -I\nprint('isolated')\n", exec: true)
            .ConsoleScript("certifi-where", "certifi.cli:main");
        foreach (var (arch, machine) in new[] { ("amd64", "x86_64"), ("arm64", "aarch64") })
            HiExt[arch] = new WheelBuilder("hiext", "1.0", $"cp313-cp313-manylinux_2_17_{machine}.manylinux2014_{machine}")
                .File("hiext/__init__.py", "from ._native import answer\n")
                .File($"hiext/_native.cpython-313-{machine}-linux-gnu.so", "\u007fELF fake extension for " + machine, exec: true);
        HiExtMusl = new WheelBuilder("hiext", "1.0", "cp313-cp313-musllinux_1_2_x86_64").File("hiext/__init__.py", "musl\n");
        Public.Add("certifi", Certifi);
        Private.Add("hiext", HiExt["amd64"]).Add("hiext", HiExt["arm64"]).Add("hiext", HiExtMusl);
    }

    public PythonIndexServer Public { get; } = new();
    public PythonIndexServer Private { get; } = new();
    public WheelBuilder Certifi { get; }
    public Dictionary<string, WheelBuilder> HiExt { get; } = new();
    public WheelBuilder HiExtMusl { get; }
    public string ImagesDir { get; }
    public string Cache => _dir.Combine("cache");
    public string PylockPath => Path.Combine(ImagesDir, "python", "pylock.app.toml");
    public string RequirementsPath => Path.Combine(ImagesDir, "python", "requirements.txt");

    public static string Requirement(string name, string version, params WheelBuilder[] wheels) =>
        $"{name}=={version} \\\n" + string.Join(" \\\n", wheels.Select(w => $"    --hash=sha256:{WheelBuilder.Sha256(w.Build())}")) + "\n";

    public string StandardRequirements =>
        Requirement("certifi", "2023.5.7", Certifi) + Requirement("hiext", "1.0", HiExt["amd64"], HiExt["arm64"], HiExtMusl);

    /// <summary>Writes app.yaml (architectures amd64+arm64) and the requirements; returns the loaded set.</summary>
    public ImageSet Write(string requirements, string? indexesYaml = null, string extra = "")
    {
        File.WriteAllText(RequirementsPath, requirements);
        File.WriteAllText(Path.Combine(ImagesDir, "app.yaml"), $"""
            name: app
            sources: [fixture]
            architectures: [amd64, arm64]
            {extra}
            python:
              requirements: python/requirements.txt
              lock: python/pylock.app.toml
              indexes:
            {indexesYaml ?? DefaultIndexes}
            """);
        return ImageSet.Load(ImagesDir);
    }

    public string DefaultIndexes => $"""
                - name: private
                  url: {Private.SimpleUrl}
                  packages: [hiext]
                  usernameEnv: HI_PRIVATE_USER
                  passwordEnv: HI_PRIVATE_TOKEN
                - name: public
                  url: {Public.SimpleUrl}
                  packages: ["*"]
            """;

    public static string? Environment(string name) => name switch
    {
        "HI_PRIVATE_USER" => PrivateUser,
        "HI_PRIVATE_TOKEN" => PrivateToken,
        _ => null,
    };

    public async Task<PythonLockReport> LockAsync(ImageSet set, (int, int)? glibc = null)
    {
        using var http = new HttpClient();
        var locker = new PythonLocker(new SimpleIndexClient(http, Environment), http, new WheelCache(Cache));
        var g = glibc ?? (2, 41);
        return await locker.LockAsync(set, set.Images["app"], new Dictionary<string, (int, int)?> { ["amd64"] = g, ["arm64"] = g }, CancellationToken.None);
    }

    public void Dispose()
    {
        Public.Dispose();
        Private.Dispose();
        _dir.Dispose();
    }
}
