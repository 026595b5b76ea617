using System.Diagnostics;
using HardenImage.Common;

namespace HardenImage.Deploy;

/// <summary>
/// What a probe saw inside a running container: identity, privileges, root filesystem and setuid files.
/// Parsed from the key=value lines both probes (static C binary, Python script) print.
/// </summary>
public sealed record ProbeReport(int? Uid, int? Gid, string? NoNewPrivs, string? CapEff, string? RootFs, IReadOnlyList<string> SetuidFiles)
{
    public static ProbeReport Parse(string output)
    {
        int? uid = null, gid = null;
        string? nnp = null, cap = null, rootfs = null;
        var setuid = new List<string>();
        foreach (var raw in output.Split('\n'))
        {
            var line = raw.Trim();
            var eq = line.IndexOf('=');
            if (eq <= 0) continue;
            var (key, value) = (line[..eq], line[(eq + 1)..]);
            switch (key)
            {
                case "uid": uid = int.TryParse(value, out var u) ? u : null; break;
                case "gid": gid = int.TryParse(value, out var g) ? g : null; break;
                case "nonewprivs": nnp = value; break;
                case "capeff": cap = value; break;
                case "rootfs": rootfs = value; break;
                case "setuid": setuid.Add(value); break;
            }
        }
        return new ProbeReport(uid, gid, nnp, cap, rootfs, setuid);
    }

    /// <summary>Empty when the container ran as the pod will: 65532, no privileges, read-only root, no setuid files.</summary>
    public IReadOnlyList<string> Problems()
    {
        var p = new List<string>();
        if (Uid != 65532 || Gid != 65532) p.Add($"runs as uid={Uid?.ToString() ?? "?"} gid={Gid?.ToString() ?? "?"}, expected 65532:65532");
        if (NoNewPrivs != "1") p.Add($"NoNewPrivs={NoNewPrivs ?? "?"}, expected 1");
        if (CapEff == null || CapEff.Trim('0').Length != 0) p.Add($"effective capabilities {CapEff ?? "?"}, expected none");
        if (RootFs != "readonly") p.Add($"root filesystem is {RootFs ?? "?"}, expected readonly");
        if (SetuidFiles.Count > 0) p.Add($"setuid/setgid files at run time: {string.Join(", ", SetuidFiles.Take(10))}");
        return p;
    }

    public string Summary => $"uid={Uid} gid={Gid} NoNewPrivs={NoNewPrivs} CapEff={CapEff} rootfs={RootFs} setuid files={SetuidFiles.Count}";
}

/// <summary>
/// The in-container probes `harden smoke` uses to prove, at run time, who a container runs as (threat: Elevation of
/// privilege). Images with Python get a script; images without an interpreter get a static C binary compiled
/// here with gcc and mounted read-only (it is never part of an image).
/// </summary>
public static class SmokeProbe
{
    /// <summary>Where the probe directory is mounted (read-only) inside the container.</summary>
    public const string MountPoint = "/hi-smoke";

    /// <summary>Python version of the probe, run as <c>python3 -c</c>.</summary>
    public const string PythonSource = """
        import os, stat
        st = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)
        print('uid=%d' % os.getuid()); print('gid=%d' % os.getgid())
        print('nonewprivs=' + st.get('NoNewPrivs', '?').strip()); print('capeff=' + st.get('CapEff', '?').strip())
        # statvfs, not a test write: as 65532 a write to / fails on a writable root too.
        print('rootfs=' + ('readonly' if os.statvfs('/').f_flag & os.ST_RDONLY else 'writable'))
        for d, dirs, files in os.walk('/'):
            if d == '/':
                dirs[:] = [x for x in dirs if x not in ('proc', 'sys', 'dev')]
            for f in files:
                p = os.path.join(d, f)
                try:
                    m = os.lstat(p).st_mode
                except OSError:
                    continue
                if stat.S_ISREG(m) and m & (stat.S_ISUID | stat.S_ISGID):
                    print('setuid=' + p)
        print('done=1')
        """;

    /// <summary>C version of the probe, compiled with <c>gcc -static</c>.</summary>
    public const string CSource = """
        /* harden smoke probe: prints identity, privileges, root filesystem state and setuid files (key=value). */
        #define _GNU_SOURCE
        #include <ftw.h>
        #include <stdio.h>
        #include <string.h>
        #include <sys/stat.h>
        #include <sys/statvfs.h>
        #include <unistd.h>

        static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
        {
            (void)ftw;
            if (strncmp(path, "/proc", 5) == 0 || strncmp(path, "/sys", 4) == 0 || strncmp(path, "/dev", 4) == 0)
                return type == FTW_D ? FTW_SKIP_SUBTREE : FTW_CONTINUE;
            if (type == FTW_F && S_ISREG(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID)))
                printf("setuid=%s\n", path);
            return FTW_CONTINUE;
        }

        int main(void)
        {
            char line[256];
            FILE *f = fopen("/proc/self/status", "r");
            printf("uid=%u\ngid=%u\n", (unsigned)getuid(), (unsigned)getgid());
            while (f && fgets(line, sizeof line, f)) {
                char value[128];
                if (sscanf(line, "NoNewPrivs: %127s", value) == 1) printf("nonewprivs=%s\n", value);
                if (sscanf(line, "CapEff: %127s", value) == 1) printf("capeff=%s\n", value);
            }
            if (f) fclose(f);
            /* statvfs, not a test write: as 65532 a write to / fails on a writable root too. */
            struct statvfs vfs;
            printf("rootfs=%s\n", statvfs("/", &vfs) == 0 && (vfs.f_flag & ST_RDONLY) ? "readonly" : "writable");
            nftw("/", visit, 32, FTW_PHYS | FTW_ACTIONRETVAL);
            printf("done=1\n");
            return 0;
        }
        """;

    /// <summary>
    /// Compiles the static probe into <paramref name="directory"/> (as <c>probe</c>); returns null with the reason
    /// when gcc (or static glibc) is not available here.
    /// </summary>
    public static (string? Path, string? Why) TryCompile(string directory)
    {
        var gcc = FindOnPath("gcc");
        if (gcc == null) return (null, "gcc is not installed to compile the static probe (apt-get install -y gcc libc6-dev)");
        Directory.CreateDirectory(directory);
        var source = Path.Combine(directory, "probe.c");
        var binary = Path.Combine(directory, "probe");
        File.WriteAllText(source, CSource);
        var psi = new ProcessStartInfo(gcc) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "-static", "-Os", "-o", binary, source }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new HardenException($"could not start {gcc}");
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) return (null, $"gcc -static failed to build the probe ({stderr.Result.Trim()}); install libc6-dev");
        File.Delete(source);
        return (binary, null);
    }

    internal static string? FindOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Append("/usr/bin").Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
}
