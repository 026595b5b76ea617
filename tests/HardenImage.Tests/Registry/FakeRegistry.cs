using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using HardenImage.Oci;
using HardenImage.Registry;

namespace HardenImage.Tests.Registry;

/// <summary>How a <see cref="FakeRegistry"/> misbehaves.</summary>
public sealed record FakeRegistryMode
{
    /// <summary>ECR: PATCH answers 201, chunks other than the last must be ≥ 5 MiB, unknown repositories drop the POST.</summary>
    public bool Ecr { get; init; }

    /// <summary>A tag once set cannot move (ECR tag immutability).</summary>
    public bool ImmutableTags { get; init; }

    /// <summary>Demand Bearer tokens from /token on the same server, issued for these Basic credentials (null: anonymous tokens).</summary>
    public bool Bearer { get; init; }
    public (string User, string Password)? TokenCredentials { get; init; }
    public int TokenLifetimeSeconds { get; init; } = 300;
    /// <summary>The clock that stamps tokens' issued_at (a test's fake clock, so expiry never races real time).</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;
}

/// <summary>
/// An in-memory subset of the distribution API on loopback, for behaviours the real registry does not show:
/// ECR's quirks and a Bearer token flow. Only what the pusher uses is implemented.
/// </summary>
public sealed partial class FakeRegistry : IDisposable, IRepositoryCreator
{
    private const int EcrMinChunk = 5 * 1024 * 1024;
    private readonly LoopbackHttpServer _server;
    private readonly ConcurrentDictionary<string, byte[]> _blobs = new();
    private readonly ConcurrentDictionary<string, (byte[] Bytes, string MediaType)> _manifests = new();
    private readonly ConcurrentDictionary<string, Upload> _uploads = new();
    private readonly ConcurrentDictionary<string, string> _tokens = new();
    private int _tokenCounter;

    private sealed class Upload(string repository)
    {
        public string Repository { get; } = repository;
        public MemoryStream Data { get; } = new();
        public long LastChunk { get; set; } = -1;

        /// <summary>ECR: the Range it reports, which stops at the end of the first chunk.</summary>
        public long FirstChunkEnd { get; set; } = -1;
    }

    private int _patches;

    public FakeRegistry(FakeRegistryMode mode)
    {
        Mode = mode;
        _server = new LoopbackHttpServer(HandleAsync);
    }

    public FakeRegistryMode Mode { get; }
    public string Authority => _server.Authority;
    public ConcurrentDictionary<string, bool> Repositories { get; } = new();
    public ConcurrentQueue<string> Requests { get; } = new();
    public int TokenRequests => _tokenCounter;
    public ConcurrentQueue<string> Rejections { get; } = new();

    /// <summary>
    /// Per-repository tag mutability as ECR's CreateRepository sets it: MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION or
    /// MUTABLE_WITH_EXCLUSION with WILDCARD filters ('*' matches any run of characters). Repositories not listed
    /// follow <see cref="FakeRegistryMode.ImmutableTags"/>.
    /// </summary>
    public ConcurrentDictionary<string, (string Mutability, string[] Exclusions)> TagMutability { get; } = new();

    /// <summary>The n-th PATCH (1-based, counted over the server's life) has its connection cut mid-body: an interrupted upload.</summary>
    public int DropPatchNumber { get; set; }

    /// <summary>Answers 416 given (a client resuming from a Range the registry did not mean).</summary>
    public int RangeRefusals => _rangeRefusals;
    private int _rangeRefusals;

    private bool IsImmutable(string repository, string tag)
    {
        if (!TagMutability.TryGetValue(repository, out var m)) return Mode.ImmutableTags;
        var excluded = m.Exclusions.Any(f => Regex.IsMatch(tag, "^" + Regex.Escape(f).Replace("\\*", ".*") + "$"));
        return m.Mutability switch
        {
            "IMMUTABLE" => true,
            "IMMUTABLE_WITH_EXCLUSION" => !excluded,
            "MUTABLE_WITH_EXCLUSION" => excluded,
            _ => false,
        };
    }

    public Task EnsureAsync(string repository)
    {
        Repositories[repository] = true;
        return Task.CompletedTask;
    }

    public bool HasBlob(string repository, string digest) => _blobs.ContainsKey(repository + "@" + digest);

