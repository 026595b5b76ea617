using System.Text.RegularExpressions;
using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Deb;
using HardenImage.Deploy;
using HardenImage.Lock;

namespace HardenImage.Trace;

public sealed record TraceOptions
{
    public required SmokeOptions Smoke { get; init; }
    public required string Image { get; init; }
    public required string Architecture { get; init; }
    public string LockFile { get; init; } = "";
    public IReadOnlyCollection<string> TryExclude { get; init; } = [];
    public IReadOnlyCollection<string> TryRemove { get; init; } = [];
}

/// <summary>The outcome of <c>harden trace</c>: the smoke results, and a proposal only when the workload passed.</summary>
public sealed record TraceReport(SmokeReport Smoke, SlimmingProposal? Proposal, string? Failure, IReadOnlyDictionary<string, string> Loaded);

/// <summary>
/// `harden trace`: runs the image's smoke workload (SmokeRunner, same restrictions and model generation) with
/// PYTHONVERBOSE=1, and while the server still runs reads, as root on the host, /proc/&lt;pid&gt;/maps and open fds of
/// every process in the container (shared libraries including dlopen'ed ones, mmapped data) and the image's
/// status.d records through /proc/&lt;pid&gt;/root. The Python log names every module imported. Chosen over strace in a
/// side container: no extra package, no ptrace capability for the traced container, and the workload runs under
/// exactly the pod's restrictions. Limitation: a file read and closed before the snapshot (not mapped, not a
/// module) is not seen; the proposal is for a person to review, the build only follows what is committed.
/// </summary>
public sealed class TraceRunner(DockerEngine engine, TraceOptions options)
{
    // PYTHONVERBOSE: "# code object from /p.py" (3.13; older versions quote it), "# extension module 'm' loaded from
    // '/p.so'", "# /p/__pycache__/m.pyc matches /p.py".
    private static readonly Regex ImportedPath = new(@"(?:code object from|loaded from|matches) '?(/[^'\s]+)", RegexOptions.CultureInvariant);

    public async Task<TraceReport> RunAsync(IProgress<string>? progress = null, CancellationToken ct = default)
    {
        var set = ImageSet.Load(options.Smoke.ImagesDir);
        if (!set.Images.TryGetValue(options.Image, out var definition))
            throw new HardenException($"--image {options.Image}: no such image in {set.Directory}. Known images: {string.Join(", ", set.Images.Keys.Order(StringComparer.Ordinal))}.");
        var lockPath = options.LockFile.Length > 0 ? options.LockFile : Path.Combine(set.Directory, "images.lock.json");
        var lockFile = LockFile.Load(lockPath);
        var own = lockFile.Image(options.Image)?.Architectures.FirstOrDefault(a => a.Architecture == options.Architecture)
                  ?? throw new HardenException($"{lockPath}: no lock entry for {options.Image} ({options.Architecture}); run 'harden lock --image {options.Image}'.");
        var ownNames = own.Packages.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);

