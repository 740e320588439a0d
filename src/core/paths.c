/* Data files relative to the installed binary (see paths.h): the prefix is the binary's directory
 * with its install subdirectory (bin or lib) taken off. */
#define _GNU_SOURCE
#include "core/paths.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef MH_INSTALL_BINDIR
#define MH_INSTALL_BINDIR "bin"
#endif
#ifndef MH_INSTALL_LIBDIR
#define MH_INSTALL_LIBDIR "lib"
#endif

/* The install prefix of the binary holding this function, or 0 when it is not in bin/ or lib/. */
static int prefix(char *out, size_t n) {
  Dl_info info;
  if (!dladdr((void *)&prefix, &info) || !info.dli_fname) return 0;
  char path[4352];
  if (strchr(info.dli_fname, '/')) snprintf(path, sizeof path, "%s", info.dli_fname);
  else { /* the executable itself */
    ssize_t k = readlink("/proc/self/exe", path, sizeof path - 1);
    if (k <= 0) return 0;
    path[k] = 0;
  }
  char *slash = strrchr(path, '/');
  if (!slash) return 0;
  *slash = 0; /* its directory */
  const char *dirs[2] = {MH_INSTALL_BINDIR, MH_INSTALL_LIBDIR};
  for (int d = 0; d < 2; d++) {
    size_t len = strlen(path), dl = strlen(dirs[d]);
    if (len > dl && path[len - dl - 1] == '/' && !strcmp(path + len - dl, dirs[d])) {
      snprintf(out, n, "%.*s", (int)(len - dl - 1), path);
      return 1;
    }
  }
  return 0;
}

int mh__data_path(const char *rel, const char *build_path, char *out, size_t n) {
  char pre[4352];
  if (prefix(pre, sizeof pre)) {
    snprintf(out, n, "%s/%s", pre, rel);
    if (access(out, R_OK) == 0) return 1;
  }
  if (build_path && *build_path) {
    snprintf(out, n, "%s", build_path);
    if (access(out, R_OK) == 0) return 1;
  }
  return 0;
}
