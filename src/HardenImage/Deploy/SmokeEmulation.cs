using System.Diagnostics;
using System.Formats.Tar;
using System.Runtime.InteropServices;
using System.Text;
using HardenImage.Common;
using HardenImage.Oci;

namespace HardenImage.Deploy;

/// <summary>
/// Runs another architecture's image (arm64 on an amd64 host) under Debian's qemu-user-static, as root, without
/// an engine: the image's layers are unpacked by our own reader into a scratch root filesystem, and each run is
/// <c>unshare --mount --pid [--net]</c> → bind the root read-only, fresh /proc, read-only /sys, /dev/{null,zero,full,random,urandom},
/// tmpfs /tmp, the emulator bind-mounted read-only at <see cref="EmulatorPath"/> (never copied into the tree, never
/// in a layer) → <c>setpriv --no-new-privs unshare --root --wd --setuid 65532 --setgid 65532</c> → the emulator runs
/// the image's command. Not enforced here, unlike the engine: the memory and pid limits (qemu reserves a large
/// address space); everything else the pod has is (threat: Elevation of privilege — runs as 65532, no capabilities,
/// no new privileges, read-only root).
/// </summary>
public sealed class EmulatedSmokeRuntime : ISmokeRuntime, IDisposable
{
    /// <summary>Where the emulator appears inside the run (a read-only bind mount of the host's file).</summary>
    public const string EmulatorPath = "/.hi-emulator";

    /// <summary>The exit code a run reports when the emulator could not open the program (as a shell's "not found").</summary>
    public const int NotFoundExit = 127;

    private static readonly string[] DeviceNodes = ["null", "zero", "full", "random", "urandom"];
    private readonly string _architecture;
    private readonly string _emulator;
    private readonly string _workRoot;
    private readonly Dictionary<string, (string Root, string Id, ContainerConfig Config)> _loaded = new(StringComparer.Ordinal);

    public EmulatedSmokeRuntime(string architecture, string emulator, string workRoot)
    {
        _architecture = architecture;
        _emulator = emulator;
        _workRoot = workRoot;
    }

    public string Runner => SmokeRunners.QemuChroot;
    public string Describe => $"{_architecture} emulated by {_emulator} in a chroot (unshare mount/pid namespaces; memory and pid limits not enforced)";

    /// <summary>The static emulator for a Debian architecture name (qemu-user-static's file names).</summary>
    public static string EmulatorFileName(string architecture) => architecture switch
    {
        "arm64" => "qemu-aarch64-static",
        "armhf" => "qemu-arm-static",
        "ppc64el" => "qemu-ppc64le-static",
        "riscv64" => "qemu-riscv64-static",
        "s390x" => "qemu-s390x-static",
        "amd64" => "qemu-x86_64-static",
        _ => $"qemu-{architecture}-static",
    };

    /// <summary>
    /// Why this machine cannot emulate <paramref name="architecture"/> (null when it can): the emulator in
    /// <paramref name="emulatorDirectory"/>, root, and util-linux's unshare/setpriv are needed.
    /// </summary>
    public static string? CannotEmulate(string architecture, string emulatorDirectory, bool isRoot)
    {
        var emulator = Path.Combine(emulatorDirectory, EmulatorFileName(architecture));
        if (!File.Exists(emulator))
            return $"no {emulator} (install Debian's qemu-user-static: apt-get install qemu-user-static)";
        if (!isRoot) return "emulated runs need root (mount namespaces and chroot); run harden smoke as root";
        foreach (var tool in new[] { "/usr/bin/unshare", "/usr/bin/setpriv", "/usr/bin/env" })
            if (!File.Exists(tool)) return $"no {tool} (util-linux / coreutils)";
        return null;
    }

    public static bool IsRoot() => !OperatingSystem.IsWindows() && Geteuid() == 0;

    public Task<string?> ImageIdAsync(string tag, CancellationToken ct) =>
        Task.FromResult(_loaded.TryGetValue(tag, out var l) ? l.Id : null);

    public Task<string> LoadAsync(OciLayoutReader reader, ResolvedManifest image, string refName, string architecture, string tag, CancellationToken ct)
    {
        if (architecture != _architecture)
            throw new HardenException($"{refName} ({architecture}): this emulated runtime runs {_architecture} only");
        var root = Path.Combine(_workRoot, "rootfs-" + Digest.Parse(image.Manifest.Config.Digest).Hex[..12] + "-" + architecture);
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        Directory.CreateDirectory(root);
        SmokeRootfs.Extract(reader, image, root, ct);
        PrepareMountPoints(root);
        _loaded[tag] = (root, image.Manifest.Config.Digest, image.Config.Config ?? new ContainerConfig());
        return Task.FromResult(image.Manifest.Config.Digest);
    }

