using System.Text.RegularExpressions;
using HardenImage.Common;
using HardenImage.Lock;
using HardenImage.Oci;

namespace HardenImage.Build.Hardening;

/// <summary>
/// Byte-code for every Python module of the layer (threat D: with a read-only root and no maintainer scripts,
/// Python would otherwise compile every module on every start, doubling the time an autoscaled pod takes to
/// answer). Compiled once by the image's own interpreter (<see cref="PythonByteCodeCompiler"/>) to checked
/// hash-based .pyc (PEP 552): no timestamps, the same bytes in the amd64 and arm64 layers, and a .pyc whose source
/// was replaced (a child layer, a mounted file) is ignored by the interpreter rather than run stale.
/// A module that does not compile stops the build, naming file and package, unless the image lists it under
/// <c>allow: byteCodeErrors:</c> (py3compile's policy: a failure fails the install unless the package excluded
/// the file). Off with <c>allow: {noByteCode: true}</c>.
/// </summary>
public sealed class PythonByteCode : IHardeningTransform
{
    public string Name => "byte-code";
    public string Threat => "D";
    public string Description => "compile the layer's Python modules to checked hash-based .pyc with the image's interpreter";

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        if (context.Image.Allow.NoByteCode)
        {
            report.Add(new(Name, "skipped", "", $"image {context.Image.Name} opts out (allow: noByteCode)"));
            return;
        }
        if (context.Python is not { } python) return;
        var sources = SourcesOf(tree, context, python.Version);
        if (sources.Count == 0) return;
        var compiled = python.Compile(sources.Select(s => new PythonSource(s.At.Path, s.Content.ContentSha256!, s.Content.Size)).ToList());
        var owners = sources.ToDictionary(s => s.At.Path, s => s.At.Owner, StringComparer.Ordinal);
        var contents = sources.ToDictionary(s => s.At.Path, s => s.Content, StringComparer.Ordinal);

        var refused = new List<string>();
        var perDirectory = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var c in compiled.OrderBy(c => c.Source.ImagePath, StringComparer.Ordinal))
        {
            var path = c.Source.ImagePath;
            var owner = owners[path];
            if (c.Error != null)
            {
                if (Allowed(context.Image, owner, path)) report.Add(new(Name, "skipped", path, $"{c.Error}; allowed for {owner} (allow: byteCodeErrors)"));
                else refused.Add($"/{path} (from {owner}): {c.Error}");
                continue;
            }
            var dir = FsTree.ParentOf(path);
            var cache = (dir.Length == 0 ? "" : dir + "/") + "__pycache__";
            var module = Path.GetFileNameWithoutExtension(path);
            var pyc = $"{cache}/{module}.{python.CacheTag}.pyc";
            var source = contents[path];
            if (tree.Resolve(cache) is { Type: not FsNodeType.Directory } blocker)
                throw new HardenException($"image {context.Image.Name}: /{cache} (from {blocker.Owner}) is not a directory, so the byte-code of /{path} cannot be written; remove it (remove:) or set allow: {{noByteCode: true}}.");
            if (tree.Resolve(cache) == null)
                tree.Set(new FsNode { Path = cache, Type = FsNodeType.Directory, Mode = 493, Owner = "harden:" + Name });
            // Readable by whoever reads its source, writable by no one; a .pyc a package or payload shipped at this name is replaced.
            tree.Set(new FsNode
            {
                Path = pyc, Type = FsNodeType.File, Mode = source.Mode & 0b100_100_100, Uid = source.Uid, Gid = source.Gid,
                Size = c.PycSize, ContentSha256 = c.PycSha256, Owner = "harden:" + Name,
            });
            perDirectory[cache] = perDirectory.GetValueOrDefault(cache) + 1;
        }
        if (refused.Count > 0)
        {
            var first = refused.Count > 20 ? refused.Take(20).Append($"… and {refused.Count - 20} more") : refused;
            throw new HardenException(
                $"{context.Image.File}: image {context.Image.Name} ({context.Architecture}): {refused.Count} Python module(s) do not compile with Python {python.Version}: " +
                string.Join("; ", first) +
                ". Fix the module, exclude its package, or let the image ship it without byte-code: " +
                "allow: {byteCodeErrors: {<package>: [<path>]}} (docs/images.md, \"Byte-code\").");
        }
        foreach (var (dir, count) in perDirectory)
            report.Add(new(Name, "generated", dir, $"{count} checked hash-based .pyc ({python.CacheTag})"));
    }

    /// <summary>
    /// The layer's .py files where Python imports from: the interpreter's own library (this version only),
    /// dist-packages and site-packages, and payload (files:). Debian compiles the same public directories
    /// (py3compile -p); private directories of packages are left as they ship. A symlinked module (Debian's
    /// sitecustomize.py → /etc/python3.X/sitecustomize.py) is compiled at the link, from the file it ends at
    /// in the image: that is where Python looks for its __pycache__ and what it hashes.
    /// </summary>
    internal static List<(FsNode At, FsNode Content)> SourcesOf(FsTree tree, HardeningContext context, string version)
    {
        var library = new Regex($"^usr/(lib/python3/dist-packages/|lib/python{Regex.Escape(version)}/|local/lib/python{Regex.Escape(version)}/(dist|site)-packages/)",
            RegexOptions.CultureInvariant);
        var identity = new ExecutableIdentity(tree, context);
        var result = new List<(FsNode, FsNode)>();
        foreach (var n in tree.Nodes.Where(n => n.Type is FsNodeType.File or FsNodeType.Symlink && n.Path.EndsWith(".py", StringComparison.Ordinal)
                                                && !n.Path.Contains("/__pycache__/", StringComparison.Ordinal)
                                                && (library.IsMatch(n.Path) || n.Owner.StartsWith("payload:", StringComparison.Ordinal)))
                     .OrderBy(n => n.Path, StringComparer.Ordinal))
        {
            var content = n.Type == FsNodeType.File ? n : identity.Follow(n.Path) is { } target ? tree.Resolve(target) : null;
            if (content is { Type: FsNodeType.File, ContentSha256: not null }) result.Add((n, content));
        }
        return result;
    }

    private static bool Allowed(ImageDefinition image, string owner, string path) =>
        image.Allow.ByteCodeErrors.TryGetValue(owner, out var globs) && globs.Any(g => RemoveListedPaths.GlobToRegex(g).IsMatch(path));
}
