using System.Collections;
using System.Reflection;
using Spectre.Console.Cli;

namespace HardenImage.Cli;

/// <summary>One command as the user types it ("db update") with the options its settings declare.</summary>
public sealed record CatalogCommand(string Path, IReadOnlyList<CatalogOption> Options);

/// <summary>One option: every spelling ("--image", "-i") and the property type its value converts to.</summary>
public sealed record CatalogOption(IReadOnlyList<string> Names, Type ValueType);

/// <summary>
/// The commands and options the app was configured with, for "did you mean" and for naming the option whose
/// value failed to convert. Spectre keeps its command model internal, so this reads it by reflection; a Spectre
/// upgrade that moves it makes the catalog empty, which Cli/CommandCatalogTests catches.
/// </summary>
public static class CommandCatalog
{
    public static IReadOnlyList<CatalogCommand> Read(CommandApp app)
    {
        var result = new List<CatalogCommand>();
        var configurator = typeof(CommandApp).GetField("_configurator", BindingFlags.NonPublic | BindingFlags.Instance)?.GetValue(app);
        if (configurator?.GetType().GetProperty("Commands")?.GetValue(configurator) is IEnumerable commands)
            Walk(commands, "", result);
        return result;
    }

    private static void Walk(IEnumerable commands, string prefix, List<CatalogCommand> result)
    {
        foreach (var c in commands)
        {
            var t = c.GetType();
            var name = t.GetProperty("Name")?.GetValue(c) as string;
            if (name == null) continue;
            var path = prefix.Length == 0 ? name : prefix + " " + name;
            var settings = t.GetProperty("SettingsType")?.GetValue(c) as Type;
            result.Add(new CatalogCommand(path, settings != null ? OptionsOf(settings) : []));
            if (t.GetProperty("Children")?.GetValue(c) is IEnumerable children) Walk(children, path, result);
        }
    }

    public static IReadOnlyList<CatalogOption> OptionsOf(Type settings) =>
        settings.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => (p, a: p.GetCustomAttribute<CommandOptionAttribute>()))
            .Where(x => x.a != null)
            .Select(x => new CatalogOption(
                x.a!.LongNames.Select(n => "--" + n).Concat(x.a.ShortNames.Select(n => "-" + n)).ToList(), x.p.PropertyType))
            .ToList();

    /// <summary>The command an argument list names: the longest configured path its leading words spell.</summary>
    public static CatalogCommand? Find(IReadOnlyList<CatalogCommand> catalog, IReadOnlyList<string> args)
    {
        CatalogCommand? best = null;
        var words = args.TakeWhile(a => !a.StartsWith('-')).ToList();
        for (var n = 1; n <= words.Count; n++)
        {
            var path = string.Join(' ', words.Take(n));
            if (catalog.FirstOrDefault(c => c.Path == path) is { } hit) best = hit;
        }
        return best;
    }
}
