using HardenImage.Common;
using HardenImage.Model;

namespace HardenImage.Tests.Model;

/// <summary>
/// Test oracle: an extracted model tree against the files a signed manifest promises (<see cref="ModelArtifact.Files"/>):
/// every promised file present as a regular file with its size and SHA-256, nothing else there, no symlink. In the
/// product that check is the inference server's (images/apps/inference-server/server.py, verify_model_dir, tested by
/// Deploy/ModelServerIntegrityTests); here it checks what the fetcher extracted.
/// </summary>
internal static class ExtractedModelVerifier
{
    /// <summary>The problems found, each naming a file; empty when the tree is exactly the manifest's.</summary>
    public static IReadOnlyList<string> Verify(IReadOnlyList<ManifestFile> files, string directory)
    {
        var problems = new List<string>();
        var root = Path.GetFullPath(directory);
        var expected = files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        var found = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            foreach (var entry in Directory.EnumerateFileSystemEntries(dir).Order(StringComparer.Ordinal))
            {
                var rel = Path.GetRelativePath(root, entry).Replace('\\', '/');
                var info = new FileInfo(entry);
                if (info.LinkTarget != null) { problems.Add($"{rel}: is a symlink; the model has none"); continue; }
                if (Directory.Exists(entry)) { pending.Push(entry); continue; }
                if (!expected.TryGetValue(rel, out var want)) { problems.Add($"{rel}: not in the signed model"); continue; }
                found.Add(rel);
                if (info.Length != want.Size) { problems.Add($"{rel}: {info.Length} bytes, the signed model says {want.Size}"); continue; }
                var sha = Sha256Hex.OfFile(entry);
                if (sha != want.Sha256) problems.Add($"{rel}: SHA-256 {sha}, the signed model says {want.Sha256}");
            }
        }
        foreach (var missing in expected.Keys.Where(k => !found.Contains(k)).Order(StringComparer.Ordinal))
            if (!problems.Any(p => p.StartsWith(missing + ":", StringComparison.Ordinal))) problems.Add($"{missing}: missing");
        return problems;
    }
}
