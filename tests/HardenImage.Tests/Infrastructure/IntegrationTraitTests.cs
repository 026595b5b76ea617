using System.Reflection;
using System.Reflection.Emit;

namespace HardenImage.Tests.Infrastructure;

/// <summary>
/// The fast unit run (<c>--filter "Category!=Integration&amp;Category!=AwsLive&amp;Category!=ArchiveLive&amp;Category!=ToolImage"</c>,
/// docs/testing.md) is only fast and self-contained while every test class that starts a process, a registry or a
/// loopback server carries a category that this filter excludes. This reads the test assembly's IL: a test class
/// that reaches such infrastructure (directly, through a kit or fixture of this assembly, or in a lambda or async
/// method) without one of those categories fails here, naming the class and what it reaches.
/// </summary>
public class IntegrationTraitTests
{
    /// <summary>The categories the unit filter excludes.</summary>
    private static readonly HashSet<string> SlowCategories = ["Integration", "AwsLive", "ArchiveLive", "ToolImage"];

    /// <summary>Types whose use makes a test an integration test: processes, the registry launcher, sockets and listeners.</summary>
    private static readonly HashSet<Type> InfrastructureTypes =
    [
        typeof(System.Diagnostics.ProcessStartInfo),
        typeof(System.Net.HttpListener),
        typeof(System.Net.Sockets.TcpListener),
        typeof(System.Net.Sockets.TcpClient),
        typeof(System.Net.Sockets.Socket),
        typeof(RegistryFixture),
        typeof(LoopbackPort),
    ];

    /// <summary>
    /// Types of which only some members count: <see cref="RequiredService"/> members that run or require an outside
    /// tool (InCi and FindOnPath do not), and starting a <see cref="System.Diagnostics.Process"/> (reading the current
    /// process's memory does not).
    /// </summary>
    private static readonly Dictionary<Type, HashSet<string>> InfrastructureMembers = new()
    {
        [typeof(RequiredService)] = ["Tool", "DockerHost", "Run", "RunOk"],
        [typeof(System.Diagnostics.Process)] = ["Start", ".ctor"],
    };

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    [Fact]
    public void EveryTestUsingProcessesRegistriesOrLoopbackServers_HasAnExcludedCategory()
    {
        var reach = new Reach(typeof(IntegrationTraitTests).Assembly);
        var missing = new List<string>();
        foreach (var test in TestClasses())
        {
            if (SlowCategories.Overlaps(Categories(test))) continue;
            var whole = reach.OfClass(test);
            foreach (var method in TestMethods(test))
            {
                if (SlowCategories.Overlaps(Categories(method))) continue;
                var what = whole ?? reach.Of(method);
                if (what != null) missing.Add($"{test.FullName}.{method.Name} (reaches {what})");
            }
        }
        missing.Sort(StringComparer.Ordinal);
        Assert.True(missing.Count == 0, "Integration tests without an excluded category would run in the fast unit subset; " +
                                        "add [Trait(\"Category\", \"Integration\")] to the test or its class:\n" + string.Join("\n", missing));
    }

    [Fact]
    public void TheScan_SeesTheRegistryLauncherThroughAKit_AndNotInAPureUnitTest()
    {
        // The check above is only worth something if it finds what it should: a test reaching the registry through a
        // helper type of this assembly or a class fixture, a tool run in one test of a class, and nothing in a test
        // that only computes.
        var reach = new Reach(typeof(IntegrationTraitTests).Assembly);
        string? Reaches(Type t) => reach.OfClass(t) ?? TestMethods(t).Select(reach.Of).FirstOrDefault(r => r != null);
        Assert.Contains("FanOutKit", Reaches(typeof(HardenImage.Tests.FanOut.FanOutBitForBitTests)));
        Assert.Contains("RegistryFixture", Reaches(typeof(HardenImage.Tests.Oci.RegistryFixtureTests)));
        Assert.Contains("RegistryFixture", Reaches(typeof(HardenImage.Tests.Registry.DistributionPushTests)));
        Assert.Null(Reaches(typeof(IntegrationTraitTests)));
        Assert.Null(Reaches(typeof(HardenImage.Tests.Deb.Deb822Tests)));
    }

