using System.Text;

namespace HardenImage.Tests.Fuzz;

/// <summary>
/// Byte-level mutations of a valid seed, deterministic per (seed input, random seed) so a failure CsCheck reports
/// can be replayed: bit flips, "interesting" bytes and tokens (nesting, aliases, nulls, huge numbers, control
/// bytes), deleted, duplicated and truncated ranges.
/// </summary>
public static class Mutator
{
    private static readonly byte[][] Tokens =
    [
        .. new[]
        {
            "null", "[[[[[[[[", "]]]]", "{\"a\":", "&a ", "*a", "? [x]\n: y\n", "99999999999999999999", "-1", "\0", "\u0001", "\u001b[2J",
            ":", "\n", "\n\n", " ", "\"", "'", "Size: 18446744073709551616\n", "Installed-Size: 99999999999\n", "../../", "/",
            "-----BEGIN PGP SIGNATURE-----\n", "\r\n", "\\u0000", "1e999", "true", "{}", "[]",
        }.Select(Encoding.UTF8.GetBytes),
    ];

    public static byte[] Mutate(byte[] seed, ulong randomSeed)
    {
        var random = new Random(unchecked((int)randomSeed ^ (int)(randomSeed >> 32)));
        var data = new List<byte>(seed);
        var count = 1 + random.Next(4);
        for (var i = 0; i < count; i++)
        {
            var at = data.Count == 0 ? 0 : random.Next(data.Count);
            switch (random.Next(7))
            {
                case 0 when data.Count > 0:
                    data[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when data.Count > 0:
                    data[at] = (byte)"\0\n:[{\"&*0 \xff"[random.Next(11)];
                    break;
                case 2:
                    data.InsertRange(at, Tokens[random.Next(Tokens.Length)]);
                    break;
                case 3 when data.Count > 0:
                    data.RemoveRange(at, Math.Min(data.Count - at, 1 + random.Next(64)));
                    break;
                case 4 when data.Count > 0:
                    var len = Math.Min(data.Count - at, 1 + random.Next(256));
                    data.InsertRange(at, data.GetRange(at, len));
                    break;
                case 5 when data.Count > 0:
                    data.RemoveRange(at, data.Count - at);
                    break;
                default:
                    var noise = new byte[1 + random.Next(16)];
                    random.NextBytes(noise);
                    data.InsertRange(at, noise);
                    break;
            }
        }
        return data.ToArray();
    }
}
