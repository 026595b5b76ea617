using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using HardenImage.Tests.Registry;

namespace HardenImage.Tests.Python;

/// <summary>
/// Builds real wheels (zip files in the binary distribution format: dist-info with METADATA, WHEEL, RECORD,
/// entry_points.txt, .data/scripts) with System.IO.Compression, so no PyPI and no pip are needed. Hostile variants
/// come from editing the file list or the RECORD before writing.
/// </summary>
public sealed class WheelBuilder(string distribution, string version, string tag = "py3-none-any")
{
    private readonly List<(string Path, byte[] Content, bool Exec)> _files = new();
    private readonly List<string> _entryPoints = new();

    public string FileName => $"{distribution}-{version}-{tag}.whl";
    public string DistInfo => $"{distribution}-{version}.dist-info";
    /// <summary>Paths written but left out of RECORD (a file nothing vouches for).</summary>
    public HashSet<string> Unrecorded { get; } = new();
    /// <summary>RECORD rows overridden (path → hash field), e.g. a wrong hash.</summary>
    public Dictionary<string, string> RecordHashOverride { get; } = new();
    /// <summary>Rows added to RECORD for files that are not in the zip.</summary>
    public List<string> ExtraRecordRows { get; } = new();
    /// <summary>Raw zip entry names added as-is (traversal attempts), with content.</summary>
    public List<(string Name, byte[] Content, int UnixMode)> RawEntries { get; } = new();

    /// <summary>Name written into METADATA (default: the distribution's), to build a wheel that lies about itself.</summary>
    public string? MetadataName { get; set; }

    public WheelBuilder File(string path, string content, bool exec = false) { _files.Add((path, Encoding.UTF8.GetBytes(content), exec)); return this; }
    public WheelBuilder File(string path, byte[] content, bool exec = false) { _files.Add((path, content, exec)); return this; }
    public WheelBuilder ConsoleScript(string name, string target) { _entryPoints.Add($"{name} = {target}"); return this; }

    public byte[] Build()
    {
        var files = new List<(string Path, byte[] Content, bool Exec)>(_files)
        {
            ($"{DistInfo}/METADATA", Encoding.UTF8.GetBytes($"Metadata-Version: 2.1\nName: {MetadataName ?? distribution}\nVersion: {version}\nLicense: MIT\n"), false),
            ($"{DistInfo}/WHEEL", Encoding.UTF8.GetBytes($"Wheel-Version: 1.0\nGenerator: hardenimage-tests\nRoot-Is-Purelib: {(tag.EndsWith("-any") ? "true" : "false")}\nTag: {tag}\n"), false),
        };
        if (_entryPoints.Count > 0) files.Add(($"{DistInfo}/entry_points.txt", Encoding.UTF8.GetBytes("[console_scripts]\n" + string.Join("\n", _entryPoints) + "\n"), false));
        var record = new StringBuilder();
        foreach (var (path, content, _) in files)
        {
            if (Unrecorded.Contains(path)) continue;
            var hash = RecordHashOverride.TryGetValue(path, out var o) ? o
                : "sha256=" + Convert.ToBase64String(SHA256.HashData(content)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
            record.Append($"{path},{hash},{content.Length}\n");
        }
        foreach (var row in ExtraRecordRows) record.Append(row).Append('\n');
        record.Append($"{DistInfo}/RECORD,,\n");
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            var stamp = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);
            foreach (var (path, content, exec) in files.Append(($"{DistInfo}/RECORD", Encoding.UTF8.GetBytes(record.ToString()), false)))
                Add(zip, path, content, exec ? 0x81ED : 0x81A4, stamp);
            foreach (var (name, content, mode) in RawEntries) Add(zip, name, content, mode, stamp);
        }
        return ms.ToArray();
    }

    private static void Add(ZipArchive zip, string name, byte[] content, int unixMode, DateTimeOffset stamp)
    {
        var e = zip.CreateEntry(name, CompressionLevel.Fastest);
        e.LastWriteTime = stamp;
        e.ExternalAttributes = unixMode << 16;
        using var s = e.Open();
        s.Write(content);
    }

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}

/// <summary>A file a fake index lists: its name, the bytes served, and the hash advertised (null = the true one; "" = none).</summary>
public sealed record IndexedFile(string Project, string FileName, byte[] Served, string? AdvertisedSha256 = null, string? RequiresPython = ">=3.8");

