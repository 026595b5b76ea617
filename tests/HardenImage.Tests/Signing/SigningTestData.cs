using System.Security.Cryptography;
using System.Text.Json;
using HardenImage.Signing;

namespace HardenImage.Tests.Signing;

/// <summary>Paths into TestData/Signing and small helpers shared by the signing tests.</summary>
internal static class SigningTestData
{
    public static string Path(params string[] parts) =>
        System.IO.Path.Combine([AppContext.BaseDirectory, "TestData", "Signing", .. parts]);

    public static string Text(params string[] parts) => File.ReadAllText(Path(parts));

    public static string KeyDir(string origin) => origin switch
    {
        "zarf" => Path("cosign-keys", "zarf", "src", "pkg", "signing", "testdata"),
        "policy-controller" => Path("cosign-keys", "policy-controller", "examples", "keys"),
        "sigstore-rs" => Path("cosign-keys", "sigstore-rs", "tests", "data", "keys"),
        "sigstore-rs-example" => Path("cosign-keys", "sigstore-rs", "examples", "key_interface", "key_pair_import"),
        _ => throw new ArgumentException(origin),
    };

    public static string Fixtures(params string[] parts) =>
        Path(["cosign-signature", "containers-image", "signature", "fixtures", .. parts]);

    /// <summary>
    /// A containers/image "sigstore-json" signature file: "\0sigstore-json\n" + {"mimeType","payload","annotations"}.
    /// Returns the payload bytes and the base64 DER signature annotation.
    /// </summary>
    public static (byte[] Payload, string SignatureBase64) ReadContainersImageSignature(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var prefix = "\0sigstore-json\n"u8;
        Assert.True(bytes.AsSpan().StartsWith(prefix), $"{path} is not a sigstore-json signature file");
        using var doc = JsonDocument.Parse(bytes.AsMemory(prefix.Length));
        var payload = Convert.FromBase64String(doc.RootElement.GetProperty("payload").GetString()!);
        var sig = doc.RootElement.GetProperty("annotations").GetProperty(CosignSignatureManifest.SignatureAnnotation).GetString()!;
        return (payload, sig);
    }

    public static KeyPasswordSource Passwords(string? password) =>
        new(name => name == KeyPasswordSource.HardenVariable ? password : null, console: null, interactive: false);

    public static ECDsa NewKey() => ECDsa.Create(ECCurve.NamedCurves.nistP256);
}
