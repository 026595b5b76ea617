using System.Text;
using CsCheck;
using HardenImage.Oci;
using static HardenImage.Tests.Oci.OciTestImages;

namespace HardenImage.Tests.Oci;

/// <summary>Properties of the layer order over random trees (names chosen to trip plain byte order: "a-c" vs "a/b").</summary>
public class TarOrderPropertyTests
{
    private static readonly Gen<string> Component = Gen.OneOf("a", "b", "a-c", "a.b", "é", "Z", "a0");
    private static readonly Gen<string> PathGen = Component.Array[1, 4].Select(parts => string.Join('/', parts));

    [Fact]
    public void Tar_IsInsertionOrderInvariant_AndParentsPrecedeChildren()
    {
        Gen.Select(PathGen.Array[1, 25], Gen.Int).Sample((paths, seed) =>
        {
            var entries = paths.Distinct().Select(p => LayerEntry.Directory(p)).ToList();
            var shuffled = entries.OrderBy(_ => new Random(seed).Next()).ToList();
            var tar = Tar(entries);
            if (!tar.AsSpan().SequenceEqual(Tar(shuffled))) return false;
            var seen = new HashSet<string>();
            foreach (var name in ReadTar(tar).Select(e => e.Name.TrimEnd('/')))
            {
                var slash = name.LastIndexOf('/');
                if (slash > 0 && !seen.Contains(name[..slash])) return false;
                seen.Add(name);
            }
            return true;
        }, iter: 200);
    }
}
