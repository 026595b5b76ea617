using HardenImage.Aws;

namespace HardenImage.Tests.Infrastructure;

/// <summary>
/// The opt-in gates of tests that need the outside world. Without the variable set the test FAILS with the
/// instruction (no silent pass), so default and CI runs exclude the category explicitly (build/stages.cake).
/// </summary>
public static class LiveGates
{
    /// <summary>Real AWS (category AwsLive): HARDEN_AWS_LIVE=1, AWS_REGION and credentials from the default chain.</summary>
    public static AwsContext Aws()
    {
        if (Environment.GetEnvironmentVariable("HARDEN_AWS_LIVE") != "1")
            Assert.Fail("Real-AWS test: set HARDEN_AWS_LIVE=1 plus AWS_REGION and AWS credentials to run it; " +
                        "otherwise exclude it with --filter \"Category!=AwsLive\" (CI does).");
        return AwsContext.Resolve(new AwsClientOptions());
    }

    /// <summary>The real Debian archive (category ArchiveLive): HARDEN_ARCHIVE_LIVE=1 and deb.debian.org reachable.</summary>
    public static void DebianArchive()
    {
        if (Environment.GetEnvironmentVariable("HARDEN_ARCHIVE_LIVE") != "1")
            Assert.Fail("Real-archive test: set HARDEN_ARCHIVE_LIVE=1 (needs deb.debian.org) to run it; otherwise exclude it with --filter \"Category!=ArchiveLive\" (the default run does).");
    }
}
