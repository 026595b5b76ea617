using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace HardenImage.Deploy;

/// <summary>
/// The CUDA half of `harden smoke`, for any image that carries CUDA runtime libraries (lib{cu,nv}*.so.N in the
/// multiarch directory). One run of the image's own python3 with a script mounted read-only (never shipped): every
/// library loads by soname through the dynamic loader (ctypes), <c>cudaRuntimeGetVersion</c> answers, and
/// <c>cudaGetDeviceCount</c> either fails cleanly with a named cudaError (no driver / no device: the normal case on a
/// build machine) or finds a GPU, and then a cuBLAS SGEMM runs on it and is checked against a CPU product.
/// The driver library (libcuda.so.1) must come from the node, never from the image (threat: Tampering — a
/// driver library shipped in an image would run against whatever kernel module the node has).
/// </summary>
public static partial class SmokeCuda
{
    public const string LoadCheck = "cuda-libraries-load";
    public const string RuntimeVersionCheck = "cuda-runtime-version";
    public const string DeviceQueryCheck = "cuda-device-query";
    public const string SgemmCheck = "cublas-sgemm";
    public const string NoDriverCheck = "cuda-driver-not-shipped";

    /// <summary>cudaError values that mean "this machine has no usable driver or device" (CUDA 12 runtime API).</summary>
    public static readonly IReadOnlyDictionary<int, string> NoDeviceErrors = new Dictionary<int, string>
    {
        [35] = "cudaErrorInsufficientDriver",
        [100] = "cudaErrorNoDevice",
        [999] = "cudaErrorUnknown",
    };

    [GeneratedRegex(@"^usr/lib/[a-z0-9_]+-linux-gnu[a-z]*/(lib(?:cu|nv)[A-Za-z0-9_-]*\.so\.[0-9]+)$")]
    private static partial Regex SonamePath();

    /// <summary>The CUDA libraries of the image, by soname (file or symlink), sorted; the driver's libcuda.so.1 excluded.</summary>
    public static IReadOnlyList<string> Libraries(SmokeLayerScan scan) =>
        scan.Files.Keys.Select(k => SonamePath().Match(k)).Where(m => m.Success).Select(m => m.Groups[1].Value)
            .Where(n => !IsDriverLibrary(n)).Distinct().Order(StringComparer.Ordinal).ToList();

    /// <summary>Libraries the NVIDIA driver provides (the container runtime mounts them from the node).</summary>
    public static bool IsDriverLibrary(string soname) =>
        soname.StartsWith("libcuda.so", StringComparison.Ordinal) || soname.StartsWith("libnvidia-", StringComparison.Ordinal)
        || soname.StartsWith("libnvcuvid.so", StringComparison.Ordinal) || soname.StartsWith("libnvoptix.so", StringComparison.Ordinal);

    public delegate Task<SmokeResult> CheckRunner(string name, Func<Task<(SmokeStatus, string)>> body);