    private async Task HandleAsync(LoopbackContext ctx)
    {
        var path = ctx.Path;
        Requests.Enqueue($"{ctx.Method} {ctx.PathAndQuery}");
        if (ctx.Method == "PATCH" && Interlocked.Increment(ref _patches) == DropPatchNumber)
        {
            await ctx.ReadBodyAsync(ctx.ContentLength / 2);
            ctx.Abort();
            return;
        }
        var body = await ctx.ReadBodyAsync();

        if (Mode.Bearer)
        {
            if (path == "/token")
            {
                await IssueTokenAsync(ctx);
                return;
            }
            var auth = ctx.Header("Authorization");
            var m0 = RepoPath().Match(path);
            var scope = m0.Success ? $"repository:{m0.Groups["repo"].Value}:pull,push" : null;
            if (auth == null || !auth.StartsWith("Bearer ") || !_tokens.TryGetValue(auth[7..], out var granted)
                || (scope != null && !granted.Contains($"repository:{m0.Groups["repo"].Value}:")))
            {
                var challenge = $"Bearer realm=\"http://{Authority}/token\",service=\"fake-registry\"" + (scope != null ? $",scope=\"{scope}\"" : "");
                await ctx.RespondAsync(401, Error("UNAUTHORIZED", "authentication required"), "application/json", [("WWW-Authenticate", challenge)]);
                return;
            }
        }

        if (path == "/v2/" || path == "/v2")
        {
            await ctx.RespondAsync(200, "{}"u8.ToArray(), "application/json");
            return;
        }
        var m = RepoPath().Match(path);
        if (!m.Success)
        {
            await ctx.RespondAsync(404);
            return;
        }
        var repo = m.Groups["repo"].Value;
        var kind = m.Groups["kind"].Value;
        var rest = m.Groups["rest"].Value;
        if (Mode.Ecr && !Repositories.ContainsKey(repo) && ctx.Method != "GET" && ctx.Method != "HEAD")
        {
            // What ECR does on a push to a repository that does not exist.
            ctx.Abort();
            return;
        }

        switch (kind, ctx.Method)
        {
            case ("blobs", "HEAD" or "GET") when !rest.StartsWith("uploads"):
                if (_blobs.TryGetValue(repo + "@" + rest, out var blob))
                    await ctx.RespondAsync(200, blob, "application/octet-stream", [("Docker-Content-Digest", rest)], blob.Length);
                else
                    await ctx.RespondAsync(404, Error("BLOB_UNKNOWN", "blob unknown"), "application/json");
                return;
            case ("blobs", "GET") when rest.StartsWith("uploads/"):
            {
                // Upload status: how much of the upload the registry holds, so a client can resume from there.
                if (!_uploads.TryGetValue(rest["uploads/".Length..], out var st))
                {
                    await ctx.RespondAsync(404, Error("BLOB_UPLOAD_UNKNOWN", "no such upload"), "application/json");
                    return;
                }
                // ECR's Range stops advancing after the first chunk; the spec's is the bytes received so far.
                var end = Mode.Ecr && st.FirstChunkEnd >= 0 ? st.FirstChunkEnd : st.Data.Length - 1;
                await ctx.RespondAsync(204, null, null, [("Location", $"/v2/{repo}/blobs/{rest}"), ("Range", $"0-{end}")]);
                return;
            }
            case ("blobs", "POST"):
            {
                var mount = ctx.Query["mount"];
                var from = ctx.Query["from"];
                if (mount != null && from != null && _blobs.TryGetValue(from + "@" + mount, out var mounted))
                {
                    _blobs[repo + "@" + mount] = mounted;
                    await ctx.RespondAsync(201, null, null, [("Location", $"/v2/{repo}/blobs/{mount}")]);
                    return;
                }
                var id = Guid.NewGuid().ToString("N");
                _uploads[id] = new Upload(repo);
                await ctx.RespondAsync(202, null, null, [("Location", $"/v2/{repo}/blobs/uploads/{id}"), ("Range", "0-0")]);
                return;
            }
            case ("blobs", "PATCH"):
            {
                if (!_uploads.TryGetValue(rest["uploads/".Length..], out var up))
                {
                    await ctx.RespondAsync(404, Error("BLOB_UPLOAD_UNKNOWN", "no such upload"), "application/json");
                    return;
                }
                if (Mode.Ecr && up.LastChunk >= 0 && up.LastChunk < EcrMinChunk)
                {
                    Rejections.Enqueue($"chunk of {up.LastChunk} bytes before another chunk");
                    await ctx.RespondAsync(400, Error("INVALID_LAYER_PART", "Layer part size must be at least 5 MiB except the last"), "application/json");
                    return;
                }
                if (ctx.Header("Content-Range") is { } cr && long.TryParse(cr.Split('-')[0], out var start) && start != up.Data.Length)
                {
                    Interlocked.Increment(ref _rangeRefusals);
                    Rejections.Enqueue($"chunk starting at {start}, upload holds {up.Data.Length} bytes");
                    await ctx.RespondAsync(416, Error("BLOB_UPLOAD_INVALID", "Requested range not satisfiable"), "application/json",
                        [("Location", $"/v2/{repo}/blobs/{rest}"), ("Range", $"0-{(Mode.Ecr && up.FirstChunkEnd >= 0 ? up.FirstChunkEnd : up.Data.Length - 1)}")]);
                    return;
                }
                up.Data.Write(body);
                up.LastChunk = body.Length;
                if (up.FirstChunkEnd < 0) up.FirstChunkEnd = up.Data.Length - 1;
                var reported = Mode.Ecr ? up.FirstChunkEnd : up.Data.Length - 1;
                await ctx.RespondAsync(Mode.Ecr ? 201 : 202, null, null,
                    [("Location", $"/v2/{repo}/blobs/{rest}"), ("Range", $"0-{reported}")]);
                return;
            }
            case ("blobs", "PUT"):
            {
                if (!_uploads.TryRemove(rest["uploads/".Length..], out var up))
                {
                    await ctx.RespondAsync(404, Error("BLOB_UPLOAD_UNKNOWN", "no such upload"), "application/json");
                    return;
                }
                if (Mode.Ecr && body.Length > 0 && up.LastChunk >= 0 && up.LastChunk < EcrMinChunk)
                {
                    Rejections.Enqueue($"chunk of {up.LastChunk} bytes before the final PUT body");
                    await ctx.RespondAsync(400, Error("INVALID_LAYER_PART", "Layer part too small"), "application/json");
                    return;
                }
                up.Data.Write(body);
                var digest = ctx.Query["digest"];
                var bytes = up.Data.ToArray();
                if (Digest.Of(bytes).ToString() != digest)
                {
                    await ctx.RespondAsync(400, Error("DIGEST_INVALID", "digest mismatch"), "application/json");
                    return;
                }
                _blobs[repo + "@" + digest] = bytes;
                await ctx.RespondAsync(201, null, null, [("Location", $"/v2/{repo}/blobs/{digest}"), ("Docker-Content-Digest", digest!)]);
                return;
            }
            case ("manifests", "PUT"):
            {
                var digest = Digest.Of(body).ToString();
                if (!rest.StartsWith("sha256:") && IsImmutable(repo, rest) && _manifests.TryGetValue(repo + ":" + rest, out var old)
                    && Digest.Of(old.Bytes).ToString() != digest)
                {
                    await ctx.RespondAsync(400, Error("TAG_INVALID",
                        $"The image tag '{rest}' already exists in the '{repo}' repository and cannot be overwritten because the repository is immutable."), "application/json");
                    return;
                }
                var entry = (body, ctx.Header("Content-Type") ?? MediaTypes.ImageManifest);
                _manifests[repo + ":" + rest] = entry;
                _manifests[repo + ":" + digest] = entry;
                await ctx.RespondAsync(201, null, null, [("Docker-Content-Digest", digest), ("Location", $"/v2/{repo}/manifests/{digest}")]);
                return;
            }
            case ("manifests", "GET" or "HEAD"):
                if (_manifests.TryGetValue(repo + ":" + rest, out var man))
                    await ctx.RespondAsync(200, man.Bytes, man.MediaType, [("Docker-Content-Digest", Digest.Of(man.Bytes).ToString())], man.Bytes.Length);
                else
                    await ctx.RespondAsync(404, Error("MANIFEST_UNKNOWN", "manifest unknown"), "application/json");
                return;
            default:
                await ctx.RespondAsync(404, Error("UNSUPPORTED", "not here"), "application/json");
                return;
        }
    }

