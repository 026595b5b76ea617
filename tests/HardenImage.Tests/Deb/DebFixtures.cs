using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Deb;

/// <summary>
/// A package tree with every kind of entry the reader must handle (files, dirs, symlinks, a hard link, a setuid
/// file, a path over 100 characters, a non-ASCII name), built into real .debs with dpkg-deb for each compressor.
/// Built once per test class.
/// </summary>
public sealed class BuiltDebFixture : IDisposable
{
    private readonly TempDir _dir = new("hi-deb");
    private readonly Dictionary<string, string> _debs = new();

    public const string LongDir = "usr/share/hi-fixture/a-directory-name-that-is-quite-long-on-purpose/and-another-nested-directory-level";
    public const string LongPath = LongDir + "/with-a-file-whose-full-path-is-over-one-hundred-characters.txt";
    public const string NonAsciiPath = "usr/share/doc/hi-fixture/naïve-日本語-Ω.txt";

    public BuiltDebFixture()
    {
        RequiredService.Tool("dpkg-deb", "dpkg");
        RequiredService.Tool("tar", "tar");
        Root = _dir.Combine("root");
        var debian = Path.Combine(Root, "DEBIAN");
        Directory.CreateDirectory(debian);

        var fixedTime = new DateTime(2021, 3, 4, 5, 6, 7, DateTimeKind.Utc);
        WriteFile("etc/hi-fixture/hi.conf", "setting = 1\n");
        WriteFile("usr/bin/hi-tool", "#!/bin/sh\necho hi\n", (UnixFileMode)0b111_101_101);
        WriteFile("usr/bin/hi-suid", "pretend binary\n", UnixFileMode.SetUser | (UnixFileMode)0b111_101_101);
        var payload = new byte[300_000];
        new Random(42).NextBytes(payload);
        WriteBytes("usr/lib/hi-fixture/data.bin", payload);
        WriteFile(LongPath, "long path content\n");
        WriteFile(NonAsciiPath, "ünïcödé\n");
        WriteFile("usr/share/doc/hi-fixture/empty", "");
        Directory.CreateDirectory(Path.Combine(Root, "var/lib/hi-fixture/empty-dir"));
        Directory.CreateDirectory(Path.Combine(Root, "var/tmp-sticky"));
        Chmod(Path.Combine(Root, "var/tmp-sticky"), UnixFileMode.StickyBit | (UnixFileMode)0b111_111_111);
        File.CreateSymbolicLink(Path.Combine(Root, "usr/lib/hi-fixture/relative-link"), "data.bin");
        File.CreateSymbolicLink(Path.Combine(Root, "usr/share/hi-fixture/absolute-link"), "/etc/hi-fixture/hi.conf");
        RequiredService.RunOk("ln", [Path.Combine(Root, "usr/lib/hi-fixture/data.bin"), Path.Combine(Root, "usr/lib/hi-fixture/hardlink.bin")]);

        foreach (var p in Directory.EnumerateFileSystemEntries(Root, "*", SearchOption.AllDirectories))
        {
            if (p.StartsWith(debian, StringComparison.Ordinal)) continue;
            if (new FileInfo(p).LinkTarget == null) File.SetLastWriteTimeUtc(p, fixedTime);
        }

        File.WriteAllText(Path.Combine(debian, "control"),
            "Package: hi-fixture\nVersion: 1:2.3-4\nArchitecture: all\nMaintainer: Fixture <fixture@example.invalid>\n" +
            "Depends: libc6 (>= 2.36), base-files\nSection: misc\nPriority: optional\n" +
            "Description: HardenImage test fixture\n A package with every kind of entry.\n .\n Second paragraph.\n");
        File.WriteAllText(Path.Combine(debian, "conffiles"), "/etc/hi-fixture/hi.conf\n");
        WriteScript(Path.Combine(debian, "postinst"), "#!/bin/sh\nset -e\necho configured\n");
        WriteScript(Path.Combine(debian, "prerm"), "#!/bin/sh\nset -e\n");
        var md5 = new StringBuilder();
        foreach (var f in Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            if (f.StartsWith(debian, StringComparison.Ordinal) || new FileInfo(f).LinkTarget != null) continue;
            md5.Append(Convert.ToHexStringLower(MD5.HashData(File.ReadAllBytes(f)))).Append("  ")
               .Append(Path.GetRelativePath(Root, f)).Append('\n');
        }
        Md5SumsText = md5.ToString();
        File.WriteAllText(Path.Combine(debian, "md5sums"), Md5SumsText);
    }

