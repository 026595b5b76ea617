/* A tiny static HTTP server for the smoke tests' "web" image: GET /healthz answers 200, anything else 404.
   Listens on $HOST:$PORT (defaults 0.0.0.0:8080), like the inference server. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
    const char *host = getenv("HOST") ? getenv("HOST") : "0.0.0.0";
    int port = getenv("PORT") ? atoi(getenv("PORT")) : 8080;
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (s < 0 || inet_pton(AF_INET, host, &addr.sin_addr) != 1) { perror("socket"); return 2; }
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s, 16) != 0) { perror("bind"); return 2; }
    fprintf(stderr, "{\"event\":\"listening\",\"host\":\"%s\",\"port\":%d,\"uid\":%u}\n", host, port, (unsigned)getuid());
    for (;;) {
        char req[1024];
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        ssize_t n = read(c, req, sizeof req - 1);
        req[n > 0 ? n : 0] = 0;
        const char *ok = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
        const char *nf = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        const char *r = strncmp(req, "GET /healthz ", 13) == 0 ? ok : nf;
        write(c, r, strlen(r));
        close(c);
    }
}
