namespace HardenImage.Common;

/// <summary>
/// A failure the user can act on. The message says what is wrong, where (file, field, source) and what to do.
/// The CLI prints it without a stack trace and exits with <see cref="ExitCode"/>.
/// </summary>
public class HardenException : Exception
{
    public HardenException(string message, int exitCode = 2, Exception? inner = null) : base(message, inner)
    {
        ExitCode = exitCode;
    }

    /// <summary>Process exit code: 1 means "a gate failed" (policy, lock check), 2 means "bad input or environment".</summary>
    public int ExitCode { get; }
}