    /// <summary>The package tree (DEBIAN/ plus the files).</summary>
    public string Root { get; }

    public string Md5SumsText { get; }

    /// <summary>The fixture built with <c>dpkg-deb -Z<paramref name="compressor"/></c> (gzip, xz, zstd, none).</summary>
    public string Deb(string compressor)
    {
        lock (_debs)
        {
            if (_debs.TryGetValue(compressor, out var existing)) return existing;
            var output = _dir.Combine($"hi-fixture_{compressor}.deb");
            // SOURCE_DATE_EPOCH above every mtime so dpkg-deb's clamping leaves the fixed times alone.
            RequiredService.RunOk("dpkg-deb", ["--root-owner-group", $"-Z{compressor}", "--build", Root, output],
                env: new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = "1700000000" });
            _debs[compressor] = output;
            return output;
        }
    }

    /// <summary>A fresh path for a test's own files.</summary>
    public string Scratch(string name) => _dir.Combine(Guid.NewGuid().ToString("N") + "-" + name);

    private void WriteFile(string rel, string text, UnixFileMode? mode = null) => WriteBytes(rel, Encoding.UTF8.GetBytes(text), mode);

    private void WriteBytes(string rel, byte[] bytes, UnixFileMode? mode = null)
    {
        var p = Path.Combine(Root, rel);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllBytes(p, bytes);
        Chmod(p, mode ?? (UnixFileMode)0b110_100_100);
    }

    private static void WriteScript(string path, string text)
    {
        File.WriteAllText(path, text);
        Chmod(path, (UnixFileMode)0b111_101_101);
    }

    private static void Chmod(string path, UnixFileMode mode)
    {
        Assert.False(OperatingSystem.IsWindows(), "the .deb fixture needs a Unix file system (modes, symlinks, hard links)");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, mode);
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>Writes .debs by hand (ar + tar), to craft packages that dpkg-deb would never produce.</summary>
public static class CraftedDeb
{
    public const string Control = "Package: evil\nVersion: 6.6.6\nArchitecture: all\nMaintainer: X <x@example.invalid>\nDescription: crafted\n";

    /// <summary>A .deb whose data.tar (uncompressed, GNU format) holds the entries <paramref name="addEntries"/> writes.</summary>
    public static byte[] Build(Action<TarWriter> addEntries, string dataMemberName = "data.tar", string control = Control)
    {
        var data = new MemoryStream();
        using (var tw = new TarWriter(data, TarEntryFormat.Gnu, leaveOpen: true)) addEntries(tw);
        return Ar(("debian-binary", "2.0\n"u8.ToArray()), ("control.tar", ControlTar(control)), (dataMemberName, data.ToArray()));
    }

    public static byte[] ControlTar(string control)
    {
        var ms = new MemoryStream();
        using (var tw = new TarWriter(ms, TarEntryFormat.Gnu, leaveOpen: true))
        {
            tw.WriteEntry(new GnuTarEntry(TarEntryType.Directory, "./"));
            tw.WriteEntry(File("./control", Encoding.UTF8.GetBytes(control)));
        }
        return ms.ToArray();
    }

    /// <summary>An ar archive with GNU-style names ("name/").</summary>
    public static byte[] Ar(params (string Name, byte[] Data)[] members)
    {
        var ms = new MemoryStream();
        ms.Write("!<arch>\n"u8);
        foreach (var (name, data) in members)
        {
            ms.Write(Encoding.ASCII.GetBytes(ArHeader(name, data.Length)));
            ms.Write(data);
            if (data.Length % 2 == 1) ms.WriteByte((byte)'\n');
        }
        return ms.ToArray();
    }

    public static string ArHeader(string name, long size) =>
        $"{name,-16}{0,-12}{0,-6}{0,-6}{"100644",-8}{size,-10}`\n";

    public static GnuTarEntry File(string name, byte[] content, UnixFileMode mode = (UnixFileMode)0b110_100_100) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content), Mode = mode };

    public static GnuTarEntry Dir(string name) =>
        new(TarEntryType.Directory, name) { Mode = (UnixFileMode)0b111_101_101 };

    public static GnuTarEntry Link(TarEntryType type, string name, string target) =>
        new(type, name) { LinkName = target };
}
