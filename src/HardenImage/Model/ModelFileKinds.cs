namespace HardenImage.Model;

/// <summary>
/// Which ModelPack layer media type a file travels as, by its name. Compiled accelerator artifacts (Neuron NEFF,
/// TensorRT engines) are weights: what the runtime loads. A name we do not know is packed as a weight and its layer
/// says so (<c>org.cncf.model.file.mediatype.untested: "true"</c>), as the spec asks of a guess.
/// </summary>
public static class ModelFileKinds
{
    private static readonly HashSet<string> WeightExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".ggml", ".onnx", ".neff", ".pb", ".h5", ".keras",
        ".tflite", ".engine", ".plan", ".msgpack", ".npz", ".npy", ".params", ".mar", ".xmodel", ".mlmodel", ".ot",
    };

    private static readonly HashSet<string> ConfigExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".json", ".yaml", ".yml", ".toml", ".model", ".tiktoken", ".vocab", ".spm",
    };

    private static readonly HashSet<string> CodeExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".py", ".sh", ".ipynb", ".jinja", ".js", ".cpp", ".c", ".h", ".cu",
    };

    private static readonly HashSet<string> DocExtensions = new(StringComparer.OrdinalIgnoreCase) { ".md", ".rst", ".pdf", ".html" };

    private static readonly string[] DocNames = ["readme", "license", "licence", "notice", "copying", "authors", "model_card", "citation"];

    /// <summary>The layer media type for <paramref name="path"/> and whether it was a guess (an unknown name).</summary>
    public static (string MediaType, bool Guessed) Classify(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        var ext = System.IO.Path.GetExtension(name);
        var stem = System.IO.Path.GetFileNameWithoutExtension(name).ToLowerInvariant();
        if (DocExtensions.Contains(ext) || DocNames.Any(d => stem == d || stem.StartsWith(d + "-", StringComparison.Ordinal)))
            return (ModelPackFormat.DocLayer, false);
        if (WeightExtensions.Contains(ext)) return (ModelPackFormat.WeightLayer, false);
        if (ConfigExtensions.Contains(ext) || name is "merges.txt" or "vocab.txt" or "added_tokens.txt")
            return (ModelPackFormat.WeightConfigLayer, false);
        if (CodeExtensions.Contains(ext)) return (ModelPackFormat.CodeLayer, false);
        return (ModelPackFormat.WeightLayer, true);
    }
}