    private async Task IssueTokenAsync(LoopbackContext ctx)
    {
        if (Mode.TokenCredentials is { } expected)
        {
            var auth = ctx.Header("Authorization");
            var ok = auth != null && auth.StartsWith("Basic ")
                     && Encoding.UTF8.GetString(Convert.FromBase64String(auth[6..])) == $"{expected.User}:{expected.Password}";
            if (!ok)
            {
                await ctx.RespondAsync(401, Error("UNAUTHORIZED", "bad credentials"), "application/json");
                return;
            }
        }
        var scopes = string.Join(' ', ctx.Query.GetValues("scope") ?? []);
        var n = Interlocked.Increment(ref _tokenCounter);
        var token = $"tok-{n}-{Guid.NewGuid():N}";
        _tokens[token] = scopes;
        var json = $"{{\"token\":\"{token}\",\"expires_in\":{Mode.TokenLifetimeSeconds},\"issued_at\":\"{Mode.Clock.GetUtcNow():O}\"}}";
        await ctx.RespondAsync(200, Encoding.UTF8.GetBytes(json), "application/json");
    }

    private static byte[] Error(string code, string message) =>
        Encoding.UTF8.GetBytes($"{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"{message.Replace("\"", "'")}\"}}]}}");

    [GeneratedRegex("^/v2/(?<repo>.+?)/(?<kind>blobs|manifests|tags|referrers)/(?<rest>.*)$")]
    private static partial Regex RepoPath();

    public void Dispose() => _server.Dispose();
}
