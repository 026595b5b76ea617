// Pipeline options: a command-line argument wins over cake.config's [HardenImage] section, which wins over
// the built-in default (a laptop with no cloud: Debian archive, OCI layout registry, development key).
public static class Options
{
    public static string Target { get; set; } = "Default";
    public static string Configuration { get; set; } = "Release";
    public static string Registry { get; set; } = "oci:artifacts/registry";
    public static string Key { get; set; } = "artifacts/keys/cosign.key";
    public static string Images { get; set; } = "";
    public static string Artifacts { get; set; } = "artifacts";
    public static string TestFilter { get; set; } = "";
    /// <summary>Where the cluster pulls from when images were pushed to the local OCI layout registry.</summary>
    public static string DeployRegistry { get; set; } = "registry.example.com/hardened";
    /// <summary>Lock: "" checks (offline, fails when stale), "true" re-resolves changed images, "update" everything.</summary>
    public static string Relock { get; set; } = "";
    /// <summary>Extra harden flags for push/sign/verify, e.g. "--insecure" for a plain-HTTP lab registry (loopback needs none).</summary>
    public static bool Insecure { get; set; }
}

string Setting(string name, string fallback)
{
    var fromArgs = Argument<string>(name, null);
    if (!string.IsNullOrEmpty(fromArgs)) return fromArgs;
    var fromConfig = Context.Configuration.GetValue("HardenImage_" + name);
    return string.IsNullOrEmpty(fromConfig) ? fallback : fromConfig;
}

Options.Target = Argument("target", "Default");
Options.Configuration = Setting("configuration", Options.Configuration);
Options.Registry = Setting("registry", Options.Registry);
Options.Key = Setting("key", Options.Key);
Options.Images = Setting("image", Options.Images);
Options.Artifacts = Setting("artifacts", Options.Artifacts);
Options.TestFilter = Setting("test-filter", Options.TestFilter);
Options.DeployRegistry = Setting("deploy-registry", Options.DeployRegistry);
Options.Relock = Setting("relock", Options.Relock).ToLowerInvariant();
Options.Insecure = Setting("insecure", "false").ToLowerInvariant() == "true";
if (Options.Relock is not ("" or "true" or "update"))
    throw new Exception($"--relock={Options.Relock}: expected true (re-resolve changed images) or update (re-resolve everything)");
