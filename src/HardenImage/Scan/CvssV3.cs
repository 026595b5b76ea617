namespace HardenImage.Scan;

/// <summary>
/// CVSS v3.0/v3.1 base score from a vector string (FIRST CVSS v3.1 specification §7.1, Roundup from Appendix A).
/// Only the base metrics count; temporal/environmental metrics are accepted and ignored.
/// </summary>
public static class CvssV3
{
    public static bool TryBaseScore(string? vector, out double score)
    {
        score = 0;
        if (string.IsNullOrEmpty(vector) || !vector.StartsWith("CVSS:3.", StringComparison.Ordinal)) return false;
        var m = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in vector.Split('/').Skip(1))
        {
            var kv = part.Split(':');
            if (kv.Length != 2) return false;
            m[kv[0]] = kv[1];
        }
        if (!m.TryGetValue("S", out var s) || (s != "U" && s != "C")) return false;
        bool changed = s == "C";
        double? av = Get(m, "AV") switch { "N" => 0.85, "A" => 0.62, "L" => 0.55, "P" => 0.2, _ => null };
        double? ac = Get(m, "AC") switch { "L" => 0.77, "H" => 0.44, _ => null };
        double? pr = Get(m, "PR") switch { "N" => 0.85, "L" => changed ? 0.68 : 0.62, "H" => changed ? 0.5 : 0.27, _ => null };
        double? ui = Get(m, "UI") switch { "N" => 0.85, "R" => 0.62, _ => null };
        double? c = Cia(Get(m, "C")), i = Cia(Get(m, "I")), a = Cia(Get(m, "A"));
        if (av is null || ac is null || pr is null || ui is null || c is null || i is null || a is null) return false;
        double iss = 1 - (1 - c.Value) * (1 - i.Value) * (1 - a.Value);
        double impact = changed ? 7.52 * (iss - 0.029) - 3.25 * Math.Pow(iss - 0.02, 15) : 6.42 * iss;
        double exploitability = 8.22 * av.Value * ac.Value * pr.Value * ui.Value;
        if (impact <= 0) { score = 0; return true; }
        score = changed ? Roundup(Math.Min(1.08 * (impact + exploitability), 10)) : Roundup(Math.Min(impact + exploitability, 10));
        return true;
    }

    private static string? Get(Dictionary<string, string> m, string k) => m.TryGetValue(k, out var v) ? v : null;
    private static double? Cia(string? v) => v switch { "H" => 0.56, "L" => 0.22, "N" => 0.0, _ => null };

    // v3.1 Roundup: avoids floating-point artefacts by working in integer 1/100000ths.
    private static double Roundup(double x)
    {
        long intInput = (long)Math.Round(x * 100000);
        return intInput % 10000 == 0 ? intInput / 100000.0 : (Math.Floor(intInput / 10000.0) + 1) / 10.0;
    }

    /// <summary>Qualitative rating of a base score (CVSS v3.1 §5).</summary>
    public static Severity Rating(double score) => score switch
    {
        >= 9.0 => Severity.Critical,
        >= 7.0 => Severity.High,
        >= 4.0 => Severity.Medium,
        > 0 => Severity.Low,
        _ => Severity.Negligible,
    };
}
