using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace HardenImage.Tests.Aws;

/// <summary>An HTTP request as it was on the wire (or in a SigV4 suite request.txt): raw target, headers in order, body.</summary>
public sealed record RawHttpRequest(string Method, string Target, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body)
{
    public string Path => Target.Split('?', 2)[0];
    public string Query => Target.Contains('?') ? Target.Split('?', 2)[1] : "";
    public string BodyText => Encoding.UTF8.GetString(Body);

    /// <summary>First value of a header (names compare case-insensitively), null when absent.</summary>
    public string? Header(string name) => Headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

    public JsonNode? Json() => Body.Length == 0 ? null : JsonNode.Parse(Body);

    /// <summary>Parses an aws-c-auth suite request.txt: request line, headers (obs-fold continuation lines unfolded), blank line, body.</summary>
    public static RawHttpRequest ParseSuiteRequest(string text)
    {
        text = text.Replace("\r\n", "\n");
        var split = text.IndexOf("\n\n", StringComparison.Ordinal);
        var head = split >= 0 ? text[..split] : text.TrimEnd('\n');
        var body = split >= 0 ? text[(split + 2)..] : "";
        var lines = head.Split('\n');
        var first = lines[0].Split(' ');
        var target = string.Join(' ', first[1..^1]);
        var headers = new List<KeyValuePair<string, string>>();
        foreach (var line in lines.Skip(1))
        {
            if (line.Length == 0) continue;
            if (char.IsWhiteSpace(line[0]) && headers.Count > 0)
            {
                var last = headers[^1];
                headers[^1] = new(last.Key, last.Value.TrimEnd() + " " + line.Trim());
                continue;
            }
            var colon = line.IndexOf(':');
            headers.Add(new(line[..colon], line[(colon + 1)..]));
        }
        return new RawHttpRequest(first[0], target, headers, Encoding.UTF8.GetBytes(body));
    }
}

/// <summary>Test credentials the loopback server knows.</summary>
public sealed record TestCredential(string AccessKeyId, string SecretAccessKey, string? SessionToken = null);

/// <summary>
/// An independent SigV4 implementation written from the AWS documentation ("Create a signed AWS API request":
/// canonical request, string to sign, signing key HMAC chain) — deliberately sharing no code with AWSSDK.Core, so it
/// can judge the SDK signer. The official suite checks it first (SigV4SuiteTests.IndependentVerifier_ReproducesSuite).
/// </summary>
public static class SigV4Verifier
{
    public const string Algorithm = "AWS4-HMAC-SHA256";
    public const string EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// <summary>The outcome of checking one request.</summary>
    public sealed record Result(bool Valid, string ErrorType, string Reason, string? Service, string? CanonicalRequest, string? StringToSign)
    {
        public static Result Fail(string type, string reason, string? service = null, string? creq = null, string? sts = null) =>
            new(false, type, reason, service, creq, sts);
    }

