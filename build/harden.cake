// Runs the compiled `harden` CLI. Compiling once and running the dll keeps each stage's start-up short.
// A Release build also writes a ReadyToRun copy (bin/Release/net10.0/r2r, see HardenImage.Cli.csproj): the same
// code with less JIT at each start. It runs only when its built-from.sha256 names the plain build beside it
// (timestamps can lie: a restored or clock-skewed r2r/ must never run instead of the checkout's code).
static string _hardenDll;
string HardenDll()
{
    if (_hardenDll != null) return _hardenDll;
    var dir = $"src/HardenImage.Cli/bin/{Options.Configuration}/net10.0";
    var stamp = $"{dir}/r2r/built-from.sha256";
    var lines = System.IO.File.Exists(stamp) ? System.IO.File.ReadAllLines(stamp).Where(l => l.Trim().Length > 0).ToList() : new List<string>();
    bool Matches(string line)
    {
        var parts = line.Split("  ", 2);
        var file = $"{dir}/{parts.ElementAtOrDefault(1)}";
        if (parts.Length != 2 || !System.IO.File.Exists(file)) return false;
        using var stream = System.IO.File.OpenRead(file);
        return string.Equals(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(stream)), parts[0], StringComparison.OrdinalIgnoreCase);
    }
    var readyToRun = lines.Count == 2 && lines.All(Matches);
    _hardenDll = readyToRun ? $"{dir}/r2r/harden.dll" : $"{dir}/harden.dll";
    Information($"harden CLI: {_hardenDll} ({(readyToRun ? "ReadyToRun, stamped for this build" : "JIT")})");
    return _hardenDll;
}

void Harden(string arguments, bool selectImages = true, string failureHint = null)
{
    var images = !selectImages || string.IsNullOrEmpty(Options.Images) ? "" : string.Join(" ", Options.Images.Split(',').Select(i => "--image " + i.Trim()));
    var args = $"\"{HardenDll()}\" {arguments} {images}".Trim();
    Information($"harden {arguments} {images}");
    var exit = StartProcess("dotnet", new ProcessSettings { Arguments = args });
    if (exit != 0) throw new CakeException(exit, $"harden {arguments} failed with exit code {exit} (docs/cli.md: exit codes){(failureHint != null ? ": " + failureHint : "")}");
}

// Loopback registries (localhost, 127.0.0.0/8, [::1]) speak plain HTTP without a flag (harden decides, one grammar:
// Registry/ImageReference.cs); any other plain-HTTP registry needs --insecure=true, said explicitly.
string Insecure() => Options.Insecure ? " --insecure" : "";

// Release fails before any work when its registry or key cannot be right.
void ValidateRelease()
{
    var registry = Options.Registry.Trim();
    var host = registry.Split("://").Last().Split('/')[0];
    if (registry.StartsWith("oci:") || registry.Length == 0)
        throw new CakeException("Release needs --registry=HOST/NAMESPACE (or ACCOUNT.dkr.ecr.REGION.amazonaws.com/NS); the default oci:artifacts/registry is a directory");
    if (registry.Any(char.IsWhiteSpace) || !(host.Contains('.') || host.Contains(':') || host == "localhost")
        || !System.Text.RegularExpressions.Regex.IsMatch(host, @"^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$"))
        throw new CakeException($"--registry={registry}: '{host}' is not a registry host; expected HOST[:port]/NAMESPACE, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml");
    var key = Options.Key;
    if (key == "artifacts/keys/cosign.key")
    {
        // Allowed (a lab registry), but said: signatures made with it prove nothing outside this machine.
        Warning("Release without --key signs with the generated DEVELOPMENT key artifacts/keys/cosign.key; pass --key=cosign.key or --key=awskms:///alias/NAME for a real release");
        return;
    }
    if (key.StartsWith("awskms://") && !System.Text.RegularExpressions.Regex.IsMatch(key, @"^awskms://[^/]*/.+"))
        throw new CakeException($"--key={key}: expected awskms:///KEY-ID, awskms:///alias/NAME or awskms:///arn:aws:kms:...");
    if (!key.StartsWith("awskms://") && !System.IO.File.Exists(key))
        throw new CakeException($"--key={key}: no such key file (a cosign.key, a PEM private key, or awskms:///alias/NAME)");
    if (!key.StartsWith("awskms://") && !System.IO.File.Exists(PublicKey()))
        throw new CakeException($"--key={key}: verify and deploy need its public key beside it at {PublicKey()}");
    Information($"release to {registry} signed with {key}");
}

string KeyOption() => Options.Key == "artifacts/keys/cosign.key" ? "" : $" --key {Options.Key}";

string PublicKey() => Options.Key.EndsWith(".key") ? System.IO.Path.ChangeExtension(Options.Key, ".pub") : Options.Key;

// Every pushed image as a reference harden verify understands, read from artifacts/pushed.json.
IEnumerable<string> PushedReferences(string only = null)
{
    var path = System.IO.Path.Combine(Options.Artifacts, "pushed.json");
    using var doc = System.Text.Json.JsonDocument.Parse(System.IO.File.ReadAllText(path));
    // harden writes each image's reference in its one grammar (ImageReference): no parsing here.
    foreach (var image in doc.RootElement.GetProperty("images").EnumerateObject().Where(i => only == null || i.Name == only))
    {
        if (!image.Value.TryGetProperty("reference", out var reference))
            throw new CakeException($"{path}: image '{image.Name}' has no reference (written by an older harden); run the Push stage again");
        yield return reference.GetString();
    }
}

// Manifests name a registry the cluster can pull from: the pushed one, or --deploy-registry for the local layout.
string DeployRegistry() => Options.Registry.StartsWith("oci:") ? $" --registry {Options.DeployRegistry}" : "";

// --- Models (docs/model.md): the smoke's tiny model as a signed ModelPack artifact, pinned later by Deploy. ---
string TestModel => "tiny-lm";

// The tiny model `harden smoke` made (it keeps a copy there); absent when no model-serving image was smoked.
string SmokeModelDir() => System.IO.Path.Combine(Options.Artifacts, "models", "smoke-model");

// Every pushed model as a reference harden verify understands, from artifacts/models.json (written by harden).
IEnumerable<string> ModelReferences()
{
    var path = System.IO.Path.Combine(Options.Artifacts, "models.json");
    using var doc = System.Text.Json.JsonDocument.Parse(System.IO.File.ReadAllText(path));
    foreach (var model in doc.RootElement.GetProperty("models").EnumerateObject())
        yield return model.Value.GetProperty("reference").GetString();
}

Task("Model")
    .Description("Pack, push, sign and verify the smoke's tiny model as a ModelPack artifact with its ML-BOM (docs/model.md)")
    .IsDependentOn("Push")
    .IsDependeeOf("Deploy")
    .Does(() =>
    {
        if (!System.IO.Directory.Exists(SmokeModelDir()))
        {
            Warning($"Model: skipped, the smoke made no model ({SmokeModelDir()} is absent: no model-serving image was smoked)");
            return;
        }
        Harden($"model pack {SmokeModelDir()} --name {TestModel} --version 1 --card models/{TestModel}.card.yaml --artifacts {Options.Artifacts}", selectImages: false);
        Harden($"model push --registry {Options.Registry} --artifacts {Options.Artifacts}{Insecure()}", selectImages: false);
        Harden($"model sign --artifacts {Options.Artifacts}{KeyOption()}{Insecure()}", selectImages: false);
        foreach (var reference in ModelReferences())
            Harden($"verify {reference} --key {PublicKey()} --require sbom{Insecure()}", selectImages: false);
    });