    /// <summary>Runs the CUDA checks in one container run and turns its JSON lines into results.</summary>
    public static async Task RunAsync(ISmokeRuntime runtime, ContainerRunSpec spec, SmokeLayerScan scan, string scriptsDir,
        CheckRunner check, CancellationToken ct)
    {
        var driver = scan.Files.Keys.Where(k => SonamePath().Match(k) is { Success: true } m && IsDriverLibrary(m.Groups[1].Value)).ToList();
        await check(NoDriverCheck, () => Task.FromResult(driver.Count == 0
            ? (SmokeStatus.Passed, "no libcuda/libnvidia-* in the image: the node's driver is mounted at run time")
            : (SmokeStatus.Failed, $"the image ships driver libraries {string.Join(", ", driver)}; they must come from the node (exclude the package that brings them)")));
        var libraries = Libraries(scan);
        File.WriteAllText(Path.Combine(scriptsDir, "cuda_smoke.py"), Python);
        ContainerRunResult? run = null;
        var lines = new List<JsonObject>();
        await check(LoadCheck, async () =>
        {
            run = await runtime.RunAsync(spec with
            {
                Entrypoint = ["/usr/bin/python3", SmokeProbe.MountPoint + "/cuda_smoke.py", .. libraries], Cmd = [],
                ReadOnlyMounts = new Dictionary<string, string> { [scriptsDir] = SmokeProbe.MountPoint },
                MemoryBytes = Math.Max(spec.MemoryBytes, 2L << 30),
            }, ct);
            lines = Parse(run.StdOut);
            var loads = lines.Where(l => l["check"]?.GetValue<string>() == "load").ToList();
            var failed = loads.Where(l => l["ok"]?.GetValue<bool>() != true).Select(l => $"{l["lib"]}: {l["error"]}").ToList();
            if (run.TimedOut || loads.Count != libraries.Count || failed.Count > 0)
                return (SmokeStatus.Failed, failed.Count > 0
                    ? $"{failed.Count} of {libraries.Count} did not load: {SmokeInference.Truncate(string.Join("; ", failed), 600)}"
                    : $"cuda_smoke.py exited {run.ExitCode}{(run.TimedOut ? " (timed out)" : "")}: {SmokeInference.Truncate(run.StdErr + run.StdOut, 600)}");
            return (SmokeStatus.Passed, $"{libraries.Count} loaded by soname: {string.Join(", ", libraries)}");
        });
        await check(RuntimeVersionCheck, () =>
        {
            var v = lines.FirstOrDefault(l => l["check"]?.GetValue<string>() == "runtime_version");
            if (v == null) return Task.FromResult((SmokeStatus.Failed, $"no answer from cudaRuntimeGetVersion: {Tail(run)}"));
            var code = v["error"]?.GetValue<int>() ?? -1;
            var version = v["version"]?.GetValue<int>() ?? 0;
            return Task.FromResult(code == 0 && version > 0
                ? (SmokeStatus.Passed, $"cudaRuntimeGetVersion = {version} (CUDA {version / 1000}.{version % 1000 / 10})")
                : (SmokeStatus.Failed, $"cudaRuntimeGetVersion returned {code} ({v["name"]}), version {version}"));
        });
        var device = lines.FirstOrDefault(l => l["check"]?.GetValue<string>() == "device_count");
        await check(DeviceQueryCheck, () =>
        {
            if (device == null) return Task.FromResult((SmokeStatus.Failed, $"no answer from cudaGetDeviceCount: {Tail(run)}"));
            var code = device["error"]?.GetValue<int>() ?? -1;
            var count = device["count"]?.GetValue<int>() ?? 0;
            if (code == 0 && count > 0) return Task.FromResult((SmokeStatus.Passed, $"{count} device(s): {device["device"]}"));
            return Task.FromResult(NoDeviceErrors.TryGetValue(code, out var expected) && device["name"]?.GetValue<string>() == expected
                ? (SmokeStatus.Passed, $"no driver/device, failed cleanly: {expected} ({code}): {device["message"]}")
                : (SmokeStatus.Failed, $"cudaGetDeviceCount returned {code} ({device["name"]}: {device["message"]}), count {count}; expected a device or one of {string.Join(", ", NoDeviceErrors.Select(e => $"{e.Value} ({e.Key})"))}"));
        });
        await check(SgemmCheck, () =>
        {
            var sgemm = lines.FirstOrDefault(l => l["check"]?.GetValue<string>() == "sgemm");
            if (sgemm == null)
                return Task.FromResult(device != null && (device["error"]?.GetValue<int>() ?? -1) != 0
                    ? (SmokeStatus.Skipped, $"could not run: no GPU and driver here ({device["name"]}); run smoke on a GPU node with the NVIDIA container runtime to check cuBLAS numerically")
                    : (SmokeStatus.Failed, $"a device was found but no SGEMM result came back: {Tail(run)}"));
            return Task.FromResult(sgemm["ok"]?.GetValue<bool>() == true
                ? (SmokeStatus.Passed, $"cublasSgemm {sgemm["n"]}x{sgemm["n"]} on {device?["device"]}: max |GPU-CPU| = {sgemm["max_error"]}")
                : (SmokeStatus.Failed, $"cublasSgemm: {sgemm["error"]}"));
        });
    }

    private static string Tail(ContainerRunResult? run) =>
        run == null ? "not run" : $"exit {run.ExitCode}: {SmokeInference.Truncate(run.StdErr + run.StdOut, 400)}";

