using System.Net;
using HardenImage.Common;

namespace HardenImage.Registry;

/// <summary>A registry answered with an error; the message names the registry, the operation and what to do.</summary>
public class RegistryException : HardenException
{
    public RegistryException(string message, HttpStatusCode? statusCode = null, string? errorCode = null, Exception? inner = null)
        : base(message, 2, inner)
    {
        StatusCode = statusCode;
        ErrorCode = errorCode;
    }

    /// <summary>For kinds with their own exit code (3: the registry could not be reached).</summary>
    protected RegistryException(string message, int exitCode, Exception? inner) : base(message, exitCode, inner) { }

    public HttpStatusCode? StatusCode { get; }

    /// <summary>The distribution error code (BLOB_UNKNOWN, DIGEST_INVALID, DENIED...) when the body had one.</summary>
    public string? ErrorCode { get; }
}

/// <summary>The repository does not exist and the registry will not create it on push (ECR).</summary>
public sealed class RepositoryNotFoundException(string message, Exception? inner = null)
    : RegistryException(message, HttpStatusCode.NotFound, "NAME_UNKNOWN", inner);

/// <summary>Credentials are missing or refused.</summary>
public sealed class RegistryAuthenticationException(string message, HttpStatusCode? status = null)
    : RegistryException(message, status, "UNAUTHORIZED");

/// <summary>The tag already exists and the repository is immutable (ECR ImageTagAlreadyExistsException).</summary>
public sealed class ImmutableTagException(string message)
    : RegistryException(message, HttpStatusCode.BadRequest, "TAG_INVALID");
