using HardenImage.Cli.Commands;
using HardenImage.Common;
using HardenImage.Signing;
using HardenImage.Tests.Infrastructure;
using Spectre.Console.Cli;

namespace HardenImage.Tests.Signing;

public class KeygenCommandTests
{
    private static int RunHarden(params string[] args)
    {
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.PropagateExceptions();
            c.AddSigningCommands();
        });
        return app.Run(args);
    }

    [Fact]
    public void Keygen_WritesCosignKeyPair_AndRefusesToOverwrite()
    {
        using var dir = new TempDir();
        Environment.SetEnvironmentVariable(KeyPasswordSource.HardenVariable, "keygen-test");
        try
        {
            Assert.Equal(0, RunHarden("keygen", "--output-dir", dir.Path));
            var keyPath = dir.Combine("cosign.key");
            var pubPath = dir.Combine("cosign.pub");
            using var key = PemKeys.LoadPrivateKey(File.ReadAllText(keyPath), () => "keygen-test", keyPath);
            using var pub = PemKeys.ReadPublicKey(File.ReadAllText(pubPath), pubPath);
            Assert.Equal(pub.ExportSubjectPublicKeyInfo(), key.ExportSubjectPublicKeyInfo());
            if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyPath));

            var before = File.ReadAllText(keyPath);
            var e = Assert.Throws<HardenException>(() => RunHarden("keygen", "--output-dir", dir.Path));
            Assert.Contains("--force", e.Message);
            Assert.Equal(before, File.ReadAllText(keyPath));

            Assert.Equal(0, RunHarden("keygen", "--output-dir", dir.Path, "--force"));
            Assert.NotEqual(before, File.ReadAllText(keyPath));
        }
        finally
        {
            Environment.SetEnvironmentVariable(KeyPasswordSource.HardenVariable, null);
        }
    }
}
