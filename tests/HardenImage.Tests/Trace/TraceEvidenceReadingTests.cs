using HardenImage.Tests.Infrastructure;
using HardenImage.Trace;

namespace HardenImage.Tests.Trace;

/// <summary>How `harden trace` reads an image's records and a Python log (the parts that need no engine).</summary>
public class TraceEvidenceReadingTests
{
    [Fact]
    public void ReadPackages_KeepsDottedPackageNames_ParsesDepends_AndCountsOnlyFilesStillPresent()
    {
        using var dir = new TempDir("hi-trace");
        var root = dir.Path;
        var statusD = Path.Combine(root, "var/lib/dpkg/status.d");
        Directory.CreateDirectory(statusD);
        Directory.CreateDirectory(Path.Combine(root, "usr/lib/x86_64-linux-gnu"));
        // A dot in the name: the first version of the reader took libcpp-httplib0.18 for a non-control file.
        File.WriteAllText(Path.Combine(statusD, "libcpp-httplib0.18"),
            "Package: libcpp-httplib0.18\nVersion: 0.18.7-1\nArchitecture: amd64\nPre-Depends: libc6 (>= 2.38)\nDepends: libbrotli1 (>= 0.6.0) | libzstd1 [arm64], libssl3t64\n");
        File.WriteAllText(Path.Combine(statusD, "libcpp-httplib0.18.md5sums"),
            "0123456789abcdef0123456789abcdef  lib/x86_64-linux-gnu/libcpp-httplib.so.0.18.7\n" +
            "0123456789abcdef0123456789abcdef  usr/share/doc/libcpp-httplib0.18/copyright\n" +   // removed by hardening
            "0123456789abcdef0123456789abcdef  usr/lib/x86_64-linux-gnu/libcpp-httplib.so.0.18\n"); // now a symlink
        File.WriteAllBytes(Path.Combine(root, "usr/lib/x86_64-linux-gnu/libcpp-httplib.so.0.18.7"), new byte[1234]);
        File.CreateSymbolicLink(Path.Combine(root, "usr/lib/x86_64-linux-gnu/libcpp-httplib.so.0.18"), "libcpp-httplib.so.0.18.7");

        var packages = TraceRunner.ReadPackages(root, ["libcpp-httplib0.18"], "amd64");

        var p = Assert.Single(packages);
        Assert.Equal("libcpp-httplib0.18", p.Name);
        Assert.True(p.Own);
        Assert.Equal(["usr/lib/x86_64-linux-gnu/libcpp-httplib.so.0.18.7"], p.Files); // /usr-merged, regular, present
        Assert.Equal(1234, p.Bytes);
        Assert.Equal([["libc6"], ["libbrotli1"], ["libssl3t64"]], p.Depends.Select(g => g.ToArray()).ToArray());
    }

    [Fact]
    public void ImportedPaths_ReadsEveryPythonVerboseSpelling()
    {
        const string log = """
            # code object from /usr/lib/python3.13/json/__init__.py
            # code object from '/usr/lib/python3/dist-packages/fastapi/__init__.py'
            # extension module 'torch._C' loaded from '/usr/lib/python3/dist-packages/torch/_C.cpython-313-x86_64-linux-gnu.so'
            # /usr/lib/python3/dist-packages/numpy/__pycache__/version.cpython-313.pyc matches /usr/lib/python3/dist-packages/numpy/version.py
            import 'json.scanner' # <_frozen_importlib_external.SourceFileLoader object at 0x7fcd1a7c4ff0>
            {"event":"request","path":"/v1/generate"}
            """;
        Assert.Equal(
        [
            "/usr/lib/python3.13/json/__init__.py",
            "/usr/lib/python3/dist-packages/fastapi/__init__.py",
            "/usr/lib/python3/dist-packages/torch/_C.cpython-313-x86_64-linux-gnu.so",
            "/usr/lib/python3/dist-packages/numpy/version.py",
        ], TraceRunner.ImportedPaths(log));
    }

    [Theory]
    [InlineData("/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libc.so.6")]
    [InlineData("/usr/lib/x86_64-linux-gnu/../libgloo.so.0", "usr/lib/libgloo.so.0")]
    [InlineData("/bin/python3", "usr/bin/python3")]
    [InlineData("/../../etc/passwd", "etc/passwd")]
    public void Normalize_FoldsDotDotAndMergesUsr_NeverLeavesTheRoot(string path, string expected) =>
        Assert.Equal(expected, TraceRunner.Normalize(path));
}
