using CsCheck;
using HardenImage.Signing;

namespace HardenImage.Tests.Signing;

public class NaclSecretBoxTests
{
    // NaCl / libsodium secretbox test vector #1 (nacl.cr.yp.to secretbox, libsodium test/default/secretbox.c).
    private static readonly byte[] Key = Convert.FromHexString("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389");
    private static readonly byte[] Nonce = Convert.FromHexString("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37");
    private static readonly byte[] Message = Convert.FromHexString(
        "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31"
        + "0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705");
    private static readonly byte[] Boxed = Convert.FromHexString(
        "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c972"
        + "71d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b3"
        + "7973f622a43d14a6599b1f654cb45a74e355a5");

    [Fact]
    public void Seal_MatchesNaclVector() => Assert.Equal(Convert.ToHexString(Boxed), Convert.ToHexString(NaclSecretBox.Seal(Key, Nonce, Message)));

    [Fact]
    public void Open_MatchesNaclVector() => Assert.Equal(Message, NaclSecretBox.Open(Key, Nonce, Boxed));

    [Theory]
    [InlineData(0)]   // tag
    [InlineData(20)]  // ciphertext
    [InlineData(146)] // last byte
    public void Open_RejectsAnyFlippedBit(int index)
    {
        var tampered = Boxed.ToArray();
        tampered[index] ^= 0x01;
        Assert.Null(NaclSecretBox.Open(Key, Nonce, tampered));
    }

    [Fact]
    public void Open_RejectsWrongKey()
    {
        var key = Key.ToArray();
        key[0] ^= 1;
        Assert.Null(NaclSecretBox.Open(key, Nonce, Boxed));
    }

    [Fact]
    public void SealThenOpen_RoundTrips_AndAnyFlipIsRejected_ForRandomInputs()
    {
        Gen.Select(Gen.Byte.Array[32], Gen.Byte.Array[24], Gen.Byte.Array[0, 300], Gen.Int[0, 1000])
            .Sample((key, nonce, message, flip) =>
            {
                var box = NaclSecretBox.Seal(key, nonce, message);
                Assert.Equal(message.Length + NaclSecretBox.TagSize, box.Length);
                Assert.Equal(message, NaclSecretBox.Open(key, nonce, box));
                box[flip % box.Length] ^= 0x80;
                Assert.Null(NaclSecretBox.Open(key, nonce, box));
            }, iter: 200);
    }
}
