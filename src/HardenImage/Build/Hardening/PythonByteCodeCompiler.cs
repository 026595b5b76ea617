using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using HardenImage.Common;
using HardenImage.Deb;
using HardenImage.Oci;

namespace HardenImage.Build.Hardening;

/// <summary>A .py file of the layer to compile: its path in the image and its content in the store.</summary>
public sealed record PythonSource(string ImagePath, string Sha256, long Size);

/// <summary>The .pyc for one source (in the content store), or why the interpreter refused to compile it.</summary>
public sealed record CompiledSource(PythonSource Source, string? PycSha256, long PycSize, string? Error);

/// <summary>Compiles Python sources to PEP 552 hash-based .pyc with one interpreter (what the byte-code transform needs).</summary>
public interface IPythonByteCodeCompiler
{
    /// <summary>"3.13": the interpreter's version, which names usr/lib/python3.13.</summary>
    string Version { get; }
    /// <summary>"cpython-313": the tag in __pycache__/&lt;module&gt;.&lt;tag&gt;.pyc.</summary>
    string CacheTag { get; }
    IReadOnlyList<CompiledSource> Compile(IReadOnlyList<PythonSource> sources, CancellationToken ct = default);
}

/// <summary>A package of the interpreter's own tree (host architecture), with its unpacked entries.</summary>
public sealed record InterpreterPackage(string Name, string DebSha256, IReadOnlyList<UnpackedEntry> Entries);

/// <summary>
/// Runs the image's own CPython — the host-architecture build of the very packages the lock pins — out of a
/// private copy of its package tree (its ld.so with --library-path into that tree, PYTHONHOME at it), so amd64
/// and arm64 images get the same bytes without emulating anything: byte-code does not depend on the CPU.
/// <para>
/// Determinism: the .pyc is hash-based (PEP 552), so no timestamp; the code object is compiled with the in-image
/// path as its file name (no temporary path leaks into tracebacks); PYTHONHASHSEED=0 fixes set/frozenset order;
/// every string constant is rebuilt from its value before marshalling (interned if name-like, else one fresh object
/// per value), because marshal writes whether a string is interned, and an equal string interned by an earlier
/// compile in the same process changed that (measured: typing_extensions.py compiled after typing.py gave other
/// bytes; the driver once forked per file to avoid it, at twice the CPU); and the marshalled code is loaded and
/// marshalled again, because marshal sets FLAG_REF on any object whose reference count happens to exceed one
/// (CPython gh-78274, uv #10619). So a file's bytes depend on the file, its path and the interpreter only, in
/// whatever order and process the files are compiled (3,209 modules of inference-cpu: identical bytes sorted,
/// reversed, shuffled and one process per file).
/// </para>
/// Results are cached content-addressed by interpreter identity, mode, image path and source hash (the pointer
/// sealed with the cache key, the .pyc in the verified content store), so a warm build compiles nothing.
/// </summary>
public sealed class PythonByteCodeCompiler : IPythonByteCodeCompiler, IDisposable
{
    /// <summary>Checked: the interpreter hashes the source on import and ignores a .pyc that does not match it
    /// (see docs/images.md, "Byte-code", for why not unchecked).</summary>
    public const bool Checked = true;
    private const string SealPurpose = "bytecode-v1";
    private readonly ContentStore _store;
    private readonly CacheKey _key;
    private readonly string _cacheDir;
    private readonly IReadOnlyList<InterpreterPackage> _packages;
    private readonly string _identity;
    private readonly object _gate = new();
    private string? _root;
    // Regular files written into the interpreter's tree: canonical path → SHA-256 of the bytes there.
    private readonly Dictionary<string, string> _rootFiles = new(StringComparer.Ordinal);

