using HardenImage.Cli.Commands;
using HardenImage.Signing;
using HardenImage.Common;

namespace HardenImage.Tests.Cli;

/// <summary>
/// CI exports a missing secret as "": HARDEN_SIGNING_KEY="" used to name a key file called "" (sign then failed on
/// a key "" instead of using the default key). An empty or blank setting is unset.
/// </summary>
public sealed class EmptyEnvironmentSettingTests
{
    private const string DevelopmentKey = "artifacts/keys/cosign.key";

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void EmptySigningKeyVariable_IsUnset_TheDefaultKeyIsUsed(string empty)
    {
        Assert.Equal(DevelopmentKey, SigningKeys.ResolveReference(null, n => n == "HARDEN_SIGNING_KEY" ? empty : null, DevelopmentKey));
        Assert.Equal(DevelopmentKey, SigningKeys.ResolveReference(empty, _ => null, DevelopmentKey));
        Assert.Null(EnvironmentSetting.Get("HARDEN_SIGNING_KEY", _ => empty));
    }

    [Fact]
    public void SetSigningKey_StillWins_AndTheOptionWinsOverIt()
    {
        Assert.Equal("awskms:///alias/k", SigningKeys.ResolveReference(null, n => n == "HARDEN_SIGNING_KEY" ? "awskms:///alias/k" : null, DevelopmentKey));
        Assert.Equal("my.key", SigningKeys.ResolveReference("my.key", _ => "awskms:///alias/k", DevelopmentKey));
    }
}
