using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Docker.DotNet;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Oci;

namespace HardenImage.Deploy;

/// <summary>
/// `harden smoke`: loads each built image (per architecture this machine runs) into a real Docker engine and runs,
/// under the restrictions our pods have (read-only root, uid 65532, no capabilities, no-new-privileges, no network
/// or host loopback only, memory and pid limits, tmpfs /tmp), the checks the image declares plus the checks every
/// image must pass. Threats answered: Elevation of privilege (runs as 65532, no shell, no setuid files), Tampering
/// (a model server refuses a tampered model), Information disclosure (its logs carry no prompts or answers).
/// </summary>
public sealed class SmokeRunner(DockerEngine engine, SmokeOptions options)
{
    private readonly ISmokeRuntime _docker = new DockerSmokeRuntime(engine);
    private readonly SmokeOptions _options = options;

    public const string ConfigUserCheck = "config-user-65532";
    public const string NoSetuidCheck = "no-setuid-files";
    public const string RunsAsCheck = "runs-as-65532";
    public const string NoShellCheck = "no-shell";
    public const string LoadCheck = "load";
    public const string ArchitectureCheck = "architecture";
    public const string MakeModelCheck = "make-tiny-model";
    public const string GenerateCheck = "generate";
    public const string LogsCheck = "logs-without-bodies";
    public const string TamperCheck = "tampered-model-refused";

    private const string ShellMarker = "hi-smoke-shell-ran";

