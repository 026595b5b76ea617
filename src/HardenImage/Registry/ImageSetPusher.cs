using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Contracts;

namespace HardenImage.Registry;

/// <summary>What <c>harden push</c> pushes, and how.</summary>
public sealed record ImageSetPushRequest
{
    /// <summary>The OCI layout holding the built images.</summary>
    public required string Layout { get; init; }

    /// <summary>Where build.json is read and pushed.json written.</summary>
    public required string ArtifactsDir { get; init; }

    /// <summary>Only this image; null = every image in the layout.</summary>
    public string? Image { get; init; }

    /// <summary>Architectures the pushed indexes must hold (--platform); null = no check.</summary>
    public IReadOnlyCollection<string>? Architectures { get; init; }

    public int Parallel { get; init; } = 4;

    public bool Insecure { get; init; }

    /// <summary>Create missing repositories first (ECR does not create them on push).</summary>
    public bool CreateRepositories { get; init; }

    /// <summary>Credentials given for this run (--username); asked before ECR and the docker config.</summary>
    public IRegistryCredentialProvider? Credentials { get; init; }
}

/// <summary>What a push did: the results per image and the pushed.json written from them.</summary>
public sealed record ImageSetPushOutcome(string PushedPath, PushedFile Pushed, IReadOnlyList<ImagePushResult> Results);

/// <summary>
/// <c>harden push</c>'s work: the built images of a layout (as build.json names them) to a registry target with the
/// run's one credential chain (<see cref="RegistryClients"/>), then artifacts/pushed.json. Opened first, so a bad
/// layout, build.json or --platform fails before any AWS or registry client is made.
/// </summary>
public sealed class ImageSetPusher
{
    private readonly ImageSetPushRequest _request;
    private readonly OciLayout _layout;
    private readonly IReadOnlyList<ImageToPush> _images;
    private (RegistryTarget Target, ImagePusher Pusher)? _connection;

    private ImageSetPusher(ImageSetPushRequest request, OciLayout layout, IReadOnlyList<ImageToPush> images)
    {
        _request = request;
        _layout = layout;
        _images = images;
    }

    /// <summary>Reads the layout and build.json and checks --platform: nothing is sent anywhere yet.</summary>
    public static ImageSetPusher Open(ImageSetPushRequest request)
    {
        var layout = OciLayout.Open(request.Layout);
        var buildFile = ArtifactPaths.BuildRecord(request.ArtifactsDir);
        var build = File.Exists(buildFile) ? BuildManifest.Load(buildFile) : null;
        var images = ImagePusher.ImagesInLayout(layout, build, request.Image);
        // An index is pushed as built (its digest is what was signed off): --platform checks that what is pushed
        // holds the platforms asked for; build with --platform to make narrower indexes.
        if (request.Architectures is { } wanted && build != null)
            foreach (var image in build.Images.Where(b => images.Any(i => i.Name == b.Name)))
                foreach (var arch in wanted.Where(a => image.Architectures.All(x => x.Architecture != a)))
                    throw new HardenException($"{buildFile}: image '{image.Name}' has no {PlatformName.ForArchitecture(arch)} (it has {string.Join(", ", image.Architectures.Select(x => PlatformName.ForArchitecture(x.Architecture)))}); run 'harden build --platform {PlatformName.ForArchitecture(arch)}' first");
        return new ImageSetPusher(request, layout, images);
    }

    /// <summary>The registry client (and, with CreateRepositories, the repository creator) for <paramref name="target"/>.</summary>
    public ImageSetPusher Connect(RegistryTarget target, RegistryClients clients)
    {
        var creator = _request.CreateRepositories ? clients.RepositoryCreatorFor(target) : null;
        var registry = clients.Create(target, _request.Insecure, _request.Credentials);
        _connection = (target, new ImagePusher(_layout, registry, target.Namespace, _request.Parallel, creator));
        return this;
    }

    /// <summary>Pushes, then writes pushed.json from what the registry answered.</summary>
    public async Task<ImageSetPushOutcome> PushAsync(IProgress<BlobProgress>? progress, CancellationToken ct)
    {
        var (target, pusher) = _connection ?? throw new InvalidOperationException("Connect before PushAsync.");
        var results = await pusher.PushAsync(_images, progress, ct).ConfigureAwait(false);
        var pushedPath = ArtifactPaths.PushRecord(_request.ArtifactsDir);
        return new ImageSetPushOutcome(pushedPath, PushedFile.Save(pushedPath, target.ToString(), results), results);
    }
}