/// <summary>
/// A PEP 503 (HTML) / PEP 691 (JSON) simple index on 127.0.0.1, over the tests' loopback server: project pages at
/// /simple/&lt;name&gt;/, files at /files/&lt;name&gt;. It can require HTTP Basic credentials, answer in JSON when asked
/// (and <see cref="Json"/> is on), and lie: advertise one hash and serve other bytes. Every request is logged.
/// </summary>
public sealed class PythonIndexServer : IDisposable
{
    private readonly LoopbackHttpServer _server;
    private readonly List<IndexedFile> _files = new();

    public PythonIndexServer()
    {
        _server = new LoopbackHttpServer(HandleAsync);
    }

    public string SimpleUrl => $"http://{_server.Authority}/simple/";
    public bool Json { get; set; }
    /// <summary>"user:password" the server demands, or null for an open index.</summary>
    public string? RequiredCredentials { get; set; }
    public List<string> Requests { get; } = new();
    public List<string?> AuthorizationHeaders { get; } = new();

    public PythonIndexServer Add(IndexedFile file) { lock (_files) _files.Add(file); return this; }

    public bool Has(string fileName) { lock (_files) return _files.Any(f => f.FileName == fileName); }

    public PythonIndexServer Add(string project, WheelBuilder wheel) => Add(new IndexedFile(project, wheel.FileName, wheel.Build()));

    public void Replace(string fileName, byte[] served)
    {
        lock (_files)
        {
            var i = _files.FindIndex(f => f.FileName == fileName);
            _files[i] = _files[i] with { Served = served, AdvertisedSha256 = _files[i].AdvertisedSha256 ?? WheelBuilder.Sha256(_files[i].Served) };
        }
    }

    private async Task HandleAsync(LoopbackContext ctx)
    {
        lock (Requests) { Requests.Add(ctx.Path); AuthorizationHeaders.Add(ctx.Header("Authorization")); }
        if (RequiredCredentials != null && ctx.Header("Authorization") != "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(RequiredCredentials)))
        {
            await ctx.RespondAsync(401);
            return;
        }
        List<IndexedFile> files;
        lock (_files) files = _files.ToList();
        if (ctx.Path.StartsWith("/simple/", StringComparison.Ordinal))
        {
            var project = ctx.Path["/simple/".Length..].TrimEnd('/');
            var listed = files.Where(f => f.Project == project).ToList();
            if (listed.Count == 0) { await ctx.RespondAsync(404); return; }
            string Hash(IndexedFile f) => f.AdvertisedSha256 ?? WheelBuilder.Sha256(f.Served);
            if (Json && (ctx.Header("Accept") ?? "").Contains("application/vnd.pypi.simple.v1+json", StringComparison.Ordinal))
            {
                var body = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
                {
                    ["meta"] = new Dictionary<string, string> { ["api-version"] = "1.1" },
                    ["name"] = project,
                    ["files"] = listed.Select(f => new Dictionary<string, object>
                    {
                        ["filename"] = f.FileName, ["url"] = "../../files/" + f.FileName,
                        ["hashes"] = Hash(f) == "" ? new Dictionary<string, string>() : new Dictionary<string, string> { ["sha256"] = Hash(f) },
                        ["requires-python"] = f.RequiresPython ?? "",
                    }).ToList(),
                });
                await ctx.RespondAsync(200, body, "application/vnd.pypi.simple.v1+json");
                return;
            }
            var html = new StringBuilder("<!DOCTYPE html>\n<html><body><h1>Links for " + project + "</h1>\n");
            foreach (var f in listed)
                html.Append($"<a href=\"../../files/{f.FileName}{(Hash(f) == "" ? "" : "#sha256=" + Hash(f))}\"{(f.RequiresPython == null ? "" : $" data-requires-python=\"{System.Net.WebUtility.HtmlEncode(f.RequiresPython)}\"")}>{f.FileName}</a><br/>\n");
            html.Append("</body></html>\n");
            await ctx.RespondAsync(200, Encoding.UTF8.GetBytes(html.ToString()), "text/html");
            return;
        }
        if (ctx.Path.StartsWith("/files/", StringComparison.Ordinal))
        {
            var file = files.FirstOrDefault(f => f.FileName == ctx.Path["/files/".Length..]);
            if (file == null) { await ctx.RespondAsync(404); return; }
            await ctx.RespondAsync(200, file.Served, "application/octet-stream");
            return;
        }
        await ctx.RespondAsync(404);
    }

    public void Dispose() => _server.Dispose();
}
