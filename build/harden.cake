// Runs the compiled `harden` CLI. Compiling once and running the dll keeps each stage's start-up short.
string HardenDll() => $"src/HardenImage.Cli/bin/{Options.Configuration}/net10.0/harden.dll";

void Harden(string arguments, bool selectImages = true)
{
    var images = !selectImages || string.IsNullOrEmpty(Options.Images) ? "" : string.Join(" ", Options.Images.Split(',').Select(i => "--image " + i.Trim()));
    var args = $"\"{HardenDll()}\" {arguments} {images}".Trim();
    Information($"harden {arguments} {images}");
    var exit = StartProcess("dotnet", new ProcessSettings { Arguments = args });
    if (exit != 0) throw new CakeException(exit, $"harden {arguments} failed with exit code {exit}");
}

// A loopback registry (127.0.0.1 / localhost) is reached over plain HTTP.
string Insecure() =>
    Options.Registry.StartsWith("127.0.0.1") || Options.Registry.StartsWith("localhost") ? " --insecure" : "";

string KeyOption() => Options.Key == "artifacts/keys/cosign.key" ? "" : $" --key {Options.Key}";

string PublicKey() => Options.Key.EndsWith(".key") ? System.IO.Path.ChangeExtension(Options.Key, ".pub") : Options.Key;

// Every pushed image as a reference harden verify understands, read from artifacts/pushed.json.
IEnumerable<string> PushedReferences()
{
    var path = System.IO.Path.Combine(Options.Artifacts, "pushed.json");
    using var doc = System.Text.Json.JsonDocument.Parse(System.IO.File.ReadAllText(path));
    var registry = doc.RootElement.GetProperty("registry").GetString();
    var prefix = registry.StartsWith("oci:") ? registry : registry.Split('/')[0];
    foreach (var image in doc.RootElement.GetProperty("images").EnumerateObject())
    {
        var repository = image.Value.GetProperty("repository").GetString();
        var index = image.Value.GetProperty("index").GetString();
        yield return $"{prefix}/{repository}@{index}";
    }
}

// Manifests name a registry the cluster can pull from: the pushed one, or --deploy-registry for the local layout.
string DeployRegistry() => Options.Registry.StartsWith("oci:") ? $" --registry {Options.DeployRegistry}" : "";
