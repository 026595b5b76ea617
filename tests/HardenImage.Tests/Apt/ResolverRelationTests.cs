using HardenImage.Apt;

namespace HardenImage.Tests.Apt;

/// <summary>Depends/Pre-Depends/Provides syntax (Debian Policy §7.1, §7.5; Multi-Arch qualifiers; build profiles).</summary>
public class ResolverRelationTests
{
    [Fact]
    public void ParseField_SplitsGroupsAndAlternatives()
    {
        var groups = Relation.ParseField("libc6 (>= 2.38), debconf (>= 0.5) | debconf-2.0,\n zlib1g (>= 1:1.2.0),");

        Assert.Equal(3, groups.Count);
        Assert.Equal("debconf (>= 0.5) | debconf-2.0", groups[1].Text);
        Assert.Equal(new[] { "debconf", "debconf-2.0" }, groups[1].Alternatives.Select(a => a.Name));
        var zlib = groups[2].Alternatives.Single();
        Assert.Equal((RelationOperator.LaterOrEqual, 1L, "1.2.0"), (zlib.Operator, zlib.Version!.Epoch, zlib.Version.Upstream));
    }

    [Theory]
    [InlineData("a (<< 1)", RelationOperator.StrictlyEarlier)]
    [InlineData("a (<= 1)", RelationOperator.EarlierOrEqual)]
    [InlineData("a (< 1)", RelationOperator.EarlierOrEqual)]   // obsolete spelling of <=
    [InlineData("a (= 1)", RelationOperator.Exactly)]
    [InlineData("a (>= 1)", RelationOperator.LaterOrEqual)]
    [InlineData("a (> 1)", RelationOperator.LaterOrEqual)]     // obsolete spelling of >=
    [InlineData("a (>> 1)", RelationOperator.StrictlyLater)]
    [InlineData("a(>>1)", RelationOperator.StrictlyLater)]
    [InlineData("a", RelationOperator.None)]
    public void Parse_ReadsEveryOperator(string text, RelationOperator expected)
    {
        var r = Relation.Parse(text);

        Assert.Equal(("a", expected), (r.Name, r.Operator));
    }

    [Fact]
    public void Parse_ReadsQualifierArchitecturesAndProfiles()
    {
        var r = Relation.Parse("python3:any (>= 3.11~) [amd64 arm64] <!nocheck> <!cross pkg.foo>");

        Assert.Equal("python3", r.Name);
        Assert.Equal("any", r.ArchQualifier);
        Assert.Equal("3.11~", r.Version!.ToString());
        Assert.Equal(new[] { "amd64", "arm64" }, r.ArchRestrictions);
        Assert.Equal(2, r.BuildProfiles.Count);
        Assert.Equal("python3:any (>= 3.11~) [amd64 arm64] <!nocheck> <!cross pkg.foo>", r.ToString());
    }

    [Theory]
    [InlineData("[amd64]", "amd64", true)]
    [InlineData("[amd64]", "arm64", false)]
    [InlineData("[!amd64 !i386]", "amd64", false)]
    [InlineData("[!amd64 !i386]", "arm64", true)]
    [InlineData("[linux-any]", "arm64", true)]
    [InlineData("[any-amd64]", "amd64", true)]
    [InlineData("[any-amd64]", "arm64", false)]
    [InlineData("[hurd-any]", "amd64", false)]
    [InlineData("<!nocheck>", "amd64", true)]
    [InlineData("<nocheck>", "amd64", false)]
    [InlineData("<nocheck> <!stage1>", "amd64", true)]
    public void AppliesTo_EvaluatesRestrictions(string restriction, string arch, bool applies)
    {
        Assert.Equal(applies, Relation.Parse("pkg " + restriction).AppliesTo(arch));
    }

    [Theory]
    [InlineData("(>= 1:0)", "2.0", false)]        // epoch 1 beats epoch 0
    [InlineData("(>= 1:0)", "1:0.1", true)]
    [InlineData("(<< 1.0)", "1.0~rc1", true)]     // '~' sorts before the end
    [InlineData("(>= 1.0)", "1.0~rc1", false)]
    [InlineData("(= 1.0-1)", "1.0000-1", true)]   // dpkg: numerically equal
    [InlineData("(= 1)", "0:1", true)]
    [InlineData("(>> 3.10+nmu1)", "3.11", true)]
    [InlineData("(<< 2.2-1)", "2.2~rc-4", true)]
    public void AcceptsVersion_UsesDpkgOrdering(string constraint, string candidate, bool accepted)
    {
        Assert.Equal(accepted, Relation.Parse("pkg " + constraint).AcceptsVersion(DebianVersion.Parse(candidate)));
    }

    [Fact]
    public void ParseProvides_ReadsVersionedAndUnversioned()
    {
        var provides = Relation.ParseProvides("python3-abi (= 3.13), awk, mail-transport-agent");

        Assert.Equal(new[] { "python3-abi", "awk", "mail-transport-agent" }, provides.Select(p => p.Name));
        Assert.Equal("3.13", provides[0].Version!.ToString());
        Assert.Null(provides[1].Version);
    }

    [Theory]
    [InlineData("a (>= 1)")]
    [InlineData("a | b")]
    public void ParseProvides_RefusesWhatPolicyForbids(string provides)
    {
        Assert.Throws<FormatException>(() => Relation.ParseProvides(provides));
    }

    [Theory]
    [InlineData("a (>= 1")]
    [InlineData("a (~> 1)")]
    [InlineData("a (>= )")]
    [InlineData("(>= 1)")]
    [InlineData("a [amd64 !i386]")]
    [InlineData("a:")]
    [InlineData("a junk")]
    public void Parse_RefusesMalformedRelations(string text)
    {
        Assert.Throws<FormatException>(() => Relation.ParseField(text));
    }
}