    /// <summary>Each emulated root belongs to the run that extracted it (its directory goes with its tag).</summary>
    public Task<bool> TagAsync(string imageId, string tag, CancellationToken ct) => Task.FromResult(false);

    public Task RemoveImageAsync(string tag, CancellationToken ct)
    {
        if (_loaded.Remove(tag, out var l) && Directory.Exists(l.Root)) Directory.Delete(l.Root, recursive: true);
        return Task.CompletedTask;
    }

    public async Task<ContainerRunResult> RunAsync(ContainerRunSpec spec, CancellationToken ct)
    {
        // qemu-user exits 1 without a word when it cannot open the program; the engine (runc) refuses to exec it.
        // Decide it here as the engine does: resolve the program inside the image's root, symlinks included.
        if (Program(spec) is { } program && ExecutableInRoot(_loaded[spec.Image].Root, program, _architecture) is { } missing)
            return new ContainerRunResult(NotFoundExit, "", $"exec {program}: {missing} (emulated run: checked in the image's root)", false);
        await using var run = Start(spec);
        var timedOut = false;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            timeout.CancelAfter(spec.Timeout);
            try { await run.Process.WaitForExitAsync(timeout.Token); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested) { timedOut = true; }
        }
        if (timedOut) run.Kill();
        await run.Process.WaitForExitAsync(CancellationToken.None);
        var (stdout, stderr) = await run.LogsAsync(CancellationToken.None);
        return new ContainerRunResult(timedOut ? -1 : run.Process.ExitCode, stdout, stderr, timedOut);
    }

    public Task<ISmokeContainer> StartAsync(ContainerRunSpec spec, CancellationToken ct) => Task.FromResult<ISmokeContainer>(Start(spec));

    /// <summary>The host command line for one run: <c>unshare</c> and the shell script that mounts and enters the root.</summary>
    public IReadOnlyList<string> CommandLine(ContainerRunSpec spec)
    {
        if (!_loaded.TryGetValue(spec.Image, out var image))
            throw new HardenException($"{spec.Image}: not loaded into the emulated runtime");
        var config = image.Config;
        var entrypoint = spec.Entrypoint ?? config.Entrypoint ?? [];
        var cmd = spec.Cmd ?? (spec.Entrypoint != null ? [] : config.Cmd ?? []);
        var argv = entrypoint.Concat(cmd).ToList();
        if (argv.Count == 0) throw new HardenException($"{spec.Image}: no entrypoint or cmd to run");
        if (!argv[0].StartsWith('/'))
            throw new HardenException($"{spec.Image}: entrypoint '{argv[0]}' is not absolute; emulated runs do not search PATH");
        var user = spec.User.Split(':');
        if (user.Length != 2 || !user.All(u => u.All(char.IsAsciiDigit)))
            throw new HardenException($"{spec.Image}: user '{spec.User}' must be numeric uid:gid for an emulated run");
        var env = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var e in config.Env ?? [])
        {
            var eq = e.IndexOf('=');
            if (eq > 0) env[e[..eq]] = e[(eq + 1)..];
        }
        foreach (var (k, v) in spec.Env) env[k] = v;
        var root = image.Root;
        foreach (var target in spec.Tmpfs.Keys.Concat(spec.ReadOnlyMounts.Values).Concat(spec.WritableMounts.Values))
            EnsureMountTargetInsideRoot(root, target, spec.Image);
        var s = new StringBuilder("set -eu\n");
        s.Append($"R={Q(root)}\n");
        s.Append("mount --bind \"$R\" \"$R\"\n");
        s.Append("mount -t proc -o nosuid,nodev,noexec proc \"$R/proc\"\n");
        // Read-only sysfs as the engine gives it (PyTorch's cpuinfo reads /sys/devices/system/cpu).
        s.Append("mount -t sysfs -o ro,nosuid,nodev,noexec sysfs \"$R/sys\"\n");
        foreach (var d in DeviceNodes) s.Append($"mount --bind /dev/{d} \"$R/dev/{d}\"\n");
        foreach (var (target, options) in spec.Tmpfs)
            s.Append($"mkdir -p \"$R\"{Q(target)}\nmount -t tmpfs -o {Q(options)},mode=1777 tmpfs \"$R\"{Q(target)}\n");
        s.Append($"mount --bind {Q(_emulator)} \"$R{EmulatorPath}\"\nmount -o remount,bind,ro \"$R{EmulatorPath}\"\n");
        foreach (var (host, target) in spec.ReadOnlyMounts)
            s.Append($"mkdir -p \"$R\"{Q(target)}\nmount --bind {Q(host)} \"$R\"{Q(target)}\nmount -o remount,bind,ro \"$R\"{Q(target)}\n");
        foreach (var (host, target) in spec.WritableMounts)
            s.Append($"mkdir -p \"$R\"{Q(target)}\nmount --bind {Q(host)} \"$R\"{Q(target)}\n");
        if (spec.ReadOnlyRootFilesystem) s.Append("mount -o remount,bind,ro \"$R\"\n");
        s.Append("exec /usr/bin/env -i");
        foreach (var (k, v) in env) s.Append(' ').Append(Q(k + "=" + v));
        s.Append(spec.NoNewPrivileges ? " /usr/bin/setpriv --no-new-privs" : "");
        // unshare --root chroots, changes directory, then drops to uid/gid (and the supplementary groups): from root
        // to a non-root uid the kernel clears every capability.
        s.Append($" /usr/bin/unshare --root=\"$R\" --wd={Q(config.WorkingDir is { Length: > 0 } w ? w : "/")} --setgid {user[1]} --setuid {user[0]} -- {EmulatorPath}");
        foreach (var a in argv) s.Append(' ').Append(Q(a));
        s.Append('\n');
        var outer = new List<string> { "/usr/bin/unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private" };
        if (spec.Network != "host") outer.Add("--net");
        outer.AddRange(["/bin/sh", "-c", s.ToString()]);
        return outer;
    }

    private EmulatedRun Start(ContainerRunSpec spec)
    {
        var line = CommandLine(spec);
        var psi = new ProcessStartInfo(line[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in line.Skip(1)) psi.ArgumentList.Add(a);
        return new EmulatedRun(Process.Start(psi) ?? throw new HardenException($"could not start {line[0]}"));
    }

    private string? Program(ContainerRunSpec spec) =>
        _loaded.TryGetValue(spec.Image, out var image) ? (spec.Entrypoint ?? image.Config.Entrypoint ?? spec.Cmd ?? image.Config.Cmd)?.FirstOrDefault() : null;

    /// <summary>Null when <paramref name="program"/> resolves (symlinks relative to <paramref name="root"/>) to an executable regular file; else why not.</summary>
    public static string? ExecutableInRoot(string root, string program, string architecture)
    {
        var pending = new Queue<string>(program.Split('/', StringSplitOptions.RemoveEmptyEntries));
        var resolved = new List<string>();
        for (var hops = 0; pending.Count > 0;)
        {
            var part = pending.Dequeue();
            if (part == ".") continue;
            if (part == "..") { if (resolved.Count > 0) resolved.RemoveAt(resolved.Count - 1); continue; }
            var host = Path.Combine(root, Path.Combine([.. resolved, part]));
            var info = new FileInfo(host);
            if (info.LinkTarget is { } link)
            {
                if (++hops > 40) return "too many levels of symbolic links";
                if (link.StartsWith('/')) resolved.Clear();
                pending = new Queue<string>(link.Split('/', StringSplitOptions.RemoveEmptyEntries).Concat(pending));
                continue;
            }
            if (!info.Exists && !Directory.Exists(host)) return "no such file or directory";
            resolved.Add(part);
        }
        var final = Path.Combine(root, Path.Combine([.. resolved]));
        if (!File.Exists(final)) return "not a regular file";
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(final) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
            return "permission denied (not executable)";
        return ForeignElf(final, architecture);
    }

    /// <summary>ELF e_machine per Debian architecture (what the emulator can run).</summary>
    private static readonly Dictionary<string, ushort> ElfMachines = new(StringComparer.Ordinal)
    {
        ["amd64"] = 62, ["arm64"] = 183, ["armhf"] = 40, ["ppc64el"] = 21, ["s390x"] = 22, ["riscv64"] = 243,
    };

    /// <summary>"exec format error" when the file is an ELF for another machine (e.g. an amd64 payload in an arm64 image).</summary>
    private static string? ForeignElf(string path, string architecture)
    {
        Span<byte> header = stackalloc byte[20];
        using (var f = File.OpenRead(path))
            if (f.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length) return null;
        if (header[0] != 0x7f || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F') return null;
        var machine = header[5] == 2 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(header[18..]) : System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(header[18..]);
        if (!ElfMachines.TryGetValue(architecture, out var want) || machine == want) return null;
        var name = ElfMachines.FirstOrDefault(kv => kv.Value == machine).Key ?? $"e_machine {machine}";
        return $"exec format error: an ELF for {name}, not {architecture}";
    }

    /// <summary>Mount points the runs bind over; created in the scratch copy only (the layers are never written).</summary>
    private static void PrepareMountPoints(string root)
    {
        foreach (var dir in new[] { "proc", "sys", "dev", "tmp" })
        {
            var p = Path.Combine(root, dir);
            if (new FileInfo(p).LinkTarget != null) throw new HardenException($"{root}: /{dir} is a symlink; cannot mount over it");
            Directory.CreateDirectory(p);
        }
        // Written as root on the host: a symlink the image put at one of these names (dev/null -> /etc/shadow) would
        // have the write truncate its target on the host, and the bind mount land wherever it points.
        foreach (var file in DeviceNodes.Select(d => "dev/" + d).Append(EmulatorPath.TrimStart('/')))
        {
            var p = Path.Combine(root, file);
            if (new FileInfo(p).LinkTarget != null || Directory.Exists(p))
                throw new HardenException($"{root}: /{file} is a {(Directory.Exists(p) && new FileInfo(p).LinkTarget == null ? "directory" : "symlink")} in the image; an emulated run binds a host file over it, so the image is refused (ship /{file} as nothing or a regular file)");
            File.WriteAllBytes(p, []);
        }
    }

    /// <summary>Refuses a mount target whose path inside <paramref name="root"/> passes a symlink: the host-side
    /// <c>mkdir -p</c> and <c>mount --bind</c> (as root, before the chroot) would follow it onto the host.</summary>
    private static void EnsureMountTargetInsideRoot(string root, string target, string image)
    {
        var path = root;
        foreach (var part in target.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part is "." or "..") throw new HardenException($"{image}: mount target '{target}' has '{part}'; refused");
            path = Path.Combine(path, part);
            if (new FileInfo(path).LinkTarget != null)
                throw new HardenException($"{image}: mount target '{target}' passes the symlink /{Path.GetRelativePath(root, path)} in the image; an emulated run mounts as root before the chroot, so it is refused");
        }
    }

    private static string Q(string s) => "'" + s.Replace("'", "'\\''") + "'";

    public void Dispose()
    {
        foreach (var tag in _loaded.Keys.ToList()) RemoveImageAsync(tag, CancellationToken.None).GetAwaiter().GetResult();
    }

    [DllImport("libc", EntryPoint = "geteuid")] private static extern uint Geteuid();

    /// <summary>One emulated process; output is collected as it comes, disposing kills what is left.</summary>
    private sealed class EmulatedRun : ISmokeContainer
    {
        private readonly StringBuilder _out = new(), _err = new();
        private readonly Task _reading;

        public EmulatedRun(Process process)
        {
            Process = process;
            _reading = Task.WhenAll(Pump(process.StandardOutput, _out), Pump(process.StandardError, _err));
        }

        public Process Process { get; }

        private static async Task Pump(StreamReader reader, StringBuilder into)
        {
            var buffer = new char[8192];
            int n;
            while ((n = await reader.ReadAsync(buffer)) > 0)
                lock (into) into.Append(buffer, 0, n);
        }

        public async Task<(string StdOut, string StdErr)> LogsAsync(CancellationToken ct = default)
        {
            if (Process.HasExited) await _reading.WaitAsync(TimeSpan.FromSeconds(10), ct);
            lock (_out) lock (_err) return (_out.ToString(), _err.ToString());
        }

        public Task<long?> ExitCodeAsync(CancellationToken ct = default) =>
            Task.FromResult(Process.HasExited ? (long?)Process.ExitCode : null);

        /// <summary>Kills the namespace's first process; --kill-child and the pid namespace take the rest with it.</summary>
        public void Kill()
        {
            try { if (!Process.HasExited) Process.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { }
        }

        public async ValueTask DisposeAsync()
        {
            Kill();
            await Process.WaitForExitAsync(CancellationToken.None);
            Process.Dispose();
        }
    }
}

/// <summary>
/// Unpacks an image's layers in order into a directory, applying OCI whiteouts, for an emulated smoke run. Refuses
/// entries that would leave the directory ('..', or a parent on disk that is a symlink: threat Tampering of the
/// host through a hostile layout).
/// </summary>
public static class SmokeRootfs
{
    public static void Extract(OciLayoutReader reader, ResolvedManifest image, string root, CancellationToken ct)
    {
        root = Path.GetFullPath(root);
        var hardLinks = new List<(string Path, string Target)>();
        foreach (var layer in image.Manifest.Layers)
        {
            using var stream = reader.OpenUncompressed(layer);
            using var tar = new TarReader(stream);
            try
            {
                while (tar.GetNextEntry() is { } entry)
                {
                    ct.ThrowIfCancellationRequested();
                    var rel = Relative(entry.Name, layer);
                    if (rel.Length == 0) continue;
                    var name = Path.GetFileName(rel);
                    var dir = Path.GetDirectoryName(rel) ?? "";
                    var target = Inside(root, rel, layer);
                    if (name == ".wh..wh..opq")
                    {
                        var d = Inside(root, dir, layer);
                        if (Directory.Exists(d)) foreach (var child in new DirectoryInfo(d).EnumerateFileSystemInfos()) Delete(child.FullName);
                        continue;
                    }
                    if (name.StartsWith(".wh.", StringComparison.Ordinal))
                    {
                        Delete(Inside(root, Path.Combine(dir, name[4..]), layer));
                        continue;
                    }
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    switch (entry.EntryType)
                    {
                        case TarEntryType.Directory:
                            if (!Directory.Exists(target)) { Delete(target); Directory.CreateDirectory(target); }
                            break;
                        case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                            Delete(target);
                            entry.ExtractToFile(target, overwrite: false);
                            break;
                        case TarEntryType.SymbolicLink:
                            Delete(target);
                            File.CreateSymbolicLink(target, entry.LinkName);
                            break;
                        case TarEntryType.HardLink:
                            Delete(target);
                            hardLinks.Add((target, Inside(root, Relative(entry.LinkName, layer), layer)));
                            File.Copy(hardLinks[^1].Target, target);
                            break;
                        default:
                            throw new HardenException($"{reader.Layout.Root}: layer {layer.Digest} entry {entry.Name} is a {entry.EntryType}; images carry no device or special files");
                    }
                    if (entry.EntryType != TarEntryType.SymbolicLink && !OperatingSystem.IsWindows()) File.SetUnixFileMode(target, entry.Mode);
                    if (Lchown(target, entry.Uid, entry.Gid) != 0)
                        throw new HardenException($"{target}: chown {entry.Uid}:{entry.Gid} failed (errno {Marshal.GetLastPInvokeError()}); emulated smoke runs as root");
                }
            }
            catch (Exception e) when (e is InvalidDataException or FormatException)
            {
                throw new HardenException($"{reader.Layout.Root}: layer {layer.Digest} is not a readable tar ({e.Message}); rebuild with 'harden build'.", inner: e);
            }
        }
    }

    private static string Relative(string name, Descriptor layer)
    {
        var parts = name.Replace('\\', '/').Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToList();
        if (parts.Contains("..") || name.Contains('\0'))
            throw new HardenException($"layer {layer.Digest}: entry '{name}' leaves the root filesystem ('..'); the layout is not one harden build wrote");
        return string.Join('/', parts);
    }

    /// <summary>The host path of <paramref name="rel"/>; no parent of it may be a symlink on disk (writes would follow it).</summary>
    private static string Inside(string root, string rel, Descriptor layer)
    {
        var path = root;
        var parts = rel.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < parts.Length; i++)
        {
            path = Path.Combine(path, parts[i]);
            if (i < parts.Length - 1 && new FileInfo(path).LinkTarget != null)
                throw new HardenException($"layer {layer.Digest}: entry '{rel}' goes through the symlink /{string.Join('/', parts[..(i + 1)])}; refusing to write through it");
        }
        return path;
    }

    private static void Delete(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget != null || File.Exists(path)) { File.Delete(path); return; }
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
    }

    [DllImport("libc", EntryPoint = "lchown", SetLastError = true)]
    private static extern int Lchown(string path, int owner, int group);
}