    public PythonByteCodeCompiler(string version, IReadOnlyList<InterpreterPackage> packages, ContentStore store, string cacheRoot, CacheKey key)
    {
        Version = version; _packages = packages; _store = store; _key = key;
        _cacheDir = Path.Combine(cacheRoot, "bytecode-v1");
        // Which interpreter (every package of its tree, by .deb digest), how it is driven, and the mode.
        _identity = Sha256Hex.Of(Encoding.UTF8.GetBytes(string.Join("\n",
            packages.OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => $"{p.Name} {p.DebSha256}")
                .Append("driver " + Sha256Hex.Of(Encoding.UTF8.GetBytes(Driver))).Append(Checked ? "checked-hash" : "unchecked-hash"))));
    }

    public string Version { get; }
    public string CacheTag => "cpython-" + Version.Replace(".", "", StringComparison.Ordinal);
    /// <summary>Sources compiled by the interpreter in this run (the rest came from the cache).</summary>
    public int CompiledCount { get; private set; }

    /// <summary>The architecture whose interpreter runs here without emulation.</summary>
    public static string? HostArchitecture => RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "amd64",
        Architecture.Arm64 => "arm64",
        _ => null,
    };

    public IReadOnlyList<CompiledSource> Compile(IReadOnlyList<PythonSource> sources, CancellationToken ct = default)
    {
        // One compilation at a time: the architectures assemble in parallel, and the second finds the first's
        // results in the cache instead of compiling the same sources again.
        lock (_gate)
        {
            var results = new CompiledSource?[sources.Count];
            var missing = new List<int>();
            for (var i = 0; i < sources.Count; i++)
            {
                results[i] = Cached(sources[i]);
                if (results[i] == null) missing.Add(i);
            }
            if (missing.Count > 0)
                foreach (var (i, r) in Run(missing.Select(i => (i, sources[i])).ToList(), ct)) results[i] = r;
            return results.Select(r => r!).ToList();
        }
    }

    private string KeyOf(PythonSource s) =>
        Sha256Hex.Of(Encoding.UTF8.GetBytes($"{_identity}\n{s.ImagePath}\n{s.Sha256}"));

    private string PointerPath(string key) => Path.Combine(_cacheDir, key[..2], key);

    /// <summary>A sealed pointer "pycSha size seal" whose .pyc is still in the store; anything else is a miss.</summary>
    private CompiledSource? Cached(PythonSource s)
    {
        var key = KeyOf(s);
        var path = PointerPath(key);
        if (!ContentStore.IsRegularFile(path) || new FileInfo(path).Length > 512) return null;
        var parts = File.ReadAllText(path).Split(' ', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 3 || !Sha256Hex.IsValid(parts[0]) || !long.TryParse(parts[1], out var size)
            || !_key.Verify(parts[2], SealPurpose, key, parts[0], parts[1]))
            return null; // forged or corrupt: compiled again
        // The .pyc itself is hashed too (a few KB each): cache files are not fsync'd, so after a crash one may be
        // empty or torn under an intact pointer; it is evicted here and compiled again, not met later by a layer.
        try { if (_store.ReadVerified(parts[0]).Length != size) return null; }
        catch (CorruptCacheEntryException) { return null; } // evicted, missing or torn
        return new CompiledSource(s, parts[0], size, null);
    }

    private IEnumerable<(int Index, CompiledSource Result)> Run(List<(int Index, PythonSource Source)> work, CancellationToken ct)
    {
        string root;
        using (Timings.Span("byte-code: write the interpreter's tree")) root = InterpreterRoot();
        var job = Directory.CreateTempSubdirectory("hi-bytecode-job-").FullName;
        try
        {
            var files = new List<string[]>();
            for (var n = 0; n < work.Count; n++)
            {
                // A module the interpreter's own tree holds with the same bytes (most of the standard library) is
                // compiled from there: it was copied out of the store, verified, a moment ago. Others are copied now.
                var rel = MergedUsr.Canonicalise(work[n].Source.ImagePath.Trim('/'));
                var fromRoot = _rootFiles.TryGetValue(rel, out var inRoot) && inRoot == work[n].Source.Sha256;
                var src = fromRoot ? Path.Combine(root, rel) : Path.Combine(job, $"{n}.py");
                if (!fromRoot)
                {
                    using var input = _store.OpenVerified(work[n].Source.Sha256, work[n].Source.Size);
                    using var output = File.Create(src);
                    input.CopyTo(output);
                }
                files.Add([src, "/" + work[n].Source.ImagePath, Path.Combine(job, $"{n}.pyc")]);
            }
            using var compiling = Timings.Span($"byte-code: compile {work.Count} modules");
            var driver = Path.Combine(job, "driver.py");
            File.WriteAllText(driver, Driver);
            // One interpreter per core, the sources dealt out largest first to the least loaded: each file's bytes do
            // not depend on which process, or with which others, compiled it (string constants are rebuilt from their
            // values, then the marshal round trip), so the split only changes the time taken.
            var workers = work.Count < 200 ? 1 : Math.Clamp(Environment.ProcessorCount, 1, 4);
            var loads = new long[workers];
            var shares = Enumerable.Range(0, workers).Select(_ => new List<int>()).ToArray();
            foreach (var n in Enumerable.Range(0, work.Count).OrderByDescending(n => work[n].Source.Size).ThenBy(n => n))
            {
                var least = Array.IndexOf(loads, loads.Min());
                loads[least] += work[n].Source.Size + 4096;
                shares[least].Add(n);
            }
            var errors = new Dictionary<int, string>();
            var answers = shares.Where(items => items.Count > 0).Select((items, w) => Task.Run(() =>
                {
                    var request = Path.Combine(job, $"request-{w}.json");
                    File.WriteAllText(request, JsonSerializer.Serialize(new Dictionary<string, object> { ["checked"] = Checked, ["files"] = items.Select(n => files[n]).ToList() }));
                    return (Items: items, Stdout: RunInterpreter(root, driver, request, ct));
                }, ct)).ToArray();
            (List<int> Items, string Stdout)[] answered;
            using (Timings.Span($"byte-code: {answers.Length} interpreter(s) compile")) answered = Task.WhenAll(answers).GetAwaiter().GetResult();
            foreach (var (items, stdout) in answered)
            {
                try
                {
                    foreach (var (n, error) in JsonSerializer.Deserialize<DriverResult>(stdout)?.Errors ?? throw new JsonException("empty"))
                        errors[items[int.Parse(n, System.Globalization.CultureInfo.InvariantCulture)]] = error;
                }
                catch (Exception e) when (e is JsonException or FormatException or ArgumentOutOfRangeException)
                {
                    throw new HardenException($"byte-code: the Python {Version} compiler answered something unreadable ({e.Message}): {Tail(stdout)}");
                }
            }
            CompiledCount += work.Count - errors.Count;
            using var storing = Timings.Span($"byte-code: store {work.Count - errors.Count} .pyc and their cache pointers");
            // Both cores: each result is a content-store file and a sealed pointer, small files that cost more
            // to create than to compute. Pointers are not fsync'd: a torn one fails its seal and is compiled again.
            var results = new (int, CompiledSource)[work.Count];
            Parallel.For(0, work.Count, new ParallelOptions { CancellationToken = ct }, n =>
            {
                var (index, source) = work[n];
                if (errors.TryGetValue(n, out var error))
                {
                    results[n] = (index, new CompiledSource(source, null, 0, error));
                    return;
                }
                var pyc = File.ReadAllBytes(Path.Combine(job, $"{n}.pyc"));
                var sha = _store.Put(pyc);
                var key = KeyOf(source);
                var size = pyc.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
                Directory.CreateDirectory(Path.GetDirectoryName(PointerPath(key))!);
                AtomicFile.WriteAllText(PointerPath(key), $"{sha} {size} {_key.Seal(SealPurpose, key, sha, size)}\n", durable: false);
                results[n] = (index, new CompiledSource(source, sha, pyc.Length, null));
            });
            return results;
        }
        finally { Directory.Delete(job, recursive: true); }
    }

    private sealed record DriverResult(Dictionary<string, string> Errors);

    private string RunInterpreter(string root, string driver, string request, CancellationToken ct)
    {
        var (loader, triplet) = HostArchitecture switch
        {
            "amd64" => ("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "x86_64-linux-gnu"),
            "arm64" => ("usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", "aarch64-linux-gnu"),
            _ => throw new HardenException($"byte-code: this machine's architecture ({RuntimeInformation.OSArchitecture}) runs neither the amd64 nor the arm64 interpreter; build on amd64 or arm64, or set allow: {{noByteCode: true}}."),
        };
        var psi = new ProcessStartInfo(Path.Combine(root, loader))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "--library-path", Path.Combine(root, "usr/lib", triplet), Path.Combine(root, "usr/bin", "python" + Version),
                     "-S", "-s", "-B", "-X", "utf8", "-W", "ignore", driver, request })
            psi.ArgumentList.Add(a);
        // Nothing of this machine's environment reaches the compiler: only the tree it runs from.
        psi.Environment.Clear();
        psi.Environment["PYTHONHOME"] = Path.Combine(root, "usr");
        psi.Environment["PYTHONHASHSEED"] = "0";
        psi.Environment["LC_ALL"] = "C.UTF-8";
        using var process = Process.Start(psi) ?? throw new HardenException($"byte-code: could not start {psi.FileName}");
        var stderr = process.StandardError.ReadToEndAsync(ct);
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        try { process.WaitForExitAsync(ct).GetAwaiter().GetResult(); }
        catch (OperationCanceledException) { process.Kill(entireProcessTree: true); throw; }
        if (process.ExitCode != 0)
            throw new HardenException($"byte-code: Python {Version} (the image's interpreter, run from {root}) exited {process.ExitCode}: {Tail(stderr.GetAwaiter().GetResult())}. " +
                                      "Set allow: {noByteCode: true} in the image to build without byte-code, and report this.");
        return stdout.GetAwaiter().GetResult();
    }

    private static string Tail(string s) => s.Length > 2000 ? "…" + s[^2000..] : s.Trim();

    /// <summary>The interpreter's package tree, written once per build into a private temporary directory.</summary>
    private string InterpreterRoot()
    {
        if (_root != null) return _root;
        var root = Directory.CreateTempSubdirectory("hi-bytecode-python-").FullName;
        try
        {
            var links = new List<(string Path, string Target)>();
            var files = new List<(string Path, UnpackedEntry Entry)>();
            foreach (var p in _packages)
                foreach (var e in p.Entries)
                {
                    var rel = MergedUsr.Canonicalise(e.Path.Trim('/'));
                    // Only what the interpreter needs to start and compile; paths come from verified packages, still
                    // nothing is written outside the root (no "..") and symlinks come last, so none is written through.
                    if (rel.Split('/').Any(s => s is ".." or ".") || !(rel.StartsWith("usr/lib/", StringComparison.Ordinal) || rel.StartsWith("usr/bin/", StringComparison.Ordinal)))
                        continue;
                    var full = Path.Combine(root, rel);
                    switch (e.Type)
                    {
                        case FsNodeType.Directory: Directory.CreateDirectory(full); break;
                        case FsNodeType.Symlink: links.Add((full, e.LinkTarget!)); break;
                        case FsNodeType.File or FsNodeType.HardLink when e.Sha256 != null:
                            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                            files.Add((full, e));
                            _rootFiles[rel] = e.Sha256;
                            break;
                    }
                }
            // A later package's file of the same path wins, as in the layer; both cores copy (verified while read).
            var last = files.GroupBy(f => f.Path, StringComparer.Ordinal).Select(g => g.Last()).ToList();
            Parallel.ForEach(last, f =>
            {
                using (var input = _store.OpenVerified(f.Entry.Sha256!, f.Entry.Size))
                using (var output = File.Create(f.Path)) input.CopyTo(output);
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(f.Path, (UnixFileMode)(f.Entry.Mode & 0b111_111_111) | UnixFileMode.UserRead | UnixFileMode.UserWrite);
            });
            foreach (var (path, target) in links)
            {
                if (new FileInfo(path).LinkTarget != null || File.Exists(path) || Directory.Exists(path) || !Directory.Exists(Path.GetDirectoryName(path))) continue;
                File.CreateSymbolicLink(path, target);
            }
        }
        catch
        {
            // A corrupt or missing store file (the build repairs and runs again): no half-written tree left behind.
            Directory.Delete(root, recursive: true);
            _rootFiles.Clear();
            throw;
        }
        return _root = root;
    }

    public void Dispose()
    {
        if (_root != null && Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
        _root = null;
        _rootFiles.Clear();
    }

    /// <summary>
    /// Runs inside the image's interpreter: compiles each source with its in-image path, writes a PEP 552 .pyc
    /// (flags bit 0 = hash-based, bit 1 = check_source), and reports the files it could not compile.
    /// </summary>
    internal const string Driver = """
        import json, marshal, re, sys, types
        from importlib.util import MAGIC_NUMBER, source_hash
        with open(sys.argv[1], encoding="utf-8") as f:
            request = json.load(f)
        flags = (0b01 | (0b10 if request["checked"] else 0)).to_bytes(4, "little")
        # What CPython's code constructor interns among constants (intern_string_constants): ASCII name characters.
        name_like = re.compile(r"[A-Za-z0-9_]*\Z").match

        def canonical(code, strings):
            return code.replace(co_consts=tuple(canonical_constant(c, strings) for c in code.co_consts))

        def canonical_constant(c, strings):
            # Marshal writes whether a string is interned, and whether a constant string is depends on identity:
            # a nested class's __qualname__ constant is interned when it is the very object the code constructor
            # interned as co_qualname, unless an equal string was interned before (typing.py and
            # typing_extensions.py share "NewType.__mro_entries__.<locals>.Dummy"). So every string constant is
            # rebuilt from its value: interned if name-like or a single character, otherwise one fresh, never
            # interned object per value in this module. Nothing compiled earlier in the process can change that.
            t = type(c)
            if t is types.CodeType:
                return canonical(c, strings)
            if t is str:
                o = strings.get(c)
                if o is None:
                    o = sys.intern(c) if len(c) <= 1 or name_like(c) else c.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")
                    strings[c] = o
                return o
            if t is tuple:
                return tuple(canonical_constant(x, strings) for x in c)
            if t is frozenset:
                return frozenset(canonical_constant(x, strings) for x in c)
            if t is slice:  # a constant from Python 3.14 on
                return slice(canonical_constant(c.start, strings), canonical_constant(c.stop, strings), canonical_constant(c.step, strings))
            return c

        def compile_one(source, image_path, out):
            with open(source, "rb") as f:
                data = f.read()
            code = compile(data, image_path, "exec", dont_inherit=True, optimize=0)
            # Load and dump again: FLAG_REF then marks only objects the code really shares (gh-78274).
            body = marshal.dumps(marshal.loads(marshal.dumps(canonical(code, {}))))
            with open(out, "wb") as f:
                f.write(MAGIC_NUMBER + flags + source_hash(data) + body)

        # Code nested as deep as compile() and marshal accept must not stop the walk above (3 frames a level).
        sys.setrecursionlimit(10000)
        errors = {}
        for n, (source, image_path, out) in enumerate(request["files"]):
            try:
                compile_one(source, image_path, out)
            except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as e:
                # Reported for this file (the build names it; allow: byteCodeErrors can exempt its package), not
                # as a crash that takes the other modules of this interpreter with it.
                errors[str(n)] = f"{type(e).__name__}: {e}"
        json.dump({"Errors": errors}, sys.stdout)
        """;
}
