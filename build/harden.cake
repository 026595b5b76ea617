// Runs the compiled `harden` CLI. Compiling once and running the dll keeps each stage's start-up short.
string HardenDll() => $"src/HardenImage.Cli/bin/{Options.Configuration}/net10.0/harden.dll";

void Harden(string arguments)
{
    var images = string.IsNullOrEmpty(Options.Images) ? "" : string.Join(" ", Options.Images.Split(',').Select(i => "--image " + i.Trim()));
    var args = $"\"{HardenDll()}\" {arguments} {images}".Trim();
    Information($"harden {arguments} {images}");
    var exit = StartProcess("dotnet", new ProcessSettings { Arguments = args });
    if (exit != 0) throw new CakeException(exit, $"harden {arguments} failed with exit code {exit}");
}
