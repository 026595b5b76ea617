namespace HardenImage.Tests.Infrastructure;

/// <summary>Finds the repository root (where HardenImage.sln is) from the test binary's directory.</summary>
public static class RepoRoot
{
    public static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "HardenImage.sln"))) return dir.FullName;
        throw new InvalidOperationException("HardenImage.sln not found above " + AppContext.BaseDirectory);
    }
}
