using System.Globalization;
using System.Text;

namespace HardenImage.Common;

/// <summary>
/// Text taken from an input we do not trust (a .deb, an index, a registry answer) as it may appear inside a message:
/// control characters, line and paragraph separators and bidirectional overrides escaped (<c>\x0a</c>, <c>\u2028</c>),
/// cut at a length. So an error stays one line and a hostile file cannot write lines of its own into a CI log
/// (threat S/R: a forged "verified" line) or reorder what a terminal shows.
/// </summary>
public static class UntrustedText
{
    public static string Escape(string text, int max = 80)
    {
        var cut = text.Length > max ? text[..max] : text;
        var sb = new StringBuilder(cut.Length + 8);
        foreach (var c in cut)
        {
            if (c < 0x80 ? char.IsControl(c) : char.IsControl(c) || IsInvisibleLayout(c))
                sb.Append(c <= 0xff ? $"\\x{(int)c:x2}" : $"\\u{(int)c:x4}");
            else sb.Append(c);
        }
        if (cut.Length < text.Length) sb.Append('…');
        return sb.ToString();
    }

    // Line/paragraph separators, and the format characters that reorder or hide text (bidi embeddings, overrides,
    // isolates, zero-width marks).
    private static bool IsInvisibleLayout(char c) =>
        CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Format;
}