    private static IEnumerable<Type> TestClasses() =>
        typeof(IntegrationTraitTests).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false } && TestMethods(t).Any());

    private static IEnumerable<MethodInfo> TestMethods(Type t) =>
        t.GetMethods(BindingFlags.Public | BindingFlags.Instance).Where(m => m.GetCustomAttributes<FactAttribute>(inherit: true).Any());

    private static IEnumerable<string> Categories(MemberInfo m) =>
        m.GetCustomAttributesData()
            .Where(a => a.AttributeType == typeof(TraitAttribute) && a.ConstructorArguments.Count == 2
                        && (string?)a.ConstructorArguments[0].Value == "Category")
            .Select(a => (string)a.ConstructorArguments[1].Value!);

    /// <summary>
    /// Which methods of this assembly reach infrastructure, directly or through other methods and types of this
    /// assembly, as a fixpoint over a graph whose nodes are (outermost type, method name): compiler-generated code
    /// (async state machines, lambdas, local functions, named &lt;Method&gt;...) counts as the method it came from,
    /// and a node for a whole type (its fields, base, interfaces such as IClassFixture&lt;T&gt;, constructors) stands
    /// for what every test of the class shares. A type of this assembly used from elsewhere counts as a whole when
    /// any of its methods reaches.
    /// </summary>
    private sealed class Reach
    {
        private const string Shared = "<shared>";
        private readonly Dictionary<(Type, string), string> _reached = new();

        public Reach(Assembly assembly)
        {
            var edges = new Dictionary<(Type, string), HashSet<(Type, string)>>();
            var members = new Dictionary<Type, HashSet<string>>();
            void Edge((Type, string) from, (Type, string) to)
            {
                if (!edges.TryGetValue(from, out var set)) edges[from] = set = [];
                set.Add(to);
            }
            foreach (var type in assembly.GetTypes())
            {
                var owner = Outermost(type);
                if (owner == typeof(IntegrationTraitTests)) continue;
                if (!members.TryGetValue(owner, out var names)) members[owner] = names = [];
                foreach (var (node, referenced, member) in References(type))
                {
                    var from = (owner, node);
                    names.Add(node);
                    var t = referenced.IsGenericType ? referenced.GetGenericTypeDefinition() : referenced;
                    if (InfrastructureTypes.Contains(t) || InfrastructureMembers.TryGetValue(t, out var m) && member != null && m.Contains(member))
                        _reached.TryAdd(from, member == null ? t.Name : $"{t.Name}.{member}");
                    else if (InfrastructureMembers.ContainsKey(t)) { } // its other members (RequiredService.InCi) are harmless
                    else if (t.Assembly == assembly && Outermost(t) == owner && member != null && !t.Name.StartsWith('<'))
                        Edge(from, (owner, member is ".ctor" or ".cctor" ? Shared : member));
                    else if (t.Assembly == assembly && Outermost(t) != owner)
                        Edge(from, (Outermost(t), Shared + "any"));
                }
            }
            // "any method of the type" and the shared node reach when any node of the type does.
            foreach (var (type, names) in members)
                foreach (var name in names.Append(Shared))
                    Edge((type, Shared + "any"), (type, name));
            for (var changed = true; changed;)
            {
                changed = false;
                foreach (var (from, targets) in edges)
                {
                    if (_reached.ContainsKey(from)) continue;
                    var via = targets.FirstOrDefault(_reached.ContainsKey);
                    if (via == default) continue;
                    _reached[from] = via.Item2 == Shared + "any" || via.Item1 != from.Item1
                        ? $"{via.Item1.Name} → {_reached[via]}" : $"{via.Item2} → {_reached[via]}";
                    changed = true;
                }
            }
        }

        /// <summary>What the parts every test of <paramref name="t"/> shares reach (constructor, fields, fixtures), or null.</summary>
        public string? OfClass(Type t)
        {
            for (var c = t; c != null && c != typeof(object); c = c.BaseType)
                if (_reached.TryGetValue((Outermost(c), Shared), out var what)) return what;
            return null;
        }

        /// <summary>What test method <paramref name="m"/> reaches on its own (its body, lambdas, helpers it calls), or null.</summary>
        public string? Of(MethodInfo m) => _reached.GetValueOrDefault((Outermost(m.DeclaringType!), m.Name));

        /// <summary>The node of a method: compiler-generated code belongs to the method named in its &lt;...&gt;.</summary>
        private static string NodeOf(Type declaring, MethodBase m)
        {
            foreach (var name in new[] { declaring.Name, m.Name })
                if (name.StartsWith('<') && name.IndexOf('>') is > 1 and var end) return name[1..end];
            if (declaring.Name.StartsWith('<') || m.IsConstructor) return Shared;
            return m.Name;
        }

        /// <summary>
        /// What a type names, by node: base, interfaces (IClassFixture&lt;T&gt;), fields and properties for the shared
        /// node; signatures and every type, method and field the IL of each method uses for that method's node.
        /// </summary>
        private static IEnumerable<(string Node, Type Type, string? Member)> References(Type type)
        {
            const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            // A closure class (<>c__DisplayClass) does not say which method it serves; the methods that fill it name
            // the same types in their IL, so its fields are skipped rather than charged to the whole class.
            var shared = !type.Name.StartsWith('<') ? Shared
                : type.Name.IndexOf('>') is > 1 and var end ? type.Name[1..end] : null;
            if (shared != null)
            {
                if (type.BaseType != null) foreach (var t in Expand(type.BaseType)) yield return (shared, t, null);
                foreach (var i in type.GetInterfaces()) foreach (var t in Expand(i)) yield return (shared, t, null);
                foreach (var f in type.GetFields(all)) foreach (var t in Expand(f.FieldType)) yield return (shared, t, null);
            }
            foreach (MethodBase m in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
            {
                var node = NodeOf(type, m);
                foreach (var p in m.GetParameters()) foreach (var t in Expand(p.ParameterType)) yield return (node, t, null);
                if (m is MethodInfo mi) foreach (var t in Expand(mi.ReturnType)) yield return (node, t, null);
                foreach (var (t, member) in IlReferences(m)) yield return (node, t, member);
            }
        }
    }

    private static Type Outermost(Type t)
    {
        while (t.DeclaringType != null) t = t.DeclaringType;
        return t;
    }

    private static IEnumerable<Type> Expand(Type t)
    {
        if (t.HasElementType) { foreach (var e in Expand(t.GetElementType()!)) yield return e; yield break; }
        if (t.IsGenericParameter) yield break;
        yield return t;
        if (t.IsGenericType) foreach (var a in t.GetGenericArguments()) foreach (var e in Expand(a)) yield return e;
    }

    private static IEnumerable<(Type Type, string? Member)> IlReferences(MethodBase method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il == null) yield break;
        var typeArgs = method.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (var at = 0; at < il.Length;)
        {
            OpCode op;
            if (il[at] == 0xFE) { op = OpCodesByValue[(short)(0xFE00 | il[at + 1])]; at += 2; }
            else { op = OpCodesByValue[il[at]]; at += 1; }
            switch (op.OperandType)
            {
                case OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok:
                    var token = BitConverter.ToInt32(il, at);
                    at += 4;
                    MemberInfo? member;
                    try { member = method.Module.ResolveMember(token, typeArgs, methodArgs); }
                    catch (Exception ex) when (ex is ArgumentException or BadImageFormatException or TypeLoadException or FileNotFoundException) { continue; }
                    switch (member)
                    {
                        case Type t:
                            foreach (var e in Expand(t)) yield return (e, null);
                            break;
                        case MethodBase { DeclaringType: { } owner } m:
                            foreach (var e in Expand(owner)) yield return (e, e == owner ? m.Name : null);
                            if (m.IsGenericMethod) foreach (var a in m.GetGenericArguments()) foreach (var e in Expand(a)) yield return (e, null);
                            break;
                        case FieldInfo { DeclaringType: { } owner } f:
                            foreach (var e in Expand(owner)) yield return (e, e == owner ? f.Name : null);
                            break;
                    }
                    break;
                case OperandType.InlineSwitch:
                    at += 4 + 4 * BitConverter.ToInt32(il, at);
                    break;
                default:
                    at += op.OperandType switch
                    {
                        OperandType.InlineNone => 0,
                        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                        OperandType.InlineVar => 2,
                        OperandType.InlineI8 or OperandType.InlineR => 8,
                        _ => 4,
                    };
                    break;
            }
        }
    }
}
