/* Reads "A B" pairs and prints dpkg's own comparison (libdpkg's dpkg_version_compare, the code behind
   dpkg --compare-versions): -1, 0 or 1 per line, E when dpkg refuses a version. Built at test time. */
#include <stdio.h>
#include <string.h>
#include <dpkg/dpkg.h>
#include <dpkg/version.h>
#include <dpkg/dpkg-db.h>
int main(void) {
  char a[512], b[512];
  while (scanf("%511s %511s", a, b) == 2) {
    struct dpkg_version va, vb;
    if (parseversion(&va, a, NULL) || parseversion(&vb, b, NULL)) { puts("E"); continue; }
    int r = dpkg_version_compare(&va, &vb);
    printf("%d\n", r < 0 ? -1 : r > 0 ? 1 : 0);
  }
  return 0;
}
