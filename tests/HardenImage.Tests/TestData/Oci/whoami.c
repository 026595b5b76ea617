/* A tiny static payload for the docker-archive test: prints the uid it runs as and the first argument. */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    printf("uid=%u gid=%u arg=%s\n", (unsigned)getuid(), (unsigned)getgid(), argc > 1 ? argv[1] : "");
    return 0;
}
