using HardenImage.Oci;
namespace HardenImage.Build.Hardening;

/// <summary>
/// Clear setuid and setgid bits (threat E): no binary in the image can raise privileges, even if
/// no-new-privileges were forgotten on the pod. Off with <c>allow: {setuid: true}</c>.
/// </summary>
public sealed class StripSetuid : IHardeningTransform
{
    private const int SetBits = 0b110_000_000_000; // 04000 | 02000
    public string Name => "no-setuid";
    public string Threat => "E";
    public string Description => "clear setuid/setgid bits on every file and directory";

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        if (context.Image.Allow.Setuid) { report.Add(new(Name, "skipped", "", "allow: {setuid: true}")); return; }
        // Every entry, directories included: a setgid directory (2777) hands its group to everything created in it.
        foreach (var n in tree.Nodes.Where(n => n.Type != FsNodeType.Symlink && (n.Mode & SetBits) != 0)
                     .OrderBy(n => n.Path, StringComparer.Ordinal).ToList())
        {
            tree.Set(n with { Mode = n.Mode & ~SetBits });
            report.Add(new(Name, "changed", n.Path, $"mode {Convert.ToString(n.Mode, 8)} → {Convert.ToString(n.Mode & ~SetBits, 8)}"));
        }
    }
}

/// <summary>
/// No world-writable files or directories outside /tmp (threat T): another process in the pod cannot plant or
/// alter code even where the root filesystem is mounted writable.
/// </summary>
public sealed class NoWorldWritable : IHardeningTransform
{
    private const int OtherWrite = 0b000_000_010;
    public string Name => "no-world-writable";
    public string Threat => "T";
    public string Description => "clear o+w everywhere except /tmp";

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        foreach (var n in tree.Nodes.Where(n => n.Type is FsNodeType.File or FsNodeType.Directory
                                                 && (n.Mode & OtherWrite) != 0 && n.Path != "tmp")
                     .OrderBy(n => n.Path, StringComparer.Ordinal).ToList())
        {
            var mode = n.Mode & ~OtherWrite & ~0b001_000_000_000; // also drop sticky: it only matters with o+w
            tree.Set(n with { Mode = mode });
            report.Add(new(Name, "changed", n.Path, $"mode {Convert.ToString(n.Mode, 8)} → {Convert.ToString(mode, 8)}"));
        }
    }
}

/// <summary>
/// Package files belong to root (threats T and E): a package entry shipped with another owner (for example the
/// runtime user 65532) would let the workload rewrite code or libraries it runs. Every package-provided entry of
/// the layer becomes 0:0; payload (<c>files:</c>, with its declared owner) and generated entries such as
/// /home/nonroot keep theirs.
/// </summary>
public sealed class RootOwnedPackageFiles : IHardeningTransform
{
    public string Name => "root-owned";
    public string Threat => "T,E";
    public string Description => "chown every package-provided entry to root:root";

    public void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report)
    {
        foreach (var n in tree.Nodes.Where(n => n.IsFromPackage && (n.Uid != 0 || n.Gid != 0))
                     .OrderBy(n => n.Path, StringComparer.Ordinal).ToList())
        {
            tree.Set(n with { Uid = 0, Gid = 0 });
            report.Add(new(Name, "changed", n.Path, $"owner {n.Uid}:{n.Gid} → 0:0 (from {n.Owner})"));
        }
    }
}
