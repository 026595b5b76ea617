using System.Diagnostics;
using System.Globalization;

namespace HardenImage.Bench;

/// <summary>One finished command: wall seconds, user+sys CPU seconds and peak RSS, as GNU time reports them.</summary>
public sealed record Sample(double Wall, double User, double Sys, double PeakRssMb)
{
    public double Cpu => User + Sys;

    /// <summary>Several commands run one after another (cold harden = lock then build): times add, peak is the max.</summary>
    public static Sample Sequence(params Sample[] parts) =>
        new(parts.Sum(p => p.Wall), parts.Sum(p => p.User), parts.Sum(p => p.Sys), parts.Max(p => p.PeakRssMb));

    public static Sample Median(IReadOnlyList<Sample> runs) =>
        new(MedianOf(runs.Select(r => r.Wall)), MedianOf(runs.Select(r => r.User)), MedianOf(runs.Select(r => r.Sys)),
            MedianOf(runs.Select(r => r.PeakRssMb)));

    public static double MedianOf(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        if (v.Length == 0) return double.NaN;
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }
}

/// <summary>
/// Runs commands under /usr/bin/time so both tools are measured the same way from outside (wall, user, sys,
/// max RSS of the process or its largest waited-for child). Output goes to a log file, not the console.
/// </summary>
public sealed class Measure(string logPath)
{
    public const string GnuTime = "/usr/bin/time";

    /// <summary>A bench's scratch directory, emptied, with the command log <c>bench.log</c> in it.</summary>
    public static Measure InFreshWorkDir(string work)
    {
        if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        Directory.CreateDirectory(work);
        return new Measure(Path.Combine(work, "bench.log"));
    }

    public string LogPath => logPath;

    /// <summary>The line every bench prints first: where its files are and how busy the machine is.</summary>
    public string Banner(string work) =>
        $"work dir {work}; log {logPath}; load average before: {LoadAverage()}; cores: {Environment.ProcessorCount}";

    public static void RequireTool(string path, string install)
    {
        if (!File.Exists(path)) throw new InvalidOperationException($"{path} is missing: {install}");
    }

    /// <summary>Runs the command under GNU time; throws with the log's tail when it fails.</summary>
    public Sample Timed(string file, IEnumerable<string> args, IDictionary<string, string>? env = null, string? workDir = null)
    {
        var timeFile = Path.GetTempFileName();
        try
        {
            var all = new List<string> { "-f", "%e %U %S %M", "-o", timeFile, "--", file };
            all.AddRange(args);
            Run(GnuTime, all, env, workDir);
            var f = File.ReadAllText(timeFile).Trim().Split('\n')[^1].Split(' ');
            double D(int i) => double.Parse(f[i], CultureInfo.InvariantCulture);
            return new Sample(D(0), D(1), D(2), D(3) / 1024.0);
        }
        finally { File.Delete(timeFile); }
    }

    /// <summary>Standard error of the last command (HARDEN_TIMINGS=1 spans are read from it).</summary>
    public string LastStderr { get; private set; } = "";

    /// <summary>Runs a command to completion (untimed); output appended to the log; returns stdout.</summary>
    public string Run(string file, IEnumerable<string> args, IDictionary<string, string>? env = null, string? workDir = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin != null,
            WorkingDirectory = workDir ?? Environment.CurrentDirectory, UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["COLUMNS"] = "160";
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (stdin != null) { p.StandardInput.Write(stdin); p.StandardInput.Close(); }
        p.WaitForExit();
        var line = $"$ {file} {string.Join(' ', psi.ArgumentList.Select(a => a.Length > 200 ? a[..200] + "…" : a))}\n";
        File.AppendAllText(logPath, line + so.Result + se.Result + $"[exit {p.ExitCode}]\n");
        LastStderr = se.Result;
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{line.Trim()} failed with exit {p.ExitCode}:\n{Tail(so.Result + se.Result, 2500)}\n(full log: {logPath})");
        return so.Result;
    }

    public static string Tail(string s, int n) => s.Length <= n ? s : "…" + s[^n..];

    public static string LoadAverage() => File.ReadAllText("/proc/loadavg").Trim();

    public static string Ratio(double mine, double peer) => peer > 0 ? (mine / peer).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "-";

    public static string Verdict(bool ok) => ok ? "OK" : "MISSED";

    /// <summary>Walks up from the current directory to the checkout holding HardenImage.sln.</summary>
    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(Environment.CurrentDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "HardenImage.sln"))) return d.FullName;
        throw new InvalidOperationException("Run from inside the HardenImage checkout (no HardenImage.sln above the current directory).");
    }

    /// <summary>
    /// The Release CLI as `dotnet cake` runs it: the ReadyToRun copy a Release build writes (bin/Release/net10.0/r2r)
    /// when its built-from.sha256 names the plain build beside it, else the JIT one; built once if missing (never
    /// during a timed run).
    /// </summary>
    public string HardenDll(string repo)
    {
        var dir = Path.Combine(repo, "src/HardenImage.Cli/bin/Release/net10.0");
        if (!File.Exists(Path.Combine(dir, "harden.dll"))) Run("dotnet", ["build", "-c", "Release", Path.Combine(repo, "src/HardenImage.Cli")]);
        var stamp = Path.Combine(dir, "r2r", "built-from.sha256");
        var lines = File.Exists(stamp) ? File.ReadAllLines(stamp).Where(l => l.Trim().Length > 0).ToList() : [];
        var fresh = lines.Count == 2 && lines.All(line =>
        {
            var parts = line.Split("  ", 2);
            var file = parts.Length == 2 ? Path.Combine(dir, parts[1]) : "";
            return parts.Length == 2 && File.Exists(file)
                   && string.Equals(HardenImage.Common.Sha256Hex.OfFile(file), parts[0], StringComparison.OrdinalIgnoreCase);
        });
        var dll = Path.Combine(fresh ? Path.Combine(dir, "r2r") : dir, "harden.dll");
        Console.WriteLine($"harden CLI: {dll} ({(fresh ? "ReadyToRun, stamped for this build" : "JIT only")})");
        return dll;
    }
}
