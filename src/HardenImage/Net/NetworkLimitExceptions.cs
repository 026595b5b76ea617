using HardenImage.Common;

namespace HardenImage.Net;

/// <summary>A server did not connect, answer or send data within its <see cref="NetworkDeadlines"/>.</summary>
public sealed class NetworkTimeoutException(string message, Exception? inner = null) : HardenException(message, 2, inner);

/// <summary>A response body grew beyond what that kind of answer may hold (an endless or hostile body).</summary>
public sealed class ResponseTooLargeException(string message) : HardenException(message, 2);