        Snapshot? snapshot = null;
        string? snapshotError = null;
        List<TracedPackage>? packages = null;
        TraceEvidence? evidence = null;
        var smoke = new SmokeRunner(engine, options.Smoke with
        {
            Images = [options.Image],
            RunnableArchitectures = [options.Architecture],
            // Only the traced architecture: the smoke would otherwise also run every other one under emulation
            // (minutes of qemu for an arm64 PyTorch import) whose loads the trace never reads.
            Architectures = [options.Architecture],
            ServerEnv = new Dictionary<string, string> { ["PYTHONVERBOSE"] = "1" },
            WhileServing = async (server, token) =>
            {
                progress?.Report($"{options.Image}: reading what the workload loaded");
                var pid = await server.HostPidAsync(token);
                if (pid <= 0) { snapshotError = "the server was no longer running when its processes were to be read"; return; }
                try { snapshot = Snapshot.Take((int)pid); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    snapshotError = $"could not read /proc/{pid} of the server ({e.Message}); trace runs as root on the engine's host";
                }
                if (snapshot == null) return;
                var (o, e2) = await server.LogsAsync(token);
                snapshot.AddImports(o + e2);
                // The root is readable only while the container runs: read packages and ELF headers now.
                progress?.Report($"{options.Image}: reading status.d and ELF dynamic sections");
                packages = snapshot.Packages(ownNames, options.Architecture);
                evidence = snapshot.Evidence(packages, options.Architecture);
            },
        });
        var report = await smoke.RunAsync(progress, ct);
        return Conclude(options, report, definition.Packages.Select(ImageSet.PackageName).ToList(), packages, evidence, snapshotError);
    }

    /// <summary>
    /// A proposal only from a workload that passed every check and was observed; otherwise the reason, with the
    /// failed checks and their details, and no proposal.
    /// </summary>
    public static TraceReport Conclude(TraceOptions options, SmokeReport report, IReadOnlyCollection<string> requested,
        List<TracedPackage>? packages, TraceEvidence? evidence, string? snapshotError)
    {
        var failed = report.Results.Where(r => r.Status == SmokeStatus.Failed).ToList();
        if (failed.Count > 0)
            return new TraceReport(report, null, $"the workload failed ({string.Join("; ", failed.Select(f => $"{f.Check}: {f.Detail}"))}); no proposal is made from a failed run", new Dictionary<string, string>());
        if (!report.Results.Any(r => r.Image == options.Image && r.Architecture == options.Architecture && r.Status == SmokeStatus.Passed))
            return new TraceReport(report, null, $"{options.Image} ({options.Architecture}) was not run here: {string.Join("; ", report.Results.Select(r => r.Detail))}", new Dictionary<string, string>());
        if (packages == null || evidence == null)
            return new TraceReport(report, null, snapshotError ?? $"{options.Image} has no long-running workload (no http: smoke check and no MODEL_DIR) to observe", new Dictionary<string, string>());
        var proposal = SlimmingProposer.Propose(packages, requested, evidence, options.TryExclude, options.TryRemove);
        return new TraceReport(report, proposal, null, evidence.Loaded);
    }

    /// <summary>What the server's processes had mapped or open, read through the host's /proc.</summary>
    private sealed class Snapshot
    {
        private readonly string _root;
        private readonly Dictionary<string, string> _loaded = new(StringComparer.Ordinal);

        private Snapshot(string root) { _root = root; }

        public static Snapshot Take(int pid)
        {
            var s = new Snapshot($"/proc/{pid}/root");
            foreach (var p in Processes(pid))
            {
                var comm = TryRead($"/proc/{p}/comm")?.Trim() ?? "?";
                foreach (var line in File.ReadLines($"/proc/{p}/maps"))
                {
                    var slash = line.IndexOf('/');
                    if (slash < 0 || line.EndsWith(" (deleted)", StringComparison.Ordinal)) continue;
                    s.Add(line[slash..], $"mapped by pid {p} ({comm})");
                }
                foreach (var fd in SafeEnumerate($"/proc/{p}/fd"))
                {
                    var target = new FileInfo(fd).LinkTarget;
                    if (target != null && target.StartsWith('/') && !target.StartsWith("/dev/", StringComparison.Ordinal)
                        && !target.StartsWith("/proc/", StringComparison.Ordinal)) s.Add(target, $"open in pid {p} ({comm})");
                }
            }
            return s;
        }

        private void Add(string absolute, string how)
        {
            var path = Normalize(absolute);
            if (path.StartsWith("tmp/", StringComparison.Ordinal) || path.StartsWith("models/", StringComparison.Ordinal)) return;
            _loaded.TryAdd(path, how);
        }

        /// <summary>Modules named by PYTHONVERBOSE ("code object from '…'", "extension module … loaded from '…'").</summary>
        public void AddImports(string log)
        {
            foreach (var p in ImportedPaths(log))
                if (File.Exists(_root + p)) Add(p, "imported by Python");
        }

        public List<TracedPackage> Packages(HashSet<string> own, string architecture) => ReadPackages(_root, own, architecture);

        public TraceEvidence Evidence(List<TracedPackage> packages, string architecture) => ReadEvidence(_root, _loaded, packages, architecture);
    }

    /// <summary>Absolute paths of the modules a PYTHONVERBOSE log says were imported.</summary>
    public static IEnumerable<string> ImportedPaths(string log) =>
        ImportedPath.Matches(log).Select(m => m.Groups[1].Value).Distinct(StringComparer.Ordinal);

    /// <summary>
    /// The packages of the image rooted at <paramref name="root"/>: status.d/&lt;pkg&gt; (control: Depends) and
    /// &lt;pkg&gt;.md5sums (files still present, regular). Package names may contain dots (libcpp-httplib0.18).
    /// </summary>
    public static List<TracedPackage> ReadPackages(string root, HashSet<string> own, string architecture)
    {
        var dir = root + "/var/lib/dpkg/status.d";
        var list = new List<TracedPackage>();
        foreach (var control in Directory.GetFiles(dir).Where(f => !f.EndsWith(".md5sums", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(control);
            var fields = Deb822.Parse(File.ReadAllText(control)).FirstOrDefault();
            var depends = Relation.ParseField(fields?["Pre-Depends"])
                .Concat(Relation.ParseField(fields?["Depends"]))
                .Select(g => (IReadOnlyList<string>)g.Alternatives.Where(a => a.AppliesTo(architecture)).Select(a => a.Name).ToList())
                .Where(g => g.Count > 0).ToList();
            var files = new List<string>();
            long bytes = 0;
            var md5 = Path.Combine(dir, name + ".md5sums");
            if (File.Exists(md5))
                foreach (var line in File.ReadLines(md5))
                {
                    var space = line.IndexOf("  ", StringComparison.Ordinal);
                    if (space < 0) continue;
                    var path = Normalize("/" + line[(space + 2)..]);
                    var info = new FileInfo(root + "/" + path);
                    if (!info.Exists || info.LinkTarget != null) continue; // removed by hardening or `remove:`
                    files.Add(path);
                    bytes += info.Length;
                }
            list.Add(new TracedPackage(name, files, bytes, depends, own.Contains(name)));
        }
        return list;
    }

    private static TraceEvidence ReadEvidence(string _root, Dictionary<string, string> _loaded, List<TracedPackage> packages, string architecture)
    {
        var triplet = architecture == "arm64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
        string[] defaults = [$"usr/lib/{triplet}", "usr/lib", $"usr/lib/{triplet}/lapack", $"usr/lib/{triplet}/blas", $"usr/lib/{triplet}/openmpi/lib"];
        var needed = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var file in packages.SelectMany(p => p.Files).Distinct(StringComparer.Ordinal))
        {
            ElfDynamicInfo? info;
            try { info = ElfDynamicSection.Read(_root + "/" + file); }
            catch (IOException) { continue; } // unreadable: it cannot have been loaded either
            if (info == null || info.Needed.Count == 0) continue;
            var origin = Path.GetDirectoryName(file)!.Replace('\\', '/');
            var dirs = info.RunPath.Select(r => Normalize(r.Replace("$ORIGIN", "/" + origin).Replace("${ORIGIN}", "/" + origin)))
                .Concat(defaults).ToList();
            var resolved = new List<string>();
            foreach (var soname in info.Needed)
                foreach (var d in dirs)
                    if (ResolveInRoot(_root, d + "/" + soname) is { } real) { resolved.Add(real); break; }
            needed[file] = resolved;
        }
        return new TraceEvidence(new Dictionary<string, string>(_loaded, StringComparer.Ordinal), needed);
    }

    /// <summary>Follows symlinks inside the container's root (absolute targets stay in it); null when absent.</summary>
    static string? ResolveInRoot(string root, string path)
    {
        var current = Normalize("/" + path);
        for (int hops = 0; hops < 40; hops++)
        {
            var info = new FileInfo(root + "/" + current);
            if (info.LinkTarget == null) return info.Exists ? current : null;
            var target = info.LinkTarget;
            current = Normalize(target.StartsWith('/') ? target : "/" + Path.GetDirectoryName(current)!.Replace('\\', '/') + "/" + target);
        }
        return null;
    }

    private static IEnumerable<int> Processes(int pid)
    {
        var seen = new HashSet<int>();
        var queue = new Queue<int>([pid]);
        while (queue.Count > 0)
        {
            var p = queue.Dequeue();
            if (!seen.Add(p)) continue;
            yield return p;
            foreach (var task in SafeEnumerate($"/proc/{p}/task"))
                foreach (var child in (TryRead(task + "/children") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    if (int.TryParse(child, out var c)) queue.Enqueue(c);
        }
    }

    private static IEnumerable<string> SafeEnumerate(string dir)
    {
        try { return Directory.GetFileSystemEntries(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    private static string? TryRead(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Image path without the leading '/', '..' folded, /usr-merged (lib/, bin/, sbin/ live under usr/).</summary>
    public static string Normalize(string absolute)
    {
        var parts = new List<string>();
        foreach (var seg in absolute.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (seg == ".") continue;
            if (seg == "..") { if (parts.Count > 0) parts.RemoveAt(parts.Count - 1); continue; }
            parts.Add(seg);
        }
        if (parts.Count > 0 && parts[0] is "lib" or "bin" or "sbin" or "lib64") parts.Insert(0, "usr");
        return string.Join('/', parts);
    }
}
