using System.Text.Json;
using System.Text.Json.Nodes;
using HardenImage.Common;

namespace HardenImage.Deploy;

/// <summary>
/// The inference-server half of `harden smoke`: a tiny TorchScript model made inside the image under test, a real
/// generation through <c>POST /v1/generate</c>, and proof that a tampered model stops the server before it serves
/// (threat: Tampering).
/// </summary>
public static class SmokeInference
{
    /// <summary>The prompt sent to the server; the logs must not contain it (threat: Information disclosure).</summary>
    public const string Prompt = "confidential";

    /// <summary>What the tiny model answers to <see cref="Prompt"/> with <see cref="NewTokens"/> tokens: each next character.</summary>
    public const string ExpectedAnswer = "mnopqrst";

    public const int NewTokens = 8;

    /// <summary>The log event the server writes when the model directory fails its pinned manifest.</summary>
    public const string IntegrityFailedEvent = "model_integrity_failed";

    /// <summary>
    /// Writes model.pt and tokenizer.json into argv[1], run with the image's own python and torch.
    /// The "language model" is an embedding and a linear layer whose weights map each character to the next one in
    /// the vocabulary, so the answer is known in advance: the check proves the model really ran. Never shipped in an
    /// image: smoke mounts it read-only for one run.
    /// </summary>
    public const string MakeTinyModelPython = """
        import json, os, sys
        import torch

        out = sys.argv[1]
        vocab = list(" abcdefghijklmnopqrstuvwxyz.,")
        n = len(vocab)


        class TinyLM(torch.nn.Module):
            def __init__(self, n: int):
                super().__init__()
                self.embed = torch.nn.Embedding(n, n)
                self.head = torch.nn.Linear(n, n, bias=False)

            def forward(self, ids: torch.Tensor) -> torch.Tensor:
                return self.head(self.embed(ids))


        model = TinyLM(n)
        with torch.no_grad():
            model.embed.weight.copy_(torch.eye(n))
            # Row i of the head scores token i; it fires on the embedding of token i-1: "a" -> "b", "z" -> ".".
            model.head.weight.copy_(torch.roll(torch.eye(n), shifts=1, dims=0) * 10.0)
        model.eval()
        torch.jit.save(torch.jit.script(model), os.path.join(out, "model.pt"))
        with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump({"vocab": vocab}, f)
        print("tiny-model-written")
        """;

    /// <summary>
    /// For emulated runs (light workload): runs <see cref="MakeTinyModelPython"/> (mounted beside it) into argv[1],
    /// loads the model back with torch.jit.load and generates <see cref="NewTokens"/> tokens from <see cref="Prompt"/>
    /// greedily, as the server's generate() does; prints "generated=TEXT".
    /// </summary>
    public static string GeneratePython => GenerateTemplate.Replace("PROMPT", Prompt).Replace("NEW_TOKENS", NewTokens.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private const string GenerateTemplate = """
        import json, os, runpy, sys
        here = os.path.dirname(os.path.abspath(__file__))
        runpy.run_path(os.path.join(here, "make_tiny_model.py"), run_name="__main__")
        import torch
        out = sys.argv[1]
        with open(os.path.join(out, "tokenizer.json"), encoding="utf-8") as f:
            vocab = json.load(f)["vocab"]
        index = {c: i for i, c in enumerate(vocab)}
        module = torch.jit.load(os.path.join(out, "model.pt"), map_location="cpu")
        module.eval()
        ids = [index.get(c, 0) for c in "PROMPT"] or [0]
        text = []
        with torch.inference_mode():
            for _ in range(NEW_TOKENS):
                logits = module(torch.tensor([ids], dtype=torch.long))
                nxt = int(torch.argmax(logits[0, -1]).item())
                ids.append(nxt)
                text.append(vocab[nxt])
        print("generated=" + "".join(text))
        """;

    /// <summary>Copies a model directory and flips one byte in the middle of its largest file.</summary>
    public static string Tamper(string modelDir, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (var file in Directory.EnumerateFiles(modelDir))
            File.Copy(file, Path.Combine(destination, Path.GetFileName(file)), overwrite: true);
        var victim = Directory.EnumerateFiles(destination)
            .OrderByDescending(f => new FileInfo(f).Length).FirstOrDefault()
            ?? throw new HardenException($"{modelDir}: no model files to tamper with");
        var bytes = File.ReadAllBytes(victim);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(victim, bytes);
        return Path.GetFileName(victim);
    }

    /// <summary>Calls POST /v1/generate; returns (passed, detail).</summary>
    public static async Task<(bool Passed, string Detail)> GenerateAsync(HttpClient http, Uri baseUri, bool expectKnownAnswer, CancellationToken ct)
    {
        // A buffered body, so Content-Length is sent: the server refuses chunked bodies it cannot size up front.
        using var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(new { prompt = Prompt, max_new_tokens = NewTokens }));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var response = await http.PostAsync(new Uri(baseUri, "/v1/generate"), content, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode) return (false, $"POST /v1/generate answered {(int)response.StatusCode}: {Truncate(body)}");
        string? text;
        try { text = JsonNode.Parse(body)?["text"]?.GetValue<string>(); }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { return (false, $"POST /v1/generate answered non-JSON: {Truncate(body)}"); }
        if (string.IsNullOrEmpty(text)) return (false, $"POST /v1/generate answered no text: {Truncate(body)}");
        if (expectKnownAnswer && text != ExpectedAnswer)
            return (false, $"the tiny model answered '{text}', expected '{ExpectedAnswer}' (the model did not run as built)");
        return (true, $"generated '{text}' for a {Prompt.Length}-character prompt");
    }

    /// <summary>JSON log lines (one object per line) whose "event" is <paramref name="name"/>.</summary>
    public static IReadOnlyList<JsonObject> Events(string logs, string name) =>
        logs.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith('{'))
            .Select(l => { try { return JsonNode.Parse(l) as JsonObject; } catch (JsonException) { return null; } })
            .OfType<JsonObject>()
            .Where(o => o["event"] is JsonValue v && v.TryGetValue<string>(out var s) && s == name).ToList();

    internal static string Truncate(string s, int max = 300)
    {
        s = s.Trim();
        return s.Length <= max ? s : s[..max] + "…";
    }
}
