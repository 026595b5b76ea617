using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace HardenImage.Registry;

/// <summary>A parsed <c>WWW-Authenticate</c> challenge: scheme plus parameters (realm, service, scope).</summary>
public sealed record AuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    public string? Realm => Parameters.GetValueOrDefault("realm");
    public string? Service => Parameters.GetValueOrDefault("service");
    public string? Scope => Parameters.GetValueOrDefault("scope");

    /// <summary>Parses <c>Bearer realm="...",service="...",scope="a,b"</c> (quoted values may hold commas).</summary>
    public static AuthChallenge? Parse(string? header)
    {
        if (string.IsNullOrWhiteSpace(header)) return null;
        header = header.Trim();
        var sp = header.IndexOf(' ');
        var scheme = sp < 0 ? header : header[..sp];
        var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = sp < 0 ? header.Length : sp + 1;
        while (i < header.Length)
        {
            while (i < header.Length && (header[i] == ' ' || header[i] == ',')) i++;
            var eq = header.IndexOf('=', i);
            if (eq < 0) break;
            var key = header[i..eq].Trim();
            i = eq + 1;
            string value;
            if (i < header.Length && header[i] == '"')
            {
                var sb = new StringBuilder();
                i++;
                while (i < header.Length && header[i] != '"')
                {
                    if (header[i] == '\\' && i + 1 < header.Length) i++;
                    sb.Append(header[i++]);
                }
                i++;
                value = sb.ToString();
            }
            else
            {
                var end = header.IndexOf(',', i);
                if (end < 0) end = header.Length;
                value = header[i..end].Trim();
                i = end;
            }
            if (key.Length > 0) parameters[key] = value;
        }
        return new AuthChallenge(scheme, parameters);
    }
}

/// <summary>
/// Registry authentication as a handler: requests go out anonymously (or with what worked before for that host and
/// scope); a 401 is answered from its <c>WWW-Authenticate</c> challenge — Basic sends the host's credentials,
/// Bearer fetches a token from the realm (with Basic credentials when there are some, else anonymously) for the
/// challenge's scope — and the request is retried once. Tokens are cached per host and scope until they expire.
/// Credentials are only sent over https or to the registry's own host or loopback, and never logged
/// (threats: Spoofing of the registry by a redirecting realm, Information disclosure of secrets).
/// </summary>
public sealed class RegistryAuthHandler : DelegatingHandler
{
    /// <summary>Extra token scope a request needs (a mount also reads the source repository).</summary>
    public static readonly HttpRequestOptionsKey<string> ExtraScope = new("HardenImage.Registry.ExtraScope");

    private readonly IRegistryCredentialProvider _credentials;
    private readonly HttpMessageInvoker _tokenClient;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, AuthChallenge> _challengeByHost = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, (string Token, DateTimeOffset Expires)> _tokens = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _tokenFetch = new(1, 1);
    private int _tokenRequests;

    /// <param name="credentials">Where user names and passwords come from.</param>
    /// <param name="tokenClient">Sends token requests (its own pipeline: retries, transport).</param>
    public RegistryAuthHandler(IRegistryCredentialProvider credentials, HttpMessageInvoker tokenClient, TimeProvider? time = null)
    {
        _credentials = credentials;
        _tokenClient = tokenClient;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>How many token requests went to realms (tests observe the cache with it).</summary>
    public int TokenRequests => _tokenRequests;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        var uri = request.RequestUri ?? throw new InvalidOperationException("request without URI");
        var host = uri.Authority;
        var scope = ScopeFor(request);
        var sentAuth = false;
        if (_challengeByHost.TryGetValue(host, out var known))
            sentAuth = await TryAttachAsync(request, known, scope, fetchToken: false, ct).ConfigureAwait(false);

        var response = await base.SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Unauthorized) return response;

