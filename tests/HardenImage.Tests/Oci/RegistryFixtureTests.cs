using System.Net;
using System.Net.Http.Headers;
using System.Text;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Oci;

[Trait("Category", "Integration")]
public class RegistryFixtureTests
{
    [Fact]
    public async Task BasicAuthRegistry_RefusesAnonymous_AndAcceptsTheUser()
    {
        using var registry = RegistryFixture.StartWithBasicAuth("ci", "s3cret-pass");
        using var http = new HttpClient { BaseAddress = registry.BaseUri };
        using (var anonymous = await http.GetAsync("v2/"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.StartsWith("Basic", anonymous.Headers.WwwAuthenticate.ToString());
        }
        using var request = new HttpRequestMessage(HttpMethod.Get, "v2/");
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.ASCII.GetBytes("ci:s3cret-pass")));
        using var authed = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, authed.StatusCode);
    }
}
