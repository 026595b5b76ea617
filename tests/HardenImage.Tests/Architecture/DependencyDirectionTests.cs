using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Architecture;

/// <summary>
/// Holds docs/architecture.md true: every folder of src/HardenImage may use only folders listed before it in
/// <see cref="Order"/>. Edges are read from the compiled assembly's metadata and IL (<see cref="NamespaceEdges"/>),
/// so a fully-qualified name or a <c>var</c> cannot slip an arrow past the check the way it slips past `using` lines.
/// </summary>
public class DependencyDirectionTests
{
    /// <summary>Lowest first. The same list, with one line per folder, is in docs/architecture.md.</summary>
    public static readonly string[] Order =
    [
        "Common", "Net", "Aws", "Oci", "Deb", "Contracts", "Registry",
        "Apt", "Lock", "Python", "Build", "Cache", "Sbom", "Scan", "Signing", "Model", "Deploy", "Trace", "FanOut",
    ];

    private static readonly string LibraryDll = typeof(HardenImage.Common.HardenException).Assembly.Location;

    [Fact]
    public void EveryFolderEdge_PointsDownTheAllowedOrder()
    {
        var problems = BackwardEdges(NamespaceEdges.Read(LibraryDll, "HardenImage"), Order);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void FolderGraph_HasNoCycle()
    {
        var cycles = Cycles(NamespaceEdges.Read(LibraryDll, "HardenImage"));
        Assert.True(cycles.Count == 0, string.Join("\n", cycles));
    }

    [Fact]
    public void ArchitectureDoc_ListsTheOrderTheTestEnforces()
    {
        var doc = File.ReadAllText(Path.Combine(RepoRoot.Find(), "docs", "architecture.md"));
        var line = string.Join(" → ", Order);
        Assert.True(doc.Contains(line, StringComparison.Ordinal),
            $"docs/architecture.md does not contain the allowed order as one line:\n{line}\nUpdate the doc and Order together.");
    }

    // The checks themselves must bite: a backward arrow, an unknown folder and a cycle each name the offender.
    [Fact]
    public void BackwardEdge_IsReportedWithItsTypePair()
    {
        var edges = new[]
        {
            new NamespaceEdges.Edge("Scan", "Sbom", "HardenImage.Scan.A", "HardenImage.Sbom.B", 1),
            new NamespaceEdges.Edge("Sbom", "Scan", "HardenImage.Sbom.ImageInventory", "HardenImage.Scan.Pep440Version", 2),
            new NamespaceEdges.Edge("Widgets", "Common", "HardenImage.Widgets.W", "HardenImage.Common.C", 1),
        };
        var problems = BackwardEdges(edges, Order);
        Assert.Equal(2, problems.Count);
        Assert.Contains("Sbom → Scan", problems[0]);
        Assert.Contains("HardenImage.Sbom.ImageInventory uses HardenImage.Scan.Pep440Version", problems[0]);
        Assert.Contains("Widgets", problems[1]);
        Assert.Contains("not in the allowed order", problems[1]);
    }

    [Fact]
    public void Cycle_IsReportedWithEveryFolderOnIt()
    {
        var edges = new[]
        {
            new NamespaceEdges.Edge("Apt", "Build", "HardenImage.Apt.X", "HardenImage.Build.Y", 1),
            new NamespaceEdges.Edge("Build", "Deb", "HardenImage.Build.Y", "HardenImage.Deb.Z", 1),
            new NamespaceEdges.Edge("Deb", "Apt", "HardenImage.Deb.Z", "HardenImage.Apt.X", 1),
            new NamespaceEdges.Edge("Oci", "Common", "HardenImage.Oci.D", "HardenImage.Common.E", 1),
        };
        var cycle = Assert.Single(Cycles(edges));
        Assert.Contains("cycle Apt → Build → Deb → Apt", cycle);
        Assert.Contains("Deb → Apt (HardenImage.Deb.Z uses HardenImage.Apt.X)", cycle);
    }

    internal static List<string> BackwardEdges(IEnumerable<NamespaceEdges.Edge> edges, IReadOnlyList<string> order)
    {
        var rank = order.Select((f, i) => (f, i)).ToDictionary(x => x.f, x => x.i, StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var e in edges)
        {
            var unknown = new[] { e.From, e.To }.Where(f => !rank.ContainsKey(f)).ToList();
            if (unknown.Count > 0)
                problems.Add($"{e.From} → {e.To}: folder {string.Join(", ", unknown)} is not in the allowed order; " +
                             "add it to docs/architecture.md and DependencyDirectionTests.Order where it belongs.");
            else if (rank[e.To] >= rank[e.From])
                problems.Add($"{e.From} → {e.To} goes against the allowed order ({e.To} is above {e.From}): " +
                             $"{e.ExampleFromType} uses {e.ExampleToType}" +
                             (e.TypePairs > 1 ? $" (and {e.TypePairs - 1} more type pairs)" : "") +
                             ". Move the shared type down (Contracts/, Common/) or the user up; see docs/architecture.md.");
        }
        return problems;
    }

    /// <summary>Strongly connected components of two or more folders (Tarjan), each with the edges inside it.</summary>
    internal static List<string> Cycles(IReadOnlyCollection<NamespaceEdges.Edge> edges)
    {
        var next = edges.GroupBy(e => e.From, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(e => e.To).ToList(), StringComparer.Ordinal);
        var nodes = edges.SelectMany(e => new[] { e.From, e.To }).Distinct().Order(StringComparer.Ordinal).ToList();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var low = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        var onStack = new HashSet<string>(StringComparer.Ordinal);
        var components = new List<List<string>>();

        void Visit(string v)
        {
            index[v] = low[v] = index.Count;
            stack.Push(v);
            onStack.Add(v);
            foreach (var w in next.GetValueOrDefault(v) ?? [])
            {
                if (!index.ContainsKey(w)) { Visit(w); low[v] = Math.Min(low[v], low[w]); }
                else if (onStack.Contains(w)) low[v] = Math.Min(low[v], index[w]);
            }
            if (low[v] != index[v]) return;
            var component = new List<string>();
            string x;
            do { x = stack.Pop(); onStack.Remove(x); component.Add(x); } while (x != v);
            if (component.Count > 1) components.Add(component);
        }

        foreach (var n in nodes)
            if (!index.ContainsKey(n)) Visit(n);

        // Per component, one shortest loop from its first member (by name) back to itself, each hop with a type pair.
        var byPair = edges.ToDictionary(e => (e.From, e.To));
        return components.Select(c =>
        {
            var members = c.ToHashSet(StringComparer.Ordinal);
            var start = c.Order(StringComparer.Ordinal).First();
            var cameFrom = new Dictionary<string, string>(StringComparer.Ordinal);
            var queue = new Queue<string>([start]);
            while (queue.Count > 0 && !cameFrom.ContainsKey(start))
            {
                var v = queue.Dequeue();
                foreach (var w in (next.GetValueOrDefault(v) ?? []).Where(members.Contains).Order(StringComparer.Ordinal))
                    if (cameFrom.TryAdd(w, v)) queue.Enqueue(w);
            }
            var loop = new List<string> { start };
            for (var v = cameFrom[start]; v != start; v = cameFrom[v]) loop.Insert(0, v);
            loop.Insert(0, start);
            var hops = loop.Zip(loop.Skip(1), (a, b) => byPair[(a, b)])
                .Select(e => $"{e.From} → {e.To} ({e.ExampleFromType} uses {e.ExampleToType})");
            return $"cycle {string.Join(" → ", loop)} ({c.Count} folders are tangled: " +
                   $"{string.Join(", ", c.Order(StringComparer.Ordinal))}): {string.Join("; ", hops)}";
        }).ToList();
    }
}