        var challenge = response.Headers.WwwAuthenticate.Select(h => AuthChallenge.Parse(h.ToString()))
            .FirstOrDefault(c => c != null && (IsBearer(c) || IsBasic(c)));
        if (challenge == null) return response;
        if (IsBasic(challenge) && sentAuth)
        {
            response.Dispose();
            throw new RegistryAuthenticationException($"{host} refused the credentials for {uri.AbsolutePath}: check the user name and password (docker login {host}).", HttpStatusCode.Unauthorized);
        }
        _challengeByHost[host] = challenge;
        if (IsBearer(challenge) && sentAuth && request.Headers.Authorization?.Parameter is { } refused)
        {
            // The token we sent was refused: drop it (only it — a parallel request may have cached a fresh one).
            var key = TokenKey(host, challenge, scope);
            if (_tokens.TryGetValue(key, out var cached) && cached.Token == refused)
                _tokens.TryRemove(new KeyValuePair<string, (string, DateTimeOffset)>(key, cached));
        }
        response.Dispose();
        if (!await TryAttachAsync(request, challenge, scope, fetchToken: true, ct).ConfigureAwait(false))
            throw new RegistryAuthenticationException($"{host} requires authentication for {uri.AbsolutePath}: log in (docker login {host}) or pass credentials.", HttpStatusCode.Unauthorized);

