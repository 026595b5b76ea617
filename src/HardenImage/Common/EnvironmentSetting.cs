namespace HardenImage.Common;

/// <summary>
/// Reads a setting from the environment the way a user means it: a variable set to the empty string (or white
/// space) is unset. CI systems export unset secrets as "" (GitHub Actions' <c>${{ secrets.MISSING }}</c>); taken
/// literally, HARDEN_SIGNING_KEY="" named a key file called "" instead of falling back to the default key.
/// </summary>
public static class EnvironmentSetting
{
    /// <summary>The variable's value, or null when it is unset, empty or white space.</summary>
    public static string? Get(string name, Func<string, string?>? environment = null) =>
        (environment ?? Environment.GetEnvironmentVariable)(name) is { } value && !string.IsNullOrWhiteSpace(value) ? value : null;

    /// <summary>An option's value, or null when it was not given or given empty (<c>--key ""</c>).</summary>
    public static string? Given(string? option) => string.IsNullOrWhiteSpace(option) ? null : option;
}
