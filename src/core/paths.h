/* Where the library's data files are: next to the installed binary that contains this code (a
 * relocated install finds its own), else where the build left them. */
#ifndef MH_CORE_PATHS_H
#define MH_CORE_PATHS_H

#include <stddef.h>

/* `rel` (a path under the install prefix, e.g. "share/mandheling/profiles/sd865.profile") resolved
 * against the prefix of the binary holding the library (the shared library, or the executable it is
 * linked into), if that file exists; else `build_path` (may be NULL or "") if it exists. Writes the
 * path found into out and returns 1, or returns 0 (out: the last candidate tried, for messages). */
int mh__data_path(const char *rel, const char *build_path, char *out, size_t n);

#endif
