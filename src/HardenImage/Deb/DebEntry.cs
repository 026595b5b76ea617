
namespace HardenImage.Deb;

/// <summary>The kinds of data.tar entries a package may ship. Devices and fifos are refused, never represented.</summary>
public enum DebEntryType
{
    File,
    Directory,
    Symlink,
    HardLink,
}

/// <summary>
/// One entry of a package's data.tar, as the reader checked it.
/// </summary>
/// <param name="Path">Normalised relative path: no leading <c>./</c> or <c>/</c>, no trailing <c>/</c>, no <c>.</c>,
/// <c>..</c> or empty segments (e.g. <c>usr/bin/env</c>).</param>
/// <param name="Mode">Permission bits plus setuid/setgid/sticky, as the tar header gives them.</param>
/// <param name="Size">Content length in bytes; 0 for directories, symlinks and hard links.</param>
/// <param name="LinkTarget">Symlink: the target exactly as shipped (may be absolute or contain <c>..</c>; it is
/// data, not a path we write to). Hard link: the normalised path of an earlier regular file of this package.</param>
public sealed record DebEntry(
    string Path,
    DebEntryType Type,
    UnixFileMode Mode,
    int Uid,
    int Gid,
    long Size,
    string? LinkTarget,
    DateTimeOffset ModificationTime)
{
    /// <summary>File content (Stream.Null for other types). Forward-only, valid until the next entry is read.</summary>
    public Stream Content { get; init; } = Stream.Null;

    public bool IsSetuid => (Mode & UnixFileMode.SetUser) != 0;
    public bool IsSetgid => (Mode & UnixFileMode.SetGroup) != 0;

    /// <summary>Permission and special bits as the usual octal number (e.g. 0o4755 = 2541).</summary>
    public int ModeBits => (int)Mode & 0xFFF;
}

/// <summary>One line of a package's md5sums control file.</summary>
/// <param name="Path">The path as listed (relative, without leading slash in packages built by dpkg).</param>
/// <param name="Md5">Lower-case hex MD5 of the file.</param>
public sealed record DebMd5Sum(string Path, string Md5);

/// <summary>
/// What a package's control.tar says: the control paragraph, file checksums, conffiles and maintainer scripts.
/// Small by construction (the reader caps its size), so it is held in memory.
/// </summary>
/// <param name="Fields">The control file (Package, Version, Architecture, Depends, ...).</param>
/// <param name="Md5SumsText">The md5sums file as shipped (for status.d/&lt;pkg&gt;.md5sums), or null when absent.</param>
/// <param name="Conffiles">Absolute paths from the conffiles file (flags such as <c>remove-on-upgrade</c> dropped).</param>
/// <param name="MaintainerScripts">Which of preinst, postinst, prerm, postrm, config, triggers exist, with their
/// text (UTF-8, invalid bytes replaced) for reporting. Keys are those names.</param>
/// <param name="OtherFiles">Names of any other control members (shlibs, symbols, templates, ...).</param>
public sealed record DebControl(
    Deb822Paragraph Fields,
    IReadOnlyList<DebMd5Sum> Md5Sums,
    string? Md5SumsText,
    IReadOnlyList<string> Conffiles,
    IReadOnlyDictionary<string, string> MaintainerScripts,
    IReadOnlyList<string> OtherFiles)
{
    /// <summary>The control member names reported as maintainer scripts.</summary>
    public static IReadOnlyList<string> ScriptNames { get; } = ["preinst", "postinst", "prerm", "postrm", "config", "triggers"];

    public string Package => Fields["Package"]!;
    public string Version => Fields["Version"]!;
    public string? Architecture => Fields["Architecture"];
}
