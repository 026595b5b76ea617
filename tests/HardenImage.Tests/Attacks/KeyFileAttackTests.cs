using HardenImage.Common;
using HardenImage.Deploy;
using HardenImage.Signing;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// Key paths come from the command line and from the repository (cosign.pub is committed; a pull request can
/// replace it by a symlink): /dev/zero or a huge file is one clear line, never a read without end.
/// </summary>
public sealed class KeyFileAttackTests
{
    [Fact]
    public void PublicKeyThatIsDevZero_IsAClearError_NotAnEndlessRead()
    {
        var e = Assert.Throws<HardenException>(() => SigningPublicKey.Load("/dev/zero"));
        Assert.Contains("/dev/zero: the signing public key is larger than", e.Message);
    }

    [Fact]
    public async Task SigningKeyThatIsDevZero_IsAClearError_NotAnEndlessRead()
    {
        var factory = new SignerFactory(new KeyPasswordSource(_ => null, null, false));
        var e = await Assert.ThrowsAsync<HardenException>(() => factory.FromReferenceAsync("/dev/zero"));
        Assert.Contains("/dev/zero: the key file is larger than", e.Message);
        var p = await Assert.ThrowsAsync<HardenException>(() => factory.PublicKeyFromReferenceAsync("/dev/zero"));
        Assert.Contains("/dev/zero: the key file is larger than", p.Message);
    }
}
