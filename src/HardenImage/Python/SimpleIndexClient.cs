using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Lock;

namespace HardenImage.Python;

/// <summary>One file a project page lists (PEP 503 anchor or PEP 691 "files" entry).</summary>
public sealed record IndexFile(string FileName, string Url, string? Sha256, bool Yanked, string? RequiresPython);

/// <summary>
/// The Simple Repository API client: asks for PEP 691 JSON and falls back to PEP 503 HTML (the server's
/// Content-Type decides), resolves relative links against the page, and sends HTTP Basic credentials (from the
/// environment variables the YAML names) only to the index's own host.
/// </summary>
public sealed partial class SimpleIndexClient(HttpClient http, Func<string, string?>? environment = null)
{
    private const string JsonType = "application/vnd.pypi.simple.v1+json";
    private readonly Func<string, string?> _env = environment ?? Environment.GetEnvironmentVariable;
    private const long MaxPageBytes = 32L << 20;

    public async Task<IReadOnlyList<IndexFile>> ProjectFilesAsync(PythonIndexDefinition index, string normalizedName, CancellationToken ct)
    {
        var pageUrl = new Uri(new Uri(index.Url), Uri.EscapeDataString(normalizedName) + "/");
        using var request = new HttpRequestMessage(HttpMethod.Get, pageUrl);
        request.Headers.Accept.ParseAdd($"{JsonType}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01");
        Authorize(request, index);
        HttpResponseMessage response;
        try { response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct); }
        catch (HttpRequestException e)
        {
            throw new HardenException($"python index '{index.Name}' ({index.Url}) is unreachable ({e.Message}). Check the URL and the network; nothing was locked.", 2, e);
        }
        using var _ = response;
        if (response.StatusCode == HttpStatusCode.NotFound)
            throw new HardenException($"python index '{index.Name}' ({index.Url}) has no project '{normalizedName}'. Check the name, or which index serves it (python: indexes: packages:).");
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            throw new HardenException($"python index '{index.Name}' ({index.Url}) refused the request ({(int)response.StatusCode}). Set the credentials in {index.UsernameEnv ?? "(no usernameEnv)"}/{index.PasswordEnv ?? "(no passwordEnv)"}.");
        if (!response.IsSuccessStatusCode)
            throw new HardenException($"python index '{index.Name}' answered {(int)response.StatusCode} for {pageUrl}. Try again later or check the index.");
        var bytes = await ReadBoundedAsync(response, pageUrl, ct);
        var type = response.Content.Headers.ContentType?.MediaType ?? "";
        var finalUrl = response.RequestMessage?.RequestUri ?? pageUrl;
        return type == JsonType ? ParseJson(bytes, finalUrl, index) : ParseHtml(Encoding.UTF8.GetString(bytes), finalUrl);
    }

    /// <summary>Adds Basic credentials when the YAML names variables and the request goes to the index's host.</summary>
    public void Authorize(HttpRequestMessage request, PythonIndexDefinition index)
    {
        if (index.UsernameEnv == null && index.PasswordEnv == null) return;
        if (!string.Equals(request.RequestUri!.Authority, new Uri(index.Url).Authority, StringComparison.OrdinalIgnoreCase)) return;
        var user = index.UsernameEnv != null ? _env(index.UsernameEnv) : "";
        var password = index.PasswordEnv != null ? _env(index.PasswordEnv) : "";
        if (string.IsNullOrEmpty(user) && string.IsNullOrEmpty(password))
            throw new HardenException($"python index '{index.Name}' needs credentials: set {index.UsernameEnv ?? index.PasswordEnv} in the environment (never in a file).");
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
    }

    private static async Task<byte[]> ReadBoundedAsync(HttpResponseMessage response, Uri url, CancellationToken ct)
    {
        await using var s = await response.Content.ReadAsStreamAsync(ct);
        using var ms = new MemoryStream();
        var buffer = new byte[1 << 16];
        int n;
        while ((n = await s.ReadAsync(buffer, ct)) > 0)
        {
            ms.Write(buffer, 0, n);
            if (ms.Length > MaxPageBytes) throw new HardenException($"{url}: the project page is larger than {MaxPageBytes >> 20} MiB; refusing it.");
        }
        return ms.ToArray();
    }

    internal static IReadOnlyList<IndexFile> ParseJson(byte[] bytes, Uri page, PythonIndexDefinition index)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = InputLimits.MaxJsonDepth });
            var files = new List<IndexFile>();
            if (!doc.RootElement.TryGetProperty("files", out var arr) || arr.ValueKind != JsonValueKind.Array)
                throw new HardenException($"{page}: PEP 691 page without a files array; the index '{index.Name}' is not a simple index.");
            foreach (var f in arr.EnumerateArray())
            {
                // A hostile page may give null or a number where PEP 691 says string: one clear refusal, not a NullReferenceException.
                var name = f.GetProperty("filename").GetString() ?? throw new InvalidOperationException("a file without a filename");
                var url = new Uri(page, f.GetProperty("url").GetString() ?? throw new InvalidOperationException($"{name} without a url")).ToString();
                string? sha = f.TryGetProperty("hashes", out var h) && h.TryGetProperty("sha256", out var s) ? s.GetString()?.ToLowerInvariant() : null;
                var yanked = f.TryGetProperty("yanked", out var y) && (y.ValueKind == JsonValueKind.True || y.ValueKind == JsonValueKind.String);
                var rp = f.TryGetProperty("requires-python", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
                files.Add(new IndexFile(name, url, sha, yanked, rp));
            }
            return files;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or UriFormatException)
        {
            throw new HardenException($"{page}: not a valid PEP 691 project page ({e.Message}).", 2, e);
        }
    }

    internal static IReadOnlyList<IndexFile> ParseHtml(string html, Uri page)
    {
        var files = new List<IndexFile>();
        var baseUri = page;
        if (BaseHref().Match(html) is { Success: true } b) baseUri = new Uri(page, WebUtility.HtmlDecode(b.Groups["href"].Value));
        foreach (Match a in Anchor().Matches(html))
        {
            var attrs = a.Groups["attrs"].Value;
            var href = Attr(attrs, "href");
            if (href == null) continue;
            Uri url;
            try { url = new Uri(baseUri, href); } catch (UriFormatException) { continue; }
            string? sha = null;
            var fragment = url.Fragment.TrimStart('#');
            if (fragment.StartsWith("sha256=", StringComparison.Ordinal)) sha = fragment["sha256=".Length..].ToLowerInvariant();
            var name = WebUtility.HtmlDecode(a.Groups["text"].Value).Trim();
            if (name.Length == 0) name = Uri.UnescapeDataString(url.AbsolutePath.Split('/')[^1]);
            files.Add(new IndexFile(name, url.GetLeftPart(UriPartial.Query), sha, Attr(attrs, "data-yanked") != null,
                Attr(attrs, "data-requires-python")));
        }
        return files;
    }

    private static string? Attr(string attrs, string name)
    {
        foreach (Match m in Attribute().Matches(attrs))
            if (string.Equals(m.Groups["name"].Value, name, StringComparison.OrdinalIgnoreCase))
                return WebUtility.HtmlDecode(m.Groups["dq"].Success ? m.Groups["dq"].Value : m.Groups["sq"].Success ? m.Groups["sq"].Value : m.Groups["bare"].Value);
        return null;
    }

    // A page is untrusted and up to 32 MiB: no part of a pattern may run past the next '<' or '>', or every '<a '
    // would rescan the rest of the page (quadratic: a 1 MiB page of "<a " took minutes). PEP 503 escapes '<' and '>'
    // inside attribute values (data-requires-python="&lt;4"), so a tag never contains them.
    [GeneratedRegex(@"<a\s(?<attrs>[^<>]*)>(?<text>[^<>]*)</a>", RegexOptions.IgnoreCase)]
    private static partial Regex Anchor();

    [GeneratedRegex(@"<base\s[^<>]*?href\s*=\s*""(?<href>[^""<>]*)""", RegexOptions.IgnoreCase)]
    private static partial Regex BaseHref();

    [GeneratedRegex(@"(?<name>[A-Za-z_:][-A-Za-z0-9_:.]*)(?:\s*=\s*(?:""(?<dq>[^""]*)""|'(?<sq>[^']*)'|(?<bare>[^\s""'>]+)))?")]
    private static partial Regex Attribute();
}