    private static List<JsonObject> Parse(string stdout) =>
        stdout.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith('{'))
            .Select(l => { try { return JsonNode.Parse(l) as JsonObject; } catch (System.Text.Json.JsonException) { return null; } })
            .OfType<JsonObject>().ToList();

    /// <summary>argv: sonames. Prints one JSON object per line; never raises past a check (each says what failed).</summary>
    public const string Python = """
        import ctypes, json, sys

        def say(**kw):
            print(json.dumps(kw), flush=True)

        libs = {}
        for name in sys.argv[1:]:
            try:
                libs[name] = ctypes.CDLL(name)
                say(check="load", lib=name, ok=True)
            except OSError as e:
                say(check="load", lib=name, ok=False, error=str(e))

        rt = next((l for n, l in libs.items() if n.startswith("libcudart.so.")), None)
        if rt is None:
            say(check="runtime_version", error=-1, name="no libcudart", version=0)
            sys.exit(0)
        rt.cudaGetErrorName.restype = ctypes.c_char_p
        rt.cudaGetErrorString.restype = ctypes.c_char_p
        def err(code):
            return rt.cudaGetErrorName(code).decode(), rt.cudaGetErrorString(code).decode()

        v = ctypes.c_int(0)
        code = rt.cudaRuntimeGetVersion(ctypes.byref(v))
        say(check="runtime_version", error=code, name=err(code)[0], version=v.value)

        count = ctypes.c_int(0)
        code = rt.cudaGetDeviceCount(ctypes.byref(count))
        if code != 0 or count.value == 0:
            name, message = err(code)
            say(check="device_count", error=code, name=name, message=message, count=count.value)
            sys.exit(0)
        prop = ctypes.create_string_buffer(4096)
        rt.cudaGetDeviceProperties(prop, 0)
        say(check="device_count", error=0, count=count.value, device=prop.raw[:256].split(b"\0", 1)[0].decode(errors="replace"))

        # cuBLAS SGEMM, column-major, checked against the same product computed here in Python.
        try:
            blas = next(l for n, l in libs.items() if n.startswith("libcublas.so."))
            n = 32
            a = [((i * 7 + 3) % 11) / 10.0 for i in range(n * n)]
            b = [((i * 5 + 1) % 13) / 10.0 for i in range(n * n)]
            F = ctypes.c_float * (n * n)
            ha, hb, hc = F(*a), F(*b), F()
            size = ctypes.c_size_t(n * n * 4)
            da, db, dc = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
            for d in (da, db, dc):
                c = rt.cudaMalloc(ctypes.byref(d), size)
                if c != 0: raise RuntimeError("cudaMalloc: %s" % (err(c),))
            for d, h in ((da, ha), (db, hb)):
                c = rt.cudaMemcpy(d, h, size, 1)
                if c != 0: raise RuntimeError("cudaMemcpy to device: %s" % (err(c),))
            handle = ctypes.c_void_p()
            c = blas.cublasCreate_v2(ctypes.byref(handle))
            if c != 0: raise RuntimeError("cublasCreate_v2 status %d" % c)
            one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)
            c = blas.cublasSgemm_v2(handle, 0, 0, n, n, n, ctypes.byref(one), da, n, db, n, ctypes.byref(zero), dc, n)
            if c != 0: raise RuntimeError("cublasSgemm_v2 status %d" % c)
            c = rt.cudaMemcpy(hc, dc, size, 2)
            if c != 0: raise RuntimeError("cudaMemcpy to host: %s" % (err(c),))
            worst = 0.0
            for j in range(n):
                for i in range(n):
                    want = sum(a[i + k * n] * b[k + j * n] for k in range(n))
                    worst = max(worst, abs(hc[i + j * n] - want))
            blas.cublasDestroy_v2(handle)
            say(check="sgemm", ok=worst < 1e-3, n=n, max_error=worst, error=None if worst < 1e-3 else "max error %g" % worst)
        except Exception as e:
            say(check="sgemm", ok=False, n=0, max_error=None, error="%s: %s" % (type(e).__name__, e))
        """;
}
