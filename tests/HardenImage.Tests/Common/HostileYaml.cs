using System.Text;

namespace HardenImage.Tests.Common;

/// <summary>Hostile YAML made on the fly (never committed): alias bombs, deep nesting, control bytes.</summary>
public static class HostileYaml
{
    /// <summary>
    /// "Billion laughs": ten levels of nine aliases each, about 1 KB of text that expands to 9^10 (3.5 billion)
    /// nodes. Shaped as an OSV record so the advisory reader takes it for one.
    /// </summary>
    public static string BillionLaughsOsv()
    {
        var sb = new StringBuilder("id: PYSEC-0000-1\nmodified: '2024-01-01T00:00:00Z'\n");
        sb.Append("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (var i = 1; i <= 9; i++)
            sb.Append($"l{i}: &l{i} [{string.Join(", ", Enumerable.Repeat($"*l{i - 1}", 9))}]\n");
        sb.Append("affected: [*l9]\n");
        return sb.ToString();
    }

    /// <summary><paramref name="depth"/> nested flow sequences: <c>key: [[[[…]]]]</c>.</summary>
    public static string DeepFlow(int depth, string key = "packages") =>
        $"{key}: " + new string('[', depth) + new string(']', depth) + "\n";

    /// <summary><paramref name="depth"/> nested block mappings.</summary>
    public static string DeepBlock(int depth)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < depth; i++) sb.Append(' ', i).Append("k:\n");
        return sb.ToString();
    }
}