        var retried = await base.SendAsync(request, ct).ConfigureAwait(false);
        if (retried.StatusCode == HttpStatusCode.Unauthorized)
        {
            retried.Dispose();
            throw new RegistryAuthenticationException($"{host} refused our credentials for {uri.AbsolutePath} (scope {scope ?? "none"}): check the user's rights on that repository.", HttpStatusCode.Unauthorized);
        }
        return retried;
    }

    private async Task<bool> TryAttachAsync(HttpRequestMessage request, AuthChallenge challenge, string? scope, bool fetchToken, CancellationToken ct)
    {
        var host = request.RequestUri!.Authority;
        if (IsBasic(challenge))
        {
            var creds = await GetCredentialsAsync(request.RequestUri!, ct).ConfigureAwait(false);
            if (creds == null) return false;
            request.Headers.Authorization = BasicHeader(creds.Value.user, creds.Value.password);
            return true;
        }
        var key = TokenKey(host, challenge, scope);
        if (_tokens.TryGetValue(key, out var cached) && cached.Expires > _time.GetUtcNow())
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", cached.Token);
            return true;
        }
        if (!fetchToken) return false;
        await _tokenFetch.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (!(_tokens.TryGetValue(key, out cached) && cached.Expires > _time.GetUtcNow()))
            {
                cached = await FetchTokenAsync(request.RequestUri!, challenge, scope, ct).ConfigureAwait(false);
                _tokens[key] = cached;
            }
        }
        finally
        {
            _tokenFetch.Release();
        }
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", cached.Token);
        return true;
    }

    private async Task<(string Token, DateTimeOffset Expires)> FetchTokenAsync(Uri registryUri, AuthChallenge challenge, string? scope, CancellationToken ct)
    {
        if (!Uri.TryCreate(challenge.Realm, UriKind.Absolute, out var realm) || realm.Scheme is not ("https" or "http"))
            throw new RegistryAuthenticationException($"{registryUri.Authority} sent a Bearer challenge without a usable realm ('{challenge.Realm}').");
        var query = new List<string>();
        if (challenge.Service != null) query.Add("service=" + Uri.EscapeDataString(challenge.Service));
        foreach (var s in Scopes(challenge, scope)) query.Add("scope=" + Uri.EscapeDataString(s));
        var builder = new UriBuilder(realm);
        var existing = builder.Query.TrimStart('?');
        builder.Query = string.Join('&', new[] { existing }.Where(q => q.Length > 0).Concat(query));
        using var tokenRequest = new HttpRequestMessage(HttpMethod.Get, builder.Uri);
        tokenRequest.Options.Set(Net.DeadlineHandler.Purpose, $"a token for {registryUri.Authority}");
        var creds = await GetCredentialsAsync(registryUri, ct).ConfigureAwait(false);
        if (creds != null)
        {
            if (realm.Scheme != "https" && !IsSafePlainHttpRealm(realm, registryUri))
                throw new RegistryAuthenticationException($"{registryUri.Authority} asks for credentials at {realm.GetLeftPart(UriPartial.Path)} over plain http on another host; refusing to send them.");
            tokenRequest.Headers.Authorization = BasicHeader(creds.Value.user, creds.Value.password);
        }
        Interlocked.Increment(ref _tokenRequests);
        using var response = await _tokenClient.SendAsync(tokenRequest, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new RegistryAuthenticationException($"token request to {realm.GetLeftPart(UriPartial.Path)} for {registryUri.Authority} failed: HTTP {(int)response.StatusCode}. Check the credentials (docker login {registryUri.Authority}).", response.StatusCode);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false)); }
        catch (JsonException bad)
        {
            throw new RegistryAuthenticationException($"token response from {realm.GetLeftPart(UriPartial.Path)} for {registryUri.Authority} is not JSON ({bad.Message}); is the realm really a token service?");
        }
        using var _ = doc;
        var root = doc.RootElement;
        var token = (root.TryGetProperty("token", out var t) ? t.GetString() : null)
            ?? (root.TryGetProperty("access_token", out var at) ? at.GetString() : null);
        if (string.IsNullOrEmpty(token))
            throw new RegistryAuthenticationException($"token response from {realm.GetLeftPart(UriPartial.Path)} has no token");
        var lifetime = root.TryGetProperty("expires_in", out var e) && e.TryGetInt32(out var secs) && secs > 0 ? secs : 60;
        var issued = root.TryGetProperty("issued_at", out var ia) && ia.TryGetDateTimeOffset(out var when) ? when : _time.GetUtcNow();
        if (issued > _time.GetUtcNow()) issued = _time.GetUtcNow();
        // Renew a little early so a token does not expire between our check and the registry's.
        return (token, issued + TimeSpan.FromSeconds(lifetime) - TimeSpan.FromSeconds(Math.Min(10, lifetime / 4.0)));
    }

    private async Task<(string user, string password)?> GetCredentialsAsync(Uri registryUri, CancellationToken ct) =>
        await _credentials.GetAsync(registryUri.Authority, ct).ConfigureAwait(false);

    private static IEnumerable<string> Scopes(AuthChallenge challenge, string? scope)
    {
        var scopes = new List<string>();
        // The challenge's scope is the registry's word on what this request needs; ours adds mount sources.
        if (challenge.Scope != null) scopes.AddRange(challenge.Scope.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        if (scope != null)
            foreach (var s in scope.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                if (!scopes.Contains(s)) scopes.Add(s);
        return scopes;
    }

    private static string TokenKey(string host, AuthChallenge challenge, string? scope) =>
        $"{host}|{challenge.Realm}|{challenge.Service}|{scope}";

    /// <summary>
    /// The scope a request needs, from its path: <c>/v2/&lt;repo&gt;/(blobs|manifests|tags|referrers)/...</c>;
    /// reads need "pull", writes "pull,push"; plus <see cref="ExtraScope"/>.
    /// </summary>
    public static string? ScopeFor(HttpRequestMessage request)
    {
        var path = request.RequestUri!.AbsolutePath;
        string? scope = null;
        if (path.StartsWith("/v2/", StringComparison.Ordinal))
        {
            var rest = path[4..];
            foreach (var marker in new[] { "/blobs/", "/manifests/", "/tags/", "/referrers/" })
            {
                var i = rest.LastIndexOf(marker, StringComparison.Ordinal);
                if (i > 0)
                {
                    var read = request.Method == HttpMethod.Get || request.Method == HttpMethod.Head;
                    scope = $"repository:{rest[..i]}:{(read ? "pull" : "pull,push")}";
                    break;
                }
            }
        }
        if (request.Options.TryGetValue(ExtraScope, out var extra) && !string.IsNullOrEmpty(extra))
            scope = scope == null ? extra : scope + " " + extra;
        return scope;
    }

    private static bool IsSafePlainHttpRealm(Uri realm, Uri registry) =>
        realm.IsLoopback || string.Equals(realm.Host, registry.Host, StringComparison.OrdinalIgnoreCase);

    private static bool IsBasic(AuthChallenge c) => c.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase);
    private static bool IsBearer(AuthChallenge c) => c.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase);

    private static AuthenticationHeaderValue BasicHeader(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)));

    protected override void Dispose(bool disposing)
    {
        if (disposing) _tokenFetch.Dispose();
        base.Dispose(disposing);
    }
}
