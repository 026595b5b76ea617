namespace HardenImage.Build;

/// <summary>Git facts for the index annotations; absent outside a work tree.</summary>
public static class Git
{
    public static string? Revision(string dir) => Run(dir, "rev-parse", "HEAD");
    public static string? RemoteUrl(string dir) => Run(dir, "config", "--get", "remote.origin.url");

    private static string? Run(string dir, params string[] args)
    {
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = System.Diagnostics.Process.Start(psi)!;
            var o = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return p.ExitCode == 0 && o.Length > 0 ? o : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }
}
