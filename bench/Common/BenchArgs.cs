using System.Globalization;

namespace HardenImage.Bench;

/// <summary>
/// A bench's command line: <c>--name value</c> options (repeatable), <c>--flag</c>s and <c>-h/--help</c>. An unknown
/// option or a missing value is one line on stderr with the usage, and the bench exits 2.
/// </summary>
public sealed class BenchArgs
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    private BenchArgs() { }

    /// <summary>Null when the bench should stop: <paramref name="exitCode"/> is 0 after --help, 2 after an error.</summary>
    public static BenchArgs? Parse(string[] args, string usage, IReadOnlyCollection<string> options, IReadOnlyCollection<string> flags, out int exitCode)
    {
        var parsed = new BenchArgs();
        exitCode = 0;
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a is "-h" or "--help") { Console.WriteLine(usage); return null; }
            if (flags.Contains(a)) { parsed._flags.Add(a); continue; }
            if (options.Contains(a) && i + 1 < args.Length)
            {
                if (!parsed._values.TryGetValue(a, out var list)) parsed._values[a] = list = [];
                list.Add(args[++i]);
                continue;
            }
            var hint = usage.Contains('\n') ? "see --help" : "usage: " + usage; // one line either way
            Console.Error.WriteLine(options.Contains(a) ? $"option {a} needs a value; {hint}" : $"unknown option {a}; {hint}");
            exitCode = 2;
            return null;
        }
        return parsed;
    }

    public bool Flag(string name) => _flags.Contains(name);

    public string Text(string name, string fallback) => _values.TryGetValue(name, out var v) ? v[^1] : fallback;

    public string? Text(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;

    public IReadOnlyList<string> All(string name) => _values.TryGetValue(name, out var v) ? v : [];

    public string FullPath(string name, string fallback) => Path.GetFullPath(Text(name, fallback));

    public int Int(string name, int fallback) =>
        _values.TryGetValue(name, out var v) ? int.Parse(v[^1], CultureInfo.InvariantCulture) : fallback;

    public int[] Ints(string name, int[] fallback) =>
        _values.TryGetValue(name, out var v) ? v[^1].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray() : fallback;
}