    /// <summary>The Debian name of the architecture this process runs on.</summary>
    public static string HostArchitecture() => RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "amd64",
        Architecture.Arm64 => "arm64",
        Architecture.Arm => "armhf",
        Architecture.X86 => "i386",
        Architecture.S390x => "s390x",
        Architecture.Ppc64le => "ppc64el",
        Architecture.RiscV64 => "riscv64",
        Architecture.LoongArch64 => "loong64",
        var other => other.ToString().ToLowerInvariant(),
    };

    /// <summary>A free loopback port (host-network containers share the machine's ports; also used by deploy --local).</summary>
    internal static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>The engine tag smoke loads an image under: named by content, so a kept image is reused safely.</summary>
    public static string TagFor(string image, string architecture, string configDigest) =>
        $"hardenimage-smoke/{image}:{architecture}-{Digest.Parse(configDigest).Hex[..12]}";

    public async Task<SmokeReport> RunAsync(IProgress<string>? progress = null, CancellationToken ct = default)
    {
        var buildJson = ArtifactPaths.BuildRecord(_options.ArtifactsDir);
        var manifest = BuildManifest.Load(buildJson);
        var set = ImageSet.Load(_options.ImagesDir);
        var reader = new OciLayoutReader(OciLayout.Open(ArtifactPaths.Layout(_options.ArtifactsDir)));
        var unknown = _options.Images.Where(n => manifest.Image(n) == null).ToList();
        if (unknown.Count > 0)
            throw new HardenException($"{buildJson}: no built image {string.Join(", ", unknown)} (built: {string.Join(", ", manifest.Images.Select(i => i.Name))}). "
                                      + $"Run 'harden build --image {unknown[0]}' first.");
        if (_options.ModelDir != null && !File.Exists(Path.Combine(_options.ModelDir, "model.pt")))
            throw new HardenException($"--model-dir {_options.ModelDir}: no model.pt there (a model directory holds model.pt and tokenizer.json).");
        var runnable = _options.RunnableArchitectures ?? [HostArchitecture()];
        var selected = _options.Images.Count == 0 ? manifest.Images : manifest.Images.Where(i => _options.Images.Contains(i.Name)).ToList();
        using var work = new WorkDir();
        var emulated = new Dictionary<string, EmulatedSmokeRuntime>(StringComparer.Ordinal);
        // One result list per image and architecture, in build.json order, whichever lane fills it. The engine's runs
        // and each emulated architecture's runs are separate lanes that run at the same time: emulation is one
        // CPU-bound qemu process, the engine's loads are mostly I/O, so together they take less wall time.
        var slots = new List<List<SmokeResult>>();
        var lanes = new Dictionary<string, List<Func<Task>>>(StringComparer.Ordinal);
        try
        {
            foreach (var image in selected)
            {
                foreach (var arch in image.Architectures)
                {
                    var slot = new List<SmokeResult>();
                    slots.Add(slot);
                    if (_options.Architectures != null && !_options.Architectures.Contains(arch.Architecture))
                    {
                        slot.Add(new SmokeResult(image.Name, arch.Architecture, ArchitectureCheck, SmokeStatus.Skipped,
                            $"not selected (--platform {string.Join(", ", _options.Architectures.Select(a => "linux/" + a))})", TimeSpan.Zero, SmokeRunners.None));
                        continue;
                    }
                    string? why = null;
                    var runtime = runnable.Contains(arch.Architecture) ? _docker : Emulated(arch.Architecture, emulated, work, out why);
                    if (runtime == null)
                    {
                        // --no-emulation is the user's explicit choice; a missing emulator under CI is a broken machine.
                        var fail = _options.RequireEveryArchitecture && _options.Emulate;
                        slot.Add(new SmokeResult(image.Name, arch.Architecture, ArchitectureCheck, fail ? SmokeStatus.Failed : SmokeStatus.Skipped,
                            $"this machine runs {string.Join("/", runnable)} natively and cannot emulate {arch.Architecture}: {why}" +
                            (fail ? " (CI=true: every built architecture must be smoke-tested; run 'bash .ci/services' as root)" : ""),
                            TimeSpan.Zero, SmokeRunners.None));
                        continue;
                    }
                    set.Images.TryGetValue(image.Name, out var definition);
                    var run = new ImageRun(this, runtime, reader, image, arch, definition, work, progress, slot);
                    var lane = runtime.Runner + "/" + arch.Architecture;
                    if (!lanes.TryGetValue(lane, out var queue)) lanes[lane] = queue = [];
                    queue.Add(() => run.RunAsync(ct));
                }
            }
            await Task.WhenAll(lanes.Values.Select(async queue => { foreach (var next in queue) await next(); }));
        }
        finally
        {
            foreach (var e in emulated.Values) e.Dispose();
        }
        var results = slots.SelectMany(s => s).ToList();
        return new SmokeReport(results);
    }

    /// <summary>The emulated runtime for a foreign architecture, or null with the reason (the row says it).</summary>
    private EmulatedSmokeRuntime? Emulated(string architecture, Dictionary<string, EmulatedSmokeRuntime> made, WorkDir work, out string? why)
    {
        why = null;
        if (made.TryGetValue(architecture, out var existing)) return existing;
        if (!_options.Emulate) { why = "emulation is off (--no-emulation)"; return null; }
        why = EmulatedSmokeRuntime.CannotEmulate(architecture, _options.EmulatorDirectory, EmulatedSmokeRuntime.IsRoot());
        if (why != null) return null;
        return made[architecture] = new EmulatedSmokeRuntime(architecture,
            Path.Combine(_options.EmulatorDirectory, EmulatedSmokeRuntime.EmulatorFileName(architecture)), work.NewDir("emulated-" + architecture));
    }

    /// <summary>Scratch space for one smoke run: the compiled probe, made and tampered models.</summary>
    private sealed class WorkDir : IDisposable
    {
        public string Root { get; } = Directory.CreateTempSubdirectory("hi-smoke-").FullName;
        private (string? Path, string? Why)? _probe;

        public (string? Path, string? Why) Probe() => _probe ??= SmokeProbe.TryCompile(Path.Combine(Root, "probe"));

        public string NewDir(string name) => Directory.CreateDirectory(Path.Combine(Root, name + "-" + Guid.NewGuid().ToString("N")[..8])).FullName;

        public void Dispose()
        {
            try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>The checks for one image and architecture.</summary>
    private sealed class ImageRun(SmokeRunner owner, ISmokeRuntime runtime, OciLayoutReader reader, BuiltImage image, BuiltArchitecture arch,
        ImageDefinition? definition, WorkDir work, IProgress<string>? progress, List<SmokeResult> results)
    {
        private readonly ISmokeRuntime _engine = runtime;
        private bool Emulated => _engine.Runner != SmokeRunners.Docker;
        private readonly SmokeOptions _options = owner._options;
        private string _tag = "";
        private SmokeLayerScan _scan = null!;
        private ContainerConfig _config = new();
        private string? _madeModelDir;

        private ContainerRunSpec Spec(long? memory = null) => new()
        {
            Image = _tag,
            MemoryBytes = memory ?? _options.MemoryBytes,
            Timeout = Emulated ? _options.EmulatedRunTimeout : _options.RunTimeout,
        };

        private bool HasPython => _scan.Exists("/usr/bin/python3");
        private bool HasTorch => _scan.Files.Keys.Any(k => k.StartsWith("usr/lib/python3/dist-packages/torch/", StringComparison.Ordinal));
        private string? EnvValue(string name) =>
            _config.Env?.FirstOrDefault(e => e.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..];

        public async Task RunAsync(CancellationToken ct)
        {
            var resolved = reader.Resolve(image.Name, new Platform { Architecture = arch.Architecture });
            if (resolved.Descriptor.Digest != arch.Manifest)
            {
                Add(LoadCheck, SmokeStatus.Failed, $"oci/ tags {image.Name} ({arch.Architecture}) as {resolved.Descriptor.Digest} but build.json says {arch.Manifest}: run 'harden build' again", TimeSpan.Zero);
                return;
            }
            _config = resolved.Config.Config ?? new ContainerConfig();
            await Check(ConfigUserCheck, () => Task.FromResult(ConfigUser()));
            Report($"{image.Name} ({arch.Architecture}): reading layers");
            await Check(NoSetuidCheck, () =>
            {
                _scan = SmokeLayerScan.Read(reader, resolved);
                var setuid = _scan.SetuidFiles();
                return Task.FromResult(setuid.Count == 0
                    ? (SmokeStatus.Passed, $"{_scan.Files.Count} paths in {resolved.Manifest.Layers.Count} layers, none setuid/setgid")
                    : (SmokeStatus.Failed, $"setuid/setgid: {string.Join(", ", setuid.Take(10))}{OptIn(definition?.Allow.Setuid, "setuid")}"));
            });
            if (_scan == null) return;
            // A kept image lives under the tag named by its content, for later runs. A run that removes its image
            // afterwards works under a tag of its own: removing it never pulls the image from under another run
            // (a parallel CI job, `harden trace`) that uses the same engine, and the image goes with its last tag.
            var config = resolved.Manifest.Config.Digest;
            var stable = TagFor(image.Name, arch.Architecture, config);
            _tag = _options.KeepImages ? stable : $"{stable}-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))}";
            Report($"{image.Name} ({arch.Architecture}): loading into the engine");
            var loaded = await Check(LoadCheck, async () =>
            {
                if (_options.KeepImages && await _engine.ImageIdAsync(_tag, ct) == config) return (SmokeStatus.Passed, $"{_tag} already loaded");
                if (!_options.KeepImages && await _engine.ImageIdAsync(config, ct) == config && await _engine.TagAsync(config, _tag, ct))
                    return (SmokeStatus.Passed, $"{config[..19]}… already loaded; tagged {_tag} for this run");
                var id = await _engine.LoadAsync(reader, resolved, image.Name, arch.Architecture, _tag, ct);
                return id == resolved.Manifest.Config.Digest
                    ? (SmokeStatus.Passed, $"loaded as {_tag} into {_engine.Describe}")
                    : (SmokeStatus.Failed, $"the engine's image id {id} differs from the config digest {resolved.Manifest.Config.Digest}");
            });
            if (!loaded.Passed) return;
            try
            {
                Report($"{image.Name} ({arch.Architecture}): universal checks");
                await Check(RunsAsCheck, () => RunsAs65532(ct));
                await Check(NoShellCheck, () => NoShell(ct));
                foreach (var check in definition?.Smoke.Where(c => c.Http == null) ?? [])
                {
                    Report($"{image.Name} ({arch.Architecture}): {check.Name}");
                    await Check(check.Name, () => CommandCheck(check, ct));
                }
                if (SmokeCuda.Libraries(_scan).Count > 0)
                {
                    Report($"{image.Name} ({arch.Architecture}): CUDA libraries");
                    await SmokeCuda.RunAsync(_engine, Spec(), _scan, work.NewDir("cuda"), Check, ct);
                }
                if (Emulated && _options.EmulatedWorkload == EmulatedWorkload.Light && EnvValue("MODEL_DIR") != null && _options.ModelDir == null)
                    await EmulatedForwardPass(ct);
                else
                    await ServerChecks(ct);
            }
            finally
            {
                if (!_options.KeepImages) await _engine.RemoveImageAsync(_tag, CancellationToken.None);
            }
        }

        private (SmokeStatus, string) ConfigUser()
        {
            var user = _config.User ?? "";
            return user is "65532" or "65532:65532"
                ? (SmokeStatus.Passed, $"config User {user}")
                : (SmokeStatus.Failed, $"config User is '{user}', expected 65532:65532 (set user: in {definition?.File ?? image.Name + ".yaml"})");
        }

        private static string OptIn(bool? allowed, string what) =>
            allowed == true ? $" (the image opts in with allow.{what}: true; every image must still pass this check)" : "";

        private async Task<(SmokeStatus, string)> RunsAs65532(CancellationToken ct)
        {
            ContainerRunSpec spec;
            string how;
            if (HasPython)
            {
                spec = Spec() with { Entrypoint = ["/usr/bin/python3", "-c", SmokeProbe.PythonSource], Cmd = [] };
                how = "python probe";
            }
            else if (Emulated)
            {
                return (SmokeStatus.Skipped, $"no interpreter in the image, and the static probe is compiled for this host ({HostArchitecture()}), not {arch.Architecture}; config User and the layer scan still ran");
            }
            else
            {
                var (probe, why) = work.Probe();
                if (probe == null)
                    return (SmokeStatus.Skipped, $"no interpreter in the image and {why}; config User and the layer scan still ran");
                spec = Spec() with
                {
                    Entrypoint = [SmokeProbe.MountPoint + "/probe"], Cmd = [],
                    ReadOnlyMounts = new Dictionary<string, string> { [Path.GetDirectoryName(probe)!] = SmokeProbe.MountPoint },
                };
                how = "static probe";
            }
            var run = await _engine.RunAsync(spec, ct);
            if (run.TimedOut || run.ExitCode != 0 || !run.StdOut.Contains("done=1", StringComparison.Ordinal))
                return (SmokeStatus.Failed, $"{how} exited {run.ExitCode}{(run.TimedOut ? " (timed out)" : "")}: {SmokeInference.Truncate(run.StdErr + run.StdOut)}");
            var report = ProbeReport.Parse(run.StdOut);
            var problems = report.Problems();
            return problems.Count == 0
                ? (SmokeStatus.Passed, $"{how}: {report.Summary}")
                : (SmokeStatus.Failed, $"{how}: {string.Join("; ", problems)}");
        }

        private async Task<(SmokeStatus, string)> NoShell(CancellationToken ct)
        {
            ContainerRunResult run;
            try
            {
                run = await _engine.RunAsync(Spec() with { Entrypoint = ["/bin/sh"], Cmd = ["-c", "echo " + ShellMarker], Timeout = TimeSpan.FromMinutes(1) }, ct);
            }
            catch (DockerApiException e) when (IsExecFailure(e.Message))
            {
                return (SmokeStatus.Passed, "the engine could not start /bin/sh: " + FirstLine(e.Message));
            }
            var output = run.StdOut + run.StdErr;
            if (output.Contains(ShellMarker, StringComparison.Ordinal) || run.ExitCode == 0)
                return (SmokeStatus.Failed, $"/bin/sh executed (exit {run.ExitCode}){OptIn(definition?.Allow.Shell, "shell")}");
            return run.ExitCode is 126 or 127
                ? (SmokeStatus.Passed, $"/bin/sh could not be executed (exit {run.ExitCode})")
                : (SmokeStatus.Failed, $"something ran as /bin/sh and exited {run.ExitCode}: {SmokeInference.Truncate(output)}");
        }

        private static bool IsExecFailure(string message) =>
            new[] { "no such file", "not found", "exec format error", "permission denied" }
                .Any(s => message.Contains(s, StringComparison.OrdinalIgnoreCase));

        private async Task<(SmokeStatus, string)> CommandCheck(SmokeCheck check, CancellationToken ct)
        {
            var run = await _engine.RunAsync(Spec(HasTorch ? _options.ModelMemoryBytes : null) with { Cmd = check.Command }, ct);
            var output = run.StdOut + run.StdErr;
            if (run.TimedOut) return (SmokeStatus.Failed, $"timed out after {_options.RunTimeout}: {SmokeInference.Truncate(output)}");
            if (run.ExitCode != check.ExitCode)
                return (SmokeStatus.Failed, $"exit {run.ExitCode}, expected {check.ExitCode}: {SmokeInference.Truncate(output)}");
            if (check.OutputContains != null && !output.Contains(check.OutputContains, StringComparison.Ordinal))
                return (SmokeStatus.Failed, $"output lacks '{check.OutputContains}': {SmokeInference.Truncate(output)}");
            return (SmokeStatus.Passed, $"exit {run.ExitCode}" + (check.OutputContains != null ? $", output has '{check.OutputContains}'" : ""));
        }

        /// <summary>HTTP probes, and for model servers generation, log hygiene and tamper refusal: one server start.</summary>
        private async Task ServerChecks(CancellationToken ct)
        {
            var http = definition?.Smoke.Where(c => c.Http != null).ToList() ?? [];
            var modelMount = EnvValue("MODEL_DIR");
            if (http.Count == 0 && modelMount == null) return;
            string? modelDir = null;
            var knownAnswer = false;
            if (modelMount != null)
            {
                if (_options.ModelDir != null) modelDir = Path.GetFullPath(_options.ModelDir);
                else
                {
                    Report($"{image.Name} ({arch.Architecture}): making a tiny model with the image's torch");
                    var made = await Check(MakeModelCheck, () => MakeTinyModel(ct));
                    if (!made.Passed)
                    {
                        foreach (var c in http) Add(c.Name, SmokeStatus.Failed, "not run: the server needs a model and none could be made (see make-tiny-model)", TimeSpan.Zero);
                        return;
                    }
                    modelDir = _madeModelDir;
                    knownAnswer = true;
                }
            }
            var usesPort = EnvValue("PORT") != null;
            var port = usesPort ? FreePort() : 0;
            // Smoke made (or was given) the model: it pins what it has, as harden deploy pins a packed model.
            var (manifest, pin) = modelDir != null ? ModelPinning.DescribeDirectory(modelDir) : ([], "");
            var env = modelDir != null ? new Dictionary<string, string>(ModelPinning.Environment(pin, manifest)) : new Dictionary<string, string>();
            // The engine has no bridge: servers share the host network, so keep them on loopback (Information disclosure).
            if (usesPort) { env["PORT"] = port.ToString(); env["HOST"] = "127.0.0.1"; }
            foreach (var (k, v) in _options.ServerEnv) env[k] = v;
            var spec = Spec(modelDir != null ? _options.ModelMemoryBytes : null) with
            {
                Network = "host",
                Env = env,
                ReadOnlyMounts = modelDir != null ? new Dictionary<string, string> { [modelDir] = modelMount! } : new Dictionary<string, string>(),
            };
            Report($"{image.Name} ({arch.Architecture}): starting the server");
            using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            var started = Stopwatch.StartNew();
            await using (var server = await _engine.StartAsync(spec, ct))
            {
                foreach (var check in http)
                {
                    var p = usesPort ? port : check.Port;
                    await Check(check.Name, () => PollAsync(client, server, new Uri($"http://127.0.0.1:{p}{check.Http}"), started, ct));
                }
                if (modelDir != null)
                {
                    var baseUri = new Uri($"http://127.0.0.1:{port}");
                    var ready = await Check(GenerateCheck, async () =>
                    {
                        if (!usesPort) return (SmokeStatus.Failed, "the image serves a model but reads no PORT: cannot find its address");
                        var (status, detail) = await PollAsync(client, server, new Uri(baseUri, "/readyz"), started, ct);
                        if (status != SmokeStatus.Passed) return (status, detail);
                        var (ok, what) = await SmokeInference.GenerateAsync(client, baseUri, knownAnswer, ct);
                        return (ok ? SmokeStatus.Passed : SmokeStatus.Failed, what);
                    });
                    await Check(LogsCheck, async () =>
                    {
                        if (!ready.Passed) return (SmokeStatus.Failed, "not checked: generation failed");
                        var (o, e) = await server.LogsAsync(ct);
                        var logs = o + e;
                        if (logs.Contains(SmokeInference.Prompt, StringComparison.Ordinal) || (knownAnswer && logs.Contains(SmokeInference.ExpectedAnswer, StringComparison.Ordinal)))
                            return (SmokeStatus.Failed, "the server logged the prompt or the generated text");
                        var requests = SmokeInference.Events(logs, "request").Count;
                        return requests > 0
                            ? (SmokeStatus.Passed, $"{requests} JSON request log lines, none with the prompt or the answer")
                            : (SmokeStatus.Failed, $"no JSON 'request' log line: {SmokeInference.Truncate(logs)}");
                    });
                }
                if (_options.WhileServing != null && DockerSmokeRuntime.EngineContainer(server) is { } engineServer) await _options.WhileServing(engineServer, ct);
            }
            if (modelDir != null) await Check(TamperCheck, () => TamperedModelRefused(modelDir, modelMount!, ModelPinning.Environment(pin, manifest), ct));
        }

        /// <summary>
        /// The light emulated workload for a model server: one process makes the tiny model and runs the server's greedy
        /// generation (the same forward passes, no HTTP server), so only one emulated PyTorch import is paid.
        /// </summary>
        private async Task EmulatedForwardPass(CancellationToken ct)
        {
            Report($"{image.Name} ({arch.Architecture}): emulated tiny model and forward passes");
            var made = await Check(MakeModelCheck, async () =>
            {
                if (!HasPython || !HasTorch)
                    return (SmokeStatus.Failed, $"the image serves a model (MODEL_DIR) but has no {(HasPython ? "torch" : "python3")} to make a test model; pass --model-dir DIR");
                var scripts = work.NewDir("scripts");
                File.WriteAllText(Path.Combine(scripts, "make_tiny_model.py"), SmokeInference.MakeTinyModelPython);
                File.WriteAllText(Path.Combine(scripts, "generate.py"), SmokeInference.GeneratePython);
                var output = work.NewDir("model");
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(output, (UnixFileMode)Convert.ToInt32("777", 8));
                var run = await _engine.RunAsync(Spec(_options.ModelMemoryBytes) with
                {
                    Entrypoint = ["/usr/bin/python3", SmokeProbe.MountPoint + "/generate.py", "/out"], Cmd = [],
                    ReadOnlyMounts = new Dictionary<string, string> { [scripts] = SmokeProbe.MountPoint },
                    WritableMounts = new Dictionary<string, string> { [output] = "/out" },
                }, ct);
                _generated = run;
                if (run.ExitCode != 0 || !run.StdOut.Contains("tiny-model-written", StringComparison.Ordinal))
                    return (SmokeStatus.Failed, $"generate.py exited {run.ExitCode}{(run.TimedOut ? " (timed out)" : "")}: {SmokeInference.Truncate(run.StdErr + run.StdOut, 600)}");
                return (SmokeStatus.Passed, $"TorchScript model ({new FileInfo(Path.Combine(output, "model.pt")).Length} bytes), emulated");
            });
            await Check(GenerateCheck, () =>
            {
                if (!made.Passed || _generated == null) return Task.FromResult((SmokeStatus.Failed, "not run: no tiny model (see make-tiny-model)"));
                var text = _generated.StdOut.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("generated=", StringComparison.Ordinal))?["generated=".Length..];
                return Task.FromResult(text == SmokeInference.ExpectedAnswer
                    ? (SmokeStatus.Passed, $"emulated light workload: the tiny model's forward passes generated '{text}' in-process (no HTTP server; --emulated-workload full runs the server checks)")
                    : (SmokeStatus.Failed, $"the tiny model answered '{text}', expected '{SmokeInference.ExpectedAnswer}': {SmokeInference.Truncate(_generated.StdErr + _generated.StdOut)}"));
            });
        }

        private ContainerRunResult? _generated;

        private async Task<(SmokeStatus, string)> MakeTinyModel(CancellationToken ct)
        {
            if (!HasPython || !HasTorch)
                return (SmokeStatus.Failed, $"the image serves a model (MODEL_DIR) but has no {(HasPython ? "torch" : "python3")} to make a test model; pass --model-dir DIR");
            var scripts = work.NewDir("scripts");
            File.WriteAllText(Path.Combine(scripts, "make_tiny_model.py"), SmokeInference.MakeTinyModelPython);
            var output = work.NewDir("model");
            // Written by uid 65532 in the container: the one writable mount of the whole smoke run.
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(output, (UnixFileMode)Convert.ToInt32("777", 8));
            var run = await _engine.RunAsync(Spec(_options.ModelMemoryBytes) with
            {
                Entrypoint = ["/usr/bin/python3", SmokeProbe.MountPoint + "/make_tiny_model.py", "/out"], Cmd = [],
                ReadOnlyMounts = new Dictionary<string, string> { [scripts] = SmokeProbe.MountPoint },
                WritableMounts = new Dictionary<string, string> { [output] = "/out" },
            }, ct);
            if (run.ExitCode != 0 || !File.Exists(Path.Combine(output, "model.pt")))
                return (SmokeStatus.Failed, $"make_tiny_model.py exited {run.ExitCode}{(run.TimedOut ? " (timed out)" : "")}: {SmokeInference.Truncate(run.StdErr + run.StdOut, 600)}");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(output, (UnixFileMode)Convert.ToInt32("755", 8));
            _madeModelDir = output;
            if (_options.KeepMadeModelDir is { } keep) KeepCopy(output, keep);
            return (SmokeStatus.Passed, $"TorchScript model ({new FileInfo(Path.Combine(output, "model.pt")).Length} bytes) in {output}");
        }

        /// <summary>Replaces <paramref name="keep"/> with a copy of the made model (staged beside it, then renamed).</summary>
        private static void KeepCopy(string made, string keep)
        {
            var staging = keep + $".tmp-{Guid.NewGuid():N}";
            Directory.CreateDirectory(staging);
            foreach (var file in Directory.EnumerateFiles(made)) File.Copy(file, Path.Combine(staging, Path.GetFileName(file)));
            if (Directory.Exists(keep)) Directory.Delete(keep, recursive: true);
            Directory.Move(staging, keep);
        }

        private async Task<(SmokeStatus, string)> TamperedModelRefused(string modelDir, string modelMount, IReadOnlyDictionary<string, string> pin, CancellationToken ct)
        {
            var tampered = work.NewDir("tampered");
            var victim = SmokeInference.Tamper(modelDir, tampered);
            var run = await _engine.RunAsync(Spec(_options.ModelMemoryBytes) with
            {
                ReadOnlyMounts = new Dictionary<string, string> { [tampered] = modelMount },
                Env = new Dictionary<string, string>(pin),
                // Emulated PyTorch needs minutes before it can even read the manifest.
                Timeout = Emulated ? _options.EmulatedRunTimeout : TimeSpan.FromMinutes(2),
            }, ct);
            var logs = run.StdErr + run.StdOut;
            var refused = SmokeInference.Events(logs, SmokeInference.IntegrityFailedEvent);
            if (run.TimedOut) return (SmokeStatus.Failed, $"the server kept running with a tampered {victim}: {SmokeInference.Truncate(logs)}");
            if (run.ExitCode == 0 || refused.Count == 0 || SmokeInference.Events(logs, "model_loaded").Count > 0)
                return (SmokeStatus.Failed, $"exit {run.ExitCode}, no '{SmokeInference.IntegrityFailedEvent}' log line before loading: {SmokeInference.Truncate(logs)}");
            return (SmokeStatus.Passed, $"one byte of {victim} flipped: exit {run.ExitCode}, {refused[0].ToJsonString()}");
        }

        private async Task<(SmokeStatus, string)> PollAsync(HttpClient client, ISmokeContainer server, Uri uri, Stopwatch started, CancellationToken ct)
        {
            var last = "no answer";
            while (true)
            {
                try
                {
                    using var response = await client.GetAsync(uri, ct);
                    if (response.StatusCode == HttpStatusCode.OK)
                        return (SmokeStatus.Passed, $"GET {uri.PathAndQuery} → 200 after {started.Elapsed.TotalSeconds:0.0} s");
                    last = $"status {(int)response.StatusCode}";
                }
                catch (HttpRequestException e) { last = e.Message; }
                catch (TaskCanceledException) when (!ct.IsCancellationRequested) { last = "request timed out"; }
                var exit = await server.ExitCodeAsync(ct);
                if (exit != null)
                {
                    var (o, e) = await server.LogsAsync(ct);
                    return (SmokeStatus.Failed, $"the server exited {exit} before GET {uri.PathAndQuery} answered: {SmokeInference.Truncate(e + o, 600)}");
                }
                var limit = Emulated && _options.EmulatedRunTimeout > _options.HttpTimeout ? _options.EmulatedRunTimeout : _options.HttpTimeout;
                if (started.Elapsed > limit)
                    return (SmokeStatus.Failed, $"no 200 from GET {uri} within {limit.TotalSeconds:0} s ({last})");
                await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
            }
        }

        private void Report(string status) => progress?.Report(status);

        private void Add(string check, SmokeStatus status, string detail, TimeSpan duration) =>
            results.Add(new SmokeResult(image.Name, arch.Architecture, check, status, detail, duration, _engine.Runner));

        /// <summary>Runs one check, timing it; engine and HTTP errors become a failed result that says what broke.</summary>
        private async Task<SmokeResult> Check(string name, Func<Task<(SmokeStatus, string)>> body)
        {
            var sw = Stopwatch.StartNew();
            SmokeStatus status;
            string detail;
            try { (status, detail) = await body(); }
            catch (Exception e) when (e is DockerApiException or HttpRequestException or HardenException or IOException or TimeoutException)
            {
                (status, detail) = (SmokeStatus.Failed, $"{e.GetType().Name}: {FirstLine(e.Message)}");
            }
            var result = new SmokeResult(image.Name, arch.Architecture, name, status, detail, sw.Elapsed, _engine.Runner);
            results.Add(result);
            return result;
        }

        private static string FirstLine(string s) => SmokeInference.Truncate(s.Split('\n')[0]);
    }
}
