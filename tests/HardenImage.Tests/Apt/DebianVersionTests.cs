using System.Text;
using CsCheck;
using HardenImage.Apt;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Apt;

public class DebianVersionTests
{
    // FORMATS.md vectors: (a, b, sign of compare(a, b)).
    [Theory]
    [InlineData("1~", "1", -1)]
    [InlineData("2.2~rc-4", "2.2-1", -1)]
    [InlineData("1.0000-1", "1.0-1", 0)]
    [InlineData("1", "0:1", 0)]
    [InlineData("2:2.5", "1:7.5", 1)]
    [InlineData("0foo-", "0foo+", -1)]
    [InlineData("1a", "1000a", -1)]
    [InlineData("3.11", "3.10+nmu1", 1)]
    [InlineData("1:3.8.1-1", "3.8.GA-1", 1)]
    [InlineData("1.0~~", "1.0~", -1)]
    [InlineData("1.0~", "1.0", -1)]
    [InlineData("1.0", "1.0a", -1)]
    [InlineData("1.0a", "1.0+", -1)]
    [InlineData("1.0-1", "1.0-1.1", -1)]
    [InlineData("1.2-3-4", "1.2-3-5", -1)]
    public void Compare_MatchesDpkgVectors(string a, string b, int expected)
    {
        Assert.Equal(expected, Math.Sign(DebianVersion.Compare(a, b)));
        Assert.Equal(-expected, Math.Sign(DebianVersion.Compare(b, a)));
    }

    [Fact]
    public void Parse_RevisionIsAfterTheLastHyphen()
    {
        var v = DebianVersion.Parse("1:2.3-4-5");
        Assert.Equal((1L, "2.3-4", "5"), (v.Epoch, v.Upstream, v.Revision));
    }

    // Versions dpkg accepts: optional epoch, upstream starting with a digit, revision after the last hyphen.
    // The alphabets are small on purpose, to collide often on '~', '+', '.', letters, leading zeros.
    private static readonly Gen<string> Part = Gen.OneOf(
        Gen.Int[0, 12].Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        Gen.Const("0"), Gen.Const("00"), Gen.Const("007"), Gen.Char["abzAZ"].Select(c => c.ToString()),
        Gen.Const("~"), Gen.Const("~~"), Gen.Const("+"), Gen.Const("."), Gen.Const("rc"), Gen.Const("nmu"));

    private static readonly Gen<string> Upstream =
        Gen.Select(Gen.Int[0, 9], Part.Array[0, 5], Gen.Bool, Part.Array[0, 3],
            (d, parts, hyphen, more) => d + string.Concat(parts) + (hyphen ? "-" + string.Concat(more).TrimStart('-') : ""));

    private static readonly Gen<string> Version =
        Gen.Select(Gen.Int[0, 5].Select(e => e < 3 ? "" : (e - 3).ToString(System.Globalization.CultureInfo.InvariantCulture) + ":"),
                   Upstream, Gen.Bool, Part.Array[1, 4],
                   (epoch, up, rev, revParts) => epoch + up + (rev ? "-" + string.Concat(revParts).Replace("-", "") : ""));

    private static readonly Gen<(string, string)> Pair = Gen.OneOf(
        Gen.Select(Version, Version),
        // Near-misses: the same version with one part changed, to exercise equal prefixes.
        Gen.Select(Version, Part, Part, (v, x, y) => (v + x, v + y)));

    /// <summary>
    /// 10,000 generated pairs compared by dpkg's own C code (libdpkg's dpkg_version_compare, which
    /// `dpkg --compare-versions` calls, linked into a small oracle built here: milliseconds for all pairs) and 200 of
    /// them also by the dpkg binary itself (one process per call, ~10 ms each, so all 10,000 would take minutes).
    /// </summary>
    [Trait("Category", "Integration")]
    [Fact]
    public void Compare_AgreesWithDpkgOnGeneratedPairs()
    {
        RequiredService.Tool("dpkg", "dpkg");
        var gcc = RequiredService.Tool("gcc", "gcc");
        if (!File.Exists("/usr/include/dpkg/version.h"))
            Assert.Fail("libdpkg headers are missing: apt-get install -y libdpkg-dev (.ci/services does this).");
        var pairs = Pair.Array[10_000].Single();
        var valid = pairs.Where(p => IsValid(p.Item1) && IsValid(p.Item2)).ToArray();
        Assert.True(valid.Length >= 9_000, $"generator produced only {valid.Length} valid pairs");

        using var tmp = new TempDir();
        var oracle = tmp.Combine("dpkg-version-oracle");
        RequiredService.RunOk(gcc, ["-DLIBDPKG_VOLATILE_API=1", "-o", oracle,
            Path.Combine(AppContext.BaseDirectory, "TestData", "Apt", "dpkg_version_oracle.c"), "-ldpkg"]);
        var input = tmp.Combine("pairs.txt");
        File.WriteAllLines(input, valid.Select(p => p.Item1 + " " + p.Item2));
        var output = RequiredService.RunOk("/bin/sh", ["-c", "\"$0\" < \"$1\"", oracle, input]);
        var oracleResults = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        Assert.Equal(valid.Length, oracleResults.Length);

        var mismatches = new List<string>();
        for (int i = 0; i < valid.Length; i++)
        {
            var ours = Math.Sign(DebianVersion.Compare(valid[i].Item1, valid[i].Item2));
            if (ours != oracleResults[i]) mismatches.Add($"{valid[i].Item1} vs {valid[i].Item2}: dpkg {oracleResults[i]}, ours {ours}");
        }
        Assert.True(mismatches.Count == 0, "DebianVersion disagrees with dpkg:\n" + string.Join("\n", mismatches.Take(20)));

        // The dpkg binary itself, on a sample: one sh process looping, 1-2 dpkg calls a pair.
        var sample = valid.Where((_, i) => i % (valid.Length / 200) == 0).Take(200).ToArray();
        var sampleFile = tmp.Combine("sample.txt");
        File.WriteAllLines(sampleFile, sample.Select(p => p.Item1 + " " + p.Item2));
        var sh = RequiredService.RunOk("/bin/sh", ["-c",
            "while read a b; do if dpkg --compare-versions \"$a\" lt \"$b\"; then echo -1; elif dpkg --compare-versions \"$a\" eq \"$b\"; then echo 0; else echo 1; fi; done < \"$1\"",
            "sh", sampleFile]);
        var dpkgResults = sh.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        Assert.Equal(sample.Length, dpkgResults.Length);
        for (int i = 0; i < sample.Length; i++)
            Assert.True(dpkgResults[i] == Math.Sign(DebianVersion.Compare(sample[i].Item1, sample[i].Item2)),
                $"{sample[i].Item1} vs {sample[i].Item2}: dpkg {dpkgResults[i]}");
        // No wall-clock bound: on a shared, oversubscribed machine the speed says nothing about correctness.
    }

    private static bool IsValid(string v)
    {
        var colon = v.IndexOf(':');
        var rest = colon >= 0 ? v[(colon + 1)..] : v;
        if (rest.Length == 0 || !char.IsAsciiDigit(rest[0])) return false;
        if (rest.EndsWith('-')) return false; // empty revision: dpkg rejects it
        return rest.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '+' or '~' or '-');
    }
}
