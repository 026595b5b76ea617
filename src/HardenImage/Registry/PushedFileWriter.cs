using HardenImage.Common;
using HardenImage.Contracts;

namespace HardenImage.Registry;

/// <summary>
/// The one writer of artifacts/pushed.json. The record's shape and its readers are in Contracts/PushedFile.cs, below
/// every stage that reads it; the writer stays with push because each entry's <c>reference</c> is spelled by
/// <see cref="RegistryTarget"/>. An extension member, so callers still write <c>PushedFile.Save(...)</c>.
/// </summary>
public static class PushedFileWriter
{
    extension(PushedFile)
    {
        /// <summary>
        /// Merges <paramref name="results"/> into the file at <paramref name="path"/> under its lock (two per-image push
        /// jobs on one artifacts directory both land) and writes it atomically. A different registry replaces the file:
        /// its records would name digests that are not in the new one.
        /// </summary>
        public static PushedFile Save(string path, string registry, IEnumerable<ImagePushResult> results)
        {
            var target = RegistryTarget.Parse(registry, "pushed.json registry");
            PushedFile file = null!;
            RecordFile.Update(path, text =>
            {
                var existing = text == null ? null : PushedFile.Parse(text, path, strict: false);
                file = existing != null && existing.Registry == registry ? existing : new PushedFile { Registry = registry };
                // Entries an older harden wrote have no reference yet: derive it, so every reader can rely on it.
                foreach (var (name, image) in file.Images.ToList())
                    if (image.Reference == null) file.Images[name] = image with { Reference = target.Reference(image.Repository, image.Index).ToString() };
                foreach (var r in results)
                    file.Images[r.Image] = new PushedImage
                    {
                        Repository = r.Repository,
                        Index = r.IndexDigest,
                        Reference = target.Reference(r.Repository, r.IndexDigest).ToString(),
                        Tags = r.Tags.ToList(),
                        Manifests = new SortedDictionary<string, string>(r.ManifestDigests.ToDictionary(), StringComparer.Ordinal),
                    };
                return file.ToJson();
            });
            return file;
        }
    }
}