    /// <summary>Canonical request: method, canonical URI, canonical query, canonical headers, signed headers, payload hash.</summary>
    public static string CanonicalRequest(RawHttpRequest request, IReadOnlyList<string> signedHeaders, string payloadHash, bool normalizePath = true)
    {
        var grouped = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (name, value) in request.Headers)
        {
            var key = name.Trim().ToLowerInvariant();
            if (!grouped.TryGetValue(key, out var list)) grouped[key] = list = [];
            list.Add(CanonicalHeaderValue(value));
        }
        var sb = new StringBuilder();
        sb.Append(request.Method.ToUpperInvariant()).Append('\n');
        sb.Append(CanonicalPath(request.Path, normalizePath)).Append('\n');
        sb.Append(CanonicalQuery(request.Query)).Append('\n');
        foreach (var h in signedHeaders)
            sb.Append(h).Append(':').Append(grouped.TryGetValue(h, out var values) ? string.Join(",", values) : "").Append('\n');
        sb.Append('\n');
        sb.Append(string.Join(";", signedHeaders)).Append('\n');
        sb.Append(payloadHash);
        return sb.ToString();
    }

    /// <summary>Trim, and squeeze runs of spaces to one (the documented rule; quoted strings are not special).</summary>
    public static string CanonicalHeaderValue(string value)
    {
        var sb = new StringBuilder();
        var space = false;
        foreach (var c in value.Trim())
        {
            if (c is ' ' or '\t')
            {
                if (!space) sb.Append(' ');
                space = true;
            }
            else
            {
                sb.Append(c);
                space = false;
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// URI-encodes every segment of the path as given (so a wire path's %XX becomes %25XX: the non-S3 "encode twice"
    /// rule). With <paramref name="normalize"/>: drop empty and "." segments, resolve "..".
    /// </summary>
    public static string CanonicalPath(string path, bool normalize)
    {
        if (path.Length == 0) return "/";
        if (!normalize) return string.Join("/", path.Split('/').Select(s => UriEncode(s)));
        var stack = new List<string>();
        var segments = path.Split('/');
        foreach (var s in segments)
        {
            if (s is "" or ".") continue;
            if (s == "..") { if (stack.Count > 0) stack.RemoveAt(stack.Count - 1); continue; }
            stack.Add(s);
        }
        var last = segments[^1];
        var trailing = stack.Count > 0 && (last is "" or "." or "..");
        return "/" + string.Join("/", stack.Select(s => UriEncode(s))) + (trailing ? "/" : "");
    }

    /// <summary>Decode each name/value, re-encode per SigV4, sort by encoded name then value.</summary>
    public static string CanonicalQuery(string query)
    {
        if (query.Length == 0) return "";
        var pairs = new List<(string K, string V)>();
        foreach (var part in query.Split('&'))
        {
            if (part.Length == 0) continue;
            var eq = part.IndexOf('=');
            var k = eq >= 0 ? part[..eq] : part;
            var v = eq >= 0 ? part[(eq + 1)..] : "";
            pairs.Add((UriEncode(Uri.UnescapeDataString(k)), UriEncode(Uri.UnescapeDataString(v))));
        }
        return string.Join("&", pairs.OrderBy(p => p.K, StringComparer.Ordinal).ThenBy(p => p.V, StringComparer.Ordinal)
            .Select(p => p.K + "=" + p.V));
    }

    /// <summary>RFC 3986 unreserved characters stay; every other UTF-8 byte becomes %XX (upper-case hex).</summary>
    public static string UriEncode(string s)
    {
        var sb = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(s))
        {
            var c = (char)b;
            if (c is >= 'A' and <= 'Z' or >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_' or '.' or '~') sb.Append(c);
            else sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    public static string StringToSign(string amzDate, string scope, string canonicalRequest) =>
        $"{Algorithm}\n{amzDate}\n{scope}\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalRequest)))}";

    /// <summary>kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").</summary>
    public static byte[] SigningKey(string secret, string date, string region, string service)
    {
        var k = Hmac(Encoding.UTF8.GetBytes("AWS4" + secret), date);
        k = Hmac(k, region);
        k = Hmac(k, service);
        return Hmac(k, "aws4_request");
    }

    public static string Signature(byte[] signingKey, string stringToSign) => Hex(Hmac(signingKey, stringToSign));

    public static string PayloadHash(byte[] body) => Hex(SHA256.HashData(body));

    /// <summary>
    /// Checks a received request as AWS would: Authorization shape, known key, scope (date, region, aws4_request),
    /// X-Amz-Date within <paramref name="maxSkew"/>, host and x-amz-date signed, every signed header present,
    /// session token present and signed when the key has one, x-amz-content-sha256 equal to the real body hash,
    /// then recomputes the signature from the raw request.
    /// </summary>
    public static Result Verify(RawHttpRequest request, IReadOnlyDictionary<string, TestCredential> credentials, string region,
        DateTimeOffset now, TimeSpan maxSkew)
    {
        var auth = request.Header("Authorization");
        if (auth == null) return Result.Fail("MissingAuthenticationTokenException", "Missing Authentication Token");
        if (!auth.StartsWith(Algorithm + " ", StringComparison.Ordinal))
            return Result.Fail("IncompleteSignatureException", $"Authorization does not start with {Algorithm}");
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in auth[(Algorithm.Length + 1)..].Split(','))
        {
            var eq = part.IndexOf('=');
            if (eq > 0) fields[part[..eq].Trim()] = part[(eq + 1)..].Trim();
        }
        if (!fields.TryGetValue("Credential", out var credential) || !fields.TryGetValue("SignedHeaders", out var signedText)
            || !fields.TryGetValue("Signature", out var signature))
            return Result.Fail("IncompleteSignatureException", "Authorization lacks Credential, SignedHeaders or Signature");

        var scopeParts = credential.Split('/');
        if (scopeParts.Length != 5 || scopeParts[4] != "aws4_request")
            return Result.Fail("IncompleteSignatureException", $"malformed credential scope '{credential}'");
        var (keyId, date, scopeRegion, service) = (scopeParts[0], scopeParts[1], scopeParts[2], scopeParts[3]);
        if (!credentials.TryGetValue(keyId, out var key))
            return Result.Fail("UnrecognizedClientException", "The security token included in the request is invalid.", service);

        var amzDate = request.Header("X-Amz-Date");
        if (amzDate == null || !DateTimeOffset.TryParseExact(amzDate, "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var signedAt))
            return Result.Fail("IncompleteSignatureException", "missing or malformed X-Amz-Date", service);
        if (date != amzDate[..8]) return Result.Fail("InvalidSignatureException", "credential scope date differs from X-Amz-Date", service);
        if (scopeRegion != region)
            return Result.Fail("InvalidSignatureException", $"Credential should be scoped to a valid region, not '{scopeRegion}'.", service);
        if ((now - signedAt).Duration() > maxSkew)
            return Result.Fail("InvalidSignatureException", $"Signature expired: {amzDate} is too far from {now:yyyyMMdd'T'HHmmss'Z'}", service);

        var signed = signedText.Split(';').ToList();
        if (!signed.SequenceEqual(signed.OrderBy(s => s, StringComparer.Ordinal)) || signed.Any(s => s != s.ToLowerInvariant()))
            return Result.Fail("InvalidSignatureException", "SignedHeaders must be lower-case and sorted", service);
        if (!signed.Contains("host") || !signed.Contains("x-amz-date"))
            return Result.Fail("InvalidSignatureException", "host and x-amz-date must be signed", service);
        foreach (var h in signed)
            if (request.Header(h) == null) return Result.Fail("InvalidSignatureException", $"signed header '{h}' is missing", service);

        if (key.SessionToken != null)
        {
            if (request.Header("X-Amz-Security-Token") != key.SessionToken || !signed.Contains("x-amz-security-token"))
                return Result.Fail("UnrecognizedClientException", "session token missing, wrong or unsigned", service);
        }

        var payloadHash = PayloadHash(request.Body);
        var declared = request.Header("X-Amz-Content-SHA256");
        if (declared != null && declared != payloadHash)
            return Result.Fail("InvalidSignatureException", $"x-amz-content-sha256 {declared} is not the body's hash {payloadHash}", service);

        var creq = CanonicalRequest(request, signed, payloadHash);
        var sts = StringToSign(amzDate, $"{date}/{scopeRegion}/{service}/aws4_request", creq);
        var expected = Signature(SigningKey(key.SecretAccessKey, date, scopeRegion, service), sts);
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(signature)))
            return Result.Fail("InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
                service, creq, sts);
        return new Result(true, "", "", service, creq, sts);
    }

    private static byte[] Hmac(byte[] key, string data) => HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(data));

    private static string Hex(byte[] b) => Convert.ToHexStringLower(b);
}
