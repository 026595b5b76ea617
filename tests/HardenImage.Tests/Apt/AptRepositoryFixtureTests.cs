using System.Net;
using System.Net.Sockets;
using System.Text;
using HardenImage.Tests.Fixtures;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Apt;

/// <summary>The fixture other stages build on: its .debs are real, its server byte-exact.</summary>
[Trait("Category", "Integration")]
public class AptRepositoryFixtureTests
{
    [Fact]
    public void Publish_BuildsRealDebsWithTheDeclaredControlFieldsAndFiles()
    {
        using var repo = new AptRepositoryFixture().Add(
            new FakePackage("busy", "1:2.0-1").WithSource("busysrc", "2.0-1").WithPreDepends("libc6").WithDepends("base-files")
                .WithProvides("shell").Essential().WithMultiArch("foreign")
                .WithFile("/usr/bin/busy", "#!/bin/sh\n", (UnixFileMode)0b111_101_101).WithSymlink("/bin/sh", "/usr/bin/busy")).Publish();
        var deb = repo.DebPath("busy");
        Assert.EndsWith("pool/main/busy_2.0-1_amd64.deb", deb);
        var info = RequiredService.RunOk("dpkg-deb", ["-f", deb]);
        foreach (var line in new[] { "Package: busy", "Version: 1:2.0-1", "Source: busysrc (2.0-1)", "Pre-Depends: libc6",
                     "Depends: base-files", "Provides: shell", "Essential: yes", "Multi-Arch: foreign" })
            Assert.Contains(line + "\n", info);
        var contents = RequiredService.RunOk("dpkg-deb", ["-c", deb]);
        Assert.Contains("-rwxr-xr-x root/root", contents);
        Assert.Contains("./usr/bin/busy", contents);
        Assert.Contains("./bin/sh -> /usr/bin/busy", contents);
        Assert.Contains("Filename: pool/main/busy_2.0-1_amd64.deb", File.ReadAllText(repo.PackagesPath("amd64", "")));
    }

    [Fact]
    public async Task Server_ServesGetAndHeadByteExact_RefusesTraversal_InjectsFaults()
    {
        using var repo = new AptRepositoryFixture().Add(new FakePackage("a")).Publish();
        using var http = new HttpClient();
        var url = repo.BaseUrl + "/dists/stable/InRelease";
        Assert.Equal(File.ReadAllBytes(repo.InReleasePath), await http.GetByteArrayAsync(url));

        using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, url));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(new FileInfo(repo.InReleasePath).Length, head.Content.Headers.ContentLength);

        // Raw socket: HttpClient would normalise the ../ away before sending it.
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, repo.Server.Port);
            var s = tcp.GetStream();
            await s.WriteAsync(Encoding.ASCII.GetBytes("GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"));
            var answer = await new StreamReader(s).ReadToEndAsync();
            Assert.StartsWith("HTTP/1.1 404", answer);
        }

        repo.Server.SetFault("dists/stable/InRelease", new HttpFault.Status(503));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync(url)).StatusCode);
        repo.Server.SetFault("dists/stable/InRelease", new HttpFault.DropConnection());
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync(url));
        repo.Server.ClearFaults();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(url)).StatusCode);
        Assert.Contains("HEAD /dists/stable/InRelease", repo.Server.Requests);
    }
}
