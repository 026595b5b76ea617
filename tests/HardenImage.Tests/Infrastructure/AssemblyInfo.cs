// The integration tests drive Linux tools (dpkg, skopeo, umoci, dockerd) and read Unix file modes.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
