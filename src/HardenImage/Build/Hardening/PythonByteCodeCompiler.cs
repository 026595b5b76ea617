using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using HardenImage.Common;
using HardenImage.Common.Storage;
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
/// Results are cached by interpreter identity, mode, image path and source hash, so a warm build compiles nothing:
/// the .pyc of one compile go into one content-store pack (each still verified against its own SHA-256 when read),
/// and one index per compile, sealed with the cache key, says which key's .pyc lies where
/// (<c>&lt;cache&gt;/bytecode-v2/&lt;interpreter identity&gt;/&lt;pack&gt;.index</c>). A .pyc a file was 2,000 files per
/// thousand modules, which cost more kernel time to create than CPython took to compile them.
/// </summary>
public sealed class PythonByteCodeCompiler : IPythonByteCodeCompiler, IDisposable
{
    /// <summary>Checked: the interpreter hashes the source on import and ignores a .pyc that does not match it
    /// (see docs/images.md, "Byte-code", for why not unchecked).</summary>
    public const bool Checked = true;
    private const string SealPurpose = "bytecode-v2";
    // An index line is ~200 bytes; inference-cpu's 3,209 modules make 0.7 MB. A planted larger file is not read.
    internal const long MaxIndexBytes = 16L << 20;
    private readonly ContentStore _store;
    private readonly CacheKey _key;
    private readonly string _cacheDir;
    private readonly IReadOnlyList<InterpreterPackage> _packages;
    private readonly string _identity;
    private readonly object _gate = new();
    private string? _root;
    // Cache key of a source → its .pyc and the sealed index (and pack) it was found through: indexes of this
    // interpreter read on the first compile, and those this process wrote (no index: nothing to mark as used).
    private Dictionary<string, (string PycSha256, long Size, string? Index, string Pack)>? _index;
    // Indexes whose use this process recorded already (LastUse): a build hits thousands of .pyc of a few indexes.
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public PythonByteCodeCompiler(string version, IReadOnlyList<InterpreterPackage> packages, ContentStore store, string cacheRoot, CacheKey key)
    {
        Version = version; _packages = packages; _store = store; _key = key;
        // Which interpreter (every package of its tree, by .deb digest), how it is driven, and the mode.
        _identity = Sha256Hex.Of(Encoding.UTF8.GetBytes(string.Join("\n",
            packages.OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => $"{p.Name} {p.DebSha256}")
                .Append("driver " + Sha256Hex.Of(Encoding.UTF8.GetBytes(Driver))).Append(Checked ? "checked-hash" : "unchecked-hash"))));
        _cacheDir = Path.Combine(cacheRoot, "bytecode-v2", _identity);
    }

    public string Version { get; }
    public string CacheTag => "cpython-" + Version.Replace(".", "", StringComparison.Ordinal);
    /// <summary>Where this interpreter's sealed indexes live (<c>bytecode-v2/&lt;identity&gt;</c>).</summary>
    internal string CacheDirectory => _cacheDir;
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

    /// <summary>The .pyc cached for <paramref name="s"/>, still in the store and verified; anything else is a miss.</summary>
    private CompiledSource? Cached(PythonSource s)
    {
        _index ??= ReadIndexes();
        if (!_index.TryGetValue(KeyOf(s), out var pyc)) return null;
        // The .pyc itself is hashed too (a few KB each): cache files are not fsync'd, so after a crash a pack may be
        // torn under an intact index; it is evicted here and compiled again, not met later by a layer.
        try { if (_store.ReadVerified(pyc.PycSha256, pyc.Size).Length != pyc.Size) return null; }
        catch (CorruptCacheEntryException) { return null; } // evicted, missing or torn
        // Used: the index and its pack stay while builds use them (harden cache prune goes by this time).
        if (pyc.Index != null && _used.Add(pyc.Index)) LastUse.Refresh(pyc.Index, _store.PathOf(pyc.Pack));
        return new CompiledSource(s, pyc.PycSha256, pyc.Size, null);
    }

    /// <summary>
    /// Every index of this interpreter whose seal holds and whose pack is there, registered with the store. An index
    /// that is forged, torn, too large or names a missing pack is deleted: what it listed is compiled again.
    /// </summary>
    internal Dictionary<string, (string, long, string?, string)> ReadIndexes()
    {
        var index = new Dictionary<string, (string, long, string?, string)>(StringComparer.Ordinal);
        // Deleting what does not verify is only safe inside the cache: a symlink planted as bytecode-v2 or as the
        // interpreter's directory would make every "*.index" of the directory it names a forgery to delete.
        if (!OwnDirectory(Path.GetDirectoryName(_cacheDir)!) || !OwnDirectory(_cacheDir) || !Directory.Exists(_cacheDir)) return index;
        StaleTempFiles.Clean(_cacheDir); // index temp files a killed build left
        foreach (var file in Directory.EnumerateFiles(_cacheDir, "*.index").Order(StringComparer.Ordinal))
        {
            List<IndexEntry>? entries;
            // Another build may delete a stale index between the listing and the read, or a planted one may be
            // unreadable: a miss (deleted like any index that does not verify), not an I/O error that fails the build.
            try { entries = ContentStore.IsRegularFile(file) && new FileInfo(file).Length <= MaxIndexBytes ? ReadIndex(file) : null; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { entries = null; }
            if (entries == null) { AtomicFile.TryDelete(file); continue; }
            try
            {
                foreach (var group in entries.GroupBy(e => e.Pack))
                    _store.RegisterPack(group.Key, group.Select(e => (e.PycSha256, e.Offset, e.Size)));
            }
            catch (CorruptCacheEntryException) { AtomicFile.TryDelete(file); continue; }
            foreach (var e in entries) index[e.Key] = (e.PycSha256, e.Size, file, e.Pack);
        }
        return index;
    }

    private sealed record IndexEntry(string Key, string PycSha256, string Pack, long Offset, long Size);

    // "key pycSha pack offset size" is at most 4 + 3 * 64 + 2 * 19 characters; the seal line is shorter.
    private const int MaxIndexLineLength = 256;

    /// <summary>
    /// Parses "key pycSha pack offset size" lines, then "seal &lt;hmac of the interpreter, the lines and each pack's
    /// length&gt;", line by line: the first line no index has ends the read (a planted file of many short lines is
    /// refused at its first, not split into memory whole). Null unless every line parses, the packs are there and
    /// the seal holds.
    /// </summary>
    private List<IndexEntry>? ReadIndex(string file)
    {
        using var reader = new StreamReader(file, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false, bufferSize: 1 << 16);
        using var body = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var entries = new List<IndexEntry>();
        string? seal = null;
        for (string? line; (line = reader.ReadLine()) != null;)
        {
            if (line.Length == 0) continue;
            if (seal != null || line.Length > MaxIndexLineLength) return null; // nothing follows the seal
            var f = line.Split(' ');
            if (f is ["seal", var mac]) { seal = mac; continue; }
            if (f.Length != 5 || !Sha256Hex.IsValid(f[0]) || !Sha256Hex.IsValid(f[1]) || !Sha256Hex.IsValid(f[2])
                || !long.TryParse(f[3], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var offset)
                || !long.TryParse(f[4], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size))
                return null;
            if (entries.Count > 0) body.AppendData("\n"u8);
            body.AppendData(Encoding.UTF8.GetBytes(line));
            entries.Add(new IndexEntry(f[0], f[1], f[2], offset, size));
        }
        if (seal == null || entries.Count == 0) return null;
        var packs = entries.Select(e => e.Pack).Distinct().Order(StringComparer.Ordinal).ToList();
        var lengths = packs.Select(_store.LengthOfPack).ToList();
        if (lengths.Any(l => l < 0)) return null; // a pack is gone (evicted): its .pyc are compiled again
        var packText = string.Join(" ", packs.Zip(lengths, (p, l) => $"{p}:{l}"));
        return _key.Verify(seal, SealPurpose, _identity, Convert.ToHexStringLower(body.GetHashAndReset()), packText) ? entries : null;
    }

    /// <summary>
    /// The packs an index names, for <c>harden cache</c> (which holds no key, so the seal is not checked: a forged
    /// index can only keep packs alive); null when it is not an index (a line no index has, or too long to be one).
    /// </summary>
    public static IReadOnlyList<string>? PacksNamedBy(Stream index)
    {
        using var reader = new StreamReader(index, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false, bufferSize: 1 << 16);
        var packs = new SortedSet<string>(StringComparer.Ordinal);
        long read = 0;
        for (string? line; (line = reader.ReadLine()) != null;)
        {
            read += line.Length + 1;
            if (line.Length > MaxIndexLineLength || read > MaxIndexBytes) return null;
            if (line.Length == 0 || line.StartsWith("seal ", StringComparison.Ordinal)) continue;
            var f = line.Split(' ');
            if (f.Length != 5 || !Sha256Hex.IsValid(f[2])) return null;
            packs.Add(f[2]);
        }
        return packs.ToList();
    }

    /// <summary>False while <paramref name="dir"/> is a symlink (planted in the cache; the link is removed, never what it names).</summary>
    private static bool OwnDirectory(string dir)
    {
        if (new FileInfo(dir).LinkTarget == null) return true;
        AtomicFile.TryDelete(dir); // the link only, never what it names
        return new FileInfo(dir).LinkTarget == null;
    }

    /// <summary>Writes the sealed index of one compile's pack (not fsync'd: a torn one fails its seal) and remembers it.</summary>
    private void WriteIndex(IReadOnlyList<(PythonSource Source, (string Sha256, long Size, long Offset) Pyc)> compiled, string packSha, long packLength)
    {
        var body = string.Join("\n", compiled.Select(c => string.Join(" ", KeyOf(c.Source), c.Pyc.Sha256, packSha,
            c.Pyc.Offset.ToString(System.Globalization.CultureInfo.InvariantCulture), c.Pyc.Size.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        var seal = _key.Seal(SealPurpose, _identity, Sha256Hex.Of(Encoding.UTF8.GetBytes(body)), $"{packSha}:{packLength}");
        if (OwnDirectory(Path.GetDirectoryName(_cacheDir)!) && OwnDirectory(_cacheDir)) // never written through a planted link
        {
            Directory.CreateDirectory(_cacheDir);
            AtomicFile.WriteAllText(Path.Combine(_cacheDir, packSha + ".index"), body + "\nseal " + seal + "\n", durable: false);
        }
        _index ??= new Dictionary<string, (string, long, string?, string)>(StringComparer.Ordinal);
        foreach (var (source, pyc) in compiled) _index[KeyOf(source)] = (pyc.Sha256, pyc.Size, null, packSha);
    }

    private IEnumerable<(int Index, CompiledSource Result)> Run(List<(int Index, PythonSource Source)> work, CancellationToken ct)
    {
        string root;
        using (Timings.Span("byte-code: write the interpreter's tree")) root = InterpreterRoot();
        var job = Directory.CreateTempSubdirectory("hi-bytecode-job-").FullName;
        try
        {
            // Every source, verified while read from the store, one after another into one file: the interpreters
            // read each from its offset (a file per module was a file to create and delete per module).
            var files = new List<object[]>();
            var sources = Path.Combine(job, "sources.bin");
            using (var output = new FileStream(sources, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
                foreach (var (_, source) in work)
                {
                    var offset = output.Position;
                    using (var input = _store.OpenVerified(source.Sha256, source.Size)) input.CopyTo(output);
                    files.Add([offset, output.Position - offset, "/" + source.ImagePath]);
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
            // Each interpreter writes its .pyc one after another into one file and says how long each is: one
            // file per module was a file to create, read and delete per module.
            var answers = shares.Where(items => items.Count > 0).Select((items, w) => Task.Run(() =>
                {
                    var request = Path.Combine(job, $"request-{w}.json");
                    var output = Path.Combine(job, $"out-{w}.bin");
                    File.WriteAllText(request, JsonSerializer.Serialize(new Dictionary<string, object>
                        { ["checked"] = Checked, ["sources"] = sources, ["out"] = output, ["files"] = items.Select(n => files[n]).ToList() }));
                    return (Items: items, Stdout: RunInterpreter(root, driver, request, ct), Output: output);
                }, ct)).ToArray();
            (List<int> Items, string Stdout, string Output)[] answered;
            using (Timings.Span($"byte-code: {answers.Length} interpreter(s) compile")) answered = Task.WhenAll(answers).GetAwaiter().GetResult();
            var outputs = new List<(List<int> Items, List<long> Sizes, string Output)>();
            foreach (var (items, stdout, output) in answered)
            {
                DriverResult result;
                try
                {
                    result = JsonSerializer.Deserialize<DriverResult>(stdout) ?? throw new JsonException("empty");
                    if (result.Sizes == null || result.Sizes.Count != items.Count) throw new JsonException($"{result.Sizes?.Count ?? 0} sizes for {items.Count} files");
                    foreach (var (n, error) in result.Errors)
                        errors[items[int.Parse(n, System.Globalization.CultureInfo.InvariantCulture)]] = error;
                }
                catch (Exception e) when (e is JsonException or FormatException or ArgumentOutOfRangeException)
                {
                    throw new HardenException($"byte-code: the Python {Version} compiler answered something unreadable ({e.Message}): {Tail(stdout)}");
                }
                var listed = items.Select((n, i) => errors.ContainsKey(n) ? 0 : result.Sizes[i]).ToList();
                var written = new FileInfo(output).Length;
                if (listed.Any(size => size < 0) || listed.Sum() != written)
                    throw new HardenException($"byte-code: the Python {Version} compiler wrote {written} bytes to {output} but listed other lengths; report this.");
                outputs.Add((items, listed, output));
            }
            CompiledCount += work.Count - errors.Count;
            using var storing = Timings.Span($"byte-code: store {work.Count - errors.Count} .pyc as one pack and its index");
            var stored = new (string Sha256, long Size, long Offset)[work.Count];
            if (errors.Count < work.Count)
            {
                // One .pyc at a time from each interpreter's file into the pack: inference-cpu's are tens of megabytes.
                using var pack = _store.NewPack();
                var buffer = Array.Empty<byte>();
                foreach (var (items, sizes, output) in outputs)
                {
                    using var file = new FileStream(output, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                    for (var i = 0; i < items.Count; i++)
                    {
                        if (errors.ContainsKey(items[i])) continue;
                        if (buffer.Length < sizes[i]) buffer = new byte[sizes[i]];
                        file.ReadExactly(buffer, 0, (int)sizes[i]);
                        stored[items[i]] = pack.Add(buffer.AsSpan(0, (int)sizes[i]));
                    }
                }
                var (packSha, packLength) = pack.Commit();
                WriteIndex(Enumerable.Range(0, work.Count).Where(n => !errors.ContainsKey(n)).Select(n => (work[n].Source, stored[n])).ToList(), packSha, packLength);
            }
            var results = work.Select((w, n) => (w.Index, errors.TryGetValue(n, out var error)
                ? new CompiledSource(w.Source, null, 0, error)
                : new CompiledSource(w.Source, stored[n].Sha256, stored[n].Size, null))).ToList();
            return results;
        }
        finally { Directory.Delete(job, recursive: true); }
    }

    private sealed record DriverResult(Dictionary<string, string> Errors, List<long>? Sizes);

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

    /// <summary>
    /// The interpreter's package tree, written once per build into a private temporary directory: the binaries and
    /// shared libraries as files, the standard library's .py in one zip (<c>usr/lib/python3X.zip</c>, first on the
    /// interpreter's own path, as in CPython's embeddable layout). Not written: glibc's gconv modules (iconv only;
    /// the compiler runs in C.UTF-8). Six hundred module files were most of the tree's cost to write.
    /// </summary>
    private string InterpreterRoot()
    {
        if (_root != null) return _root;
        var root = Directory.CreateTempSubdirectory("hi-bytecode-python-").FullName;
        try
        {
            var links = new List<(string Path, string Target)>();
            var files = new Dictionary<string, UnpackedEntry>(StringComparer.Ordinal);
            var modules = new SortedDictionary<string, UnpackedEntry>(StringComparer.Ordinal);
            var stdlib = $"usr/lib/python{Version}/";
            foreach (var p in _packages)
                foreach (var e in p.Entries)
                {
                    var rel = MergedUsr.Canonicalise(e.Path.Trim('/'));
                    // Only what the interpreter needs to start and compile; paths come from verified packages, still
                    // nothing is written outside the root (no "..") and symlinks come last, so none is written through.
                    if (rel.Split('/').Any(s => s is ".." or ".") || !(rel.StartsWith("usr/lib/", StringComparison.Ordinal) || rel.StartsWith("usr/bin/", StringComparison.Ordinal))
                        || rel.Contains("/gconv/", StringComparison.Ordinal))
                        continue;
                    var full = Path.Combine(root, rel);
                    switch (e.Type)
                    {
                        case FsNodeType.Directory: Directory.CreateDirectory(full); break;
                        case FsNodeType.Symlink: links.Add((full, e.LinkTarget!)); break;
                        // A later package's file of the same path wins, as in the layer.
                        case FsNodeType.File or FsNodeType.HardLink when e.Sha256 != null && rel.StartsWith(stdlib, StringComparison.Ordinal) && rel.EndsWith(".py", StringComparison.Ordinal):
                            modules[rel[stdlib.Length..]] = e;
                            break;
                        case FsNodeType.File or FsNodeType.HardLink when e.Sha256 != null:
                            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                            files[full] = e;
                            break;
                    }
                }
            var zip = Task.Run(() => WriteStandardLibraryZip(Path.Combine(root, "usr", "lib", "python" + Version.Replace(".", "", StringComparison.Ordinal) + ".zip"), modules));
            Parallel.ForEach(files, f =>
            {
                using (var input = _store.OpenVerified(f.Value.Sha256!, f.Value.Size))
                using (var output = File.Create(f.Key)) input.CopyTo(output);
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(f.Key, (UnixFileMode)(f.Value.Mode & 0b111_111_111) | UnixFileMode.UserRead | UnixFileMode.UserWrite);
            });
            zip.GetAwaiter().GetResult();
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
            throw;
        }
        return _root = root;
    }

    /// <summary>The standard library's modules, verified while read, stored (not compressed) in one zip.</summary>
    private void WriteStandardLibraryZip(string path, SortedDictionary<string, UnpackedEntry> modules)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        using var zip = new System.IO.Compression.ZipArchive(file, System.IO.Compression.ZipArchiveMode.Create);
        foreach (var (name, e) in modules)
        {
            using var input = _store.OpenVerified(e.Sha256!, e.Size);
            using var entry = zip.CreateEntry(name, System.IO.Compression.CompressionLevel.NoCompression).Open();
            input.CopyTo(entry);
        }
    }

    public void Dispose()
    {
        if (_root != null && Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
        _root = null;
    }

    /// <summary>
    /// Runs inside the image's interpreter: compiles each source (a slice of the request's "sources" file) with its
    /// in-image path to a PEP 552 .pyc (flags
    /// bit 0 = hash-based, bit 1 = check_source), writes them one after another to the request's "out" file, and
    /// reports each one's length and the files it could not compile.
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

        def compile_one(data, image_path):
            code = compile(data, image_path, "exec", dont_inherit=True, optimize=0)
            # Load and dump again: FLAG_REF then marks only objects the code really shares (gh-78274).
            body = marshal.dumps(marshal.loads(marshal.dumps(canonical(code, {}))))
            return MAGIC_NUMBER + flags + source_hash(data) + body

        # Code nested as deep as compile() and marshal accept must not stop the walk above (3 frames a level).
        sys.setrecursionlimit(10000)
        errors = {}
        sizes = []
        # Every .pyc one after another into one file; "Sizes" says how long each is (-1: not compiled).
        with open(request["sources"], "rb") as sources, open(request["out"], "wb") as out:
            for n, (offset, size, image_path) in enumerate(request["files"]):
                sources.seek(offset)
                data = sources.read(size)
                try:
                    pyc = compile_one(data, image_path)
                except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as e:
                    # Reported for this file (the build names it; allow: byteCodeErrors can exempt its package), not
                    # as a crash that takes the other modules of this interpreter with it.
                    errors[str(n)] = f"{type(e).__name__}: {e}"
                    sizes.append(-1)
                    continue
                out.write(pyc)
                sizes.append(len(pyc))
        json.dump({"Errors": errors, "Sizes": sizes}, sys.stdout)
        """;
}
