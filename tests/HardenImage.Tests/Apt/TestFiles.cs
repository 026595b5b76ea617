namespace HardenImage.Tests.Apt;

/// <summary>Paths of committed Apt test data and a settable clock.</summary>
internal static class TestFiles
{
    public static string Path(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "TestData", "Apt", name);
}

/// <summary>A clock frozen at one instant, so tests with real (dated) archive files stay valid for ever.</summary>
internal sealed class FixedClock(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}
