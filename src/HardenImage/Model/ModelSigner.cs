using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Signing;

namespace HardenImage.Model;

/// <summary>
/// <c>harden model sign</c>'s work: a simple-signing signature on each pushed model's manifest digest and its ML-BOM
/// as a CycloneDX attestation, with the images' <see cref="ImageSigner"/> (threats S, T, R). The ML-BOM must
/// describe that digest.
/// </summary>
public sealed class ModelSigner(ISigner signer, RegistryClients clients)
{
    /// <summary>artifacts/models.json, or one line saying to push first.</summary>
    public static ModelRecordFile LoadRecord(string artifactsDir)
    {
        var recordPath = ModelRecordFile.PathIn(artifactsDir);
        return ModelRecordFile.Load(recordPath) ?? throw new HardenException($"{recordPath}: missing. Sign what is pushed: run 'harden model push' first.");
    }

    /// <summary>Signs every model in <paramref name="record"/> (or the one named); returns the names and digests signed.</summary>
    public async Task<IReadOnlyList<(string Name, PushedModel Model)>> SignAsync(ModelRecordFile record, string artifactsDir, string? name, bool insecure, CancellationToken ct)
    {
        var target = RegistryTarget.Parse(record.Registry);
        var registry = clients.Create(target, insecure);
        var signed = new List<(string, PushedModel)>();
        foreach (var (modelName, model) in record.Models)
        {
            if (name != null && modelName != name) continue;
            var digest = Digest.Parse(model.Digest);
            var mlbom = ModelMlBom.ReadFor(Path.Combine(artifactsDir, model.MlBom), digest);
            var imageSigner = new ImageSigner(signer, new RegistrySignatureStore(registry, model.Repository));
            var reference = ImageSetSigner.DockerReference(target, model.Repository);
            await imageSigner.SignAsync(reference, digest, null, ct);
            await imageSigner.AttestAsync(reference, digest, PredicateTypes.CycloneDx, mlbom, ct);
            signed.Add((modelName, model));
        }
        if (name != null && signed.Count == 0) throw new HardenException($"--name {name}: no such model in {ModelRecordFile.PathIn(artifactsDir)}");
        return signed;
    }
}
