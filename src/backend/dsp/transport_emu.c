/* The emulator transport: the DSP program runs under qemu-hexagon as a child process. The shared
 * region is a memfd both map (the child sees it as fd 3); two pipes are the doorbell (the child's
 * stdin carries requests, its stdout replies). Every wait has a timeout, and a child that dies is
 * noticed (EOF on the reply pipe) and reported, never waited on forever. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend/dsp/session.h"
#include "core/paths.h"
#include "core/status.h"

#ifndef MH_DSP_PROGRAM_PATH
#define MH_DSP_PROGRAM_PATH ""
#endif

static int executable(const char *p) { return p && *p && access(p, X_OK) == 0; }

/* The first executable `name` on PATH, or name itself when it has a slash. */
static int find_in_path(const char *name, char *out, size_t n) {
  if (strchr(name, '/')) {
    snprintf(out, n, "%s", name);
    return executable(out);
  }
  const char *path = getenv("PATH");
  if (!path) path = "/usr/bin:/bin";
  while (*path) {
    const char *e = strchr(path, ':');
    size_t len = e ? (size_t)(e - path) : strlen(path);
    snprintf(out, n, "%.*s/%s", (int)len, path, name);
    if (executable(out)) return 1;
    path += len + (e ? 1 : 0);
  }
  return 0;
}

int mh_dsp_locate(char *program, size_t np, char *emulator, size_t ne, char *why, size_t nw) {
  const char *prog = getenv("MH_DSP_ELF"), *emu = getenv("MH_QEMU_HEXAGON");
  if (prog && *prog) snprintf(program, np, "%s", prog);
  else if (!mh__data_path("lib/mandheling/mandheling_dsp.elf", MH_DSP_PROGRAM_PATH, program, np)) /* an install's own, */
    snprintf(program, np, "%s", MH_DSP_PROGRAM_PATH);                                             /* else the build's */
  if (!*program) {
    snprintf(why, nw, "this build has no DSP program (clang/lld without the hexagon target)");
    return 0;
  }
  if (access(program, R_OK) != 0) {
    snprintf(why, nw, "DSP program %s not found", program);
    return 0;
  }
  if (!find_in_path(emu && *emu ? emu : "qemu-hexagon", emulator, ne)) {
    snprintf(why, nw, "qemu-hexagon not found (Debian package qemu-user; or set MH_QEMU_HEXAGON)");
    return 0;
  }
  snprintf(why, nw, "Hexagon v66 HVX program %s under %s (emulated: results exact, timing not)", program, emulator);
  return 1;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void emu_stop(mh_dsp *d) {
  close_fd(&d->req_fd); /* EOF on its stdin: the program exits by itself */
  close_fd(&d->rep_fd);
  if (d->pid > 0) {
    int status;
    for (int i = 0; i < 100 && waitpid(d->pid, &status, WNOHANG) == 0; i++) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
      if (i == 50) kill(d->pid, SIGKILL);
    }
    if (waitpid(d->pid, &status, WNOHANG) == 0) {
      kill(d->pid, SIGKILL);
      waitpid(d->pid, &status, 0);
    }
  }
  d->pid = 0;
  if (d->region) munmap(d->region, d->region_bytes);
  d->region = NULL;
  close_fd(&d->memfd);
  d->alive = 0;
}

static int emu_start(mh_dsp *d) {
  char why[600];
  if (!mh_dsp_locate(d->program, sizeof d->program, d->emulator, sizeof d->emulator, why, sizeof why))
    return mh__error(MH_ERR_UNSUPPORTED, "no DSP: %s", why);
  int req[2] = {-1, -1}, rep[2] = {-1, -1};
  d->memfd = MH_MEMFD("mandheling-dsp");
  if (d->memfd < 0 || ftruncate(d->memfd, (off_t)d->region_bytes) != 0)
    return mh__error(MH_ERR_IO, "DSP: cannot create a %zu-byte shared region: %s", d->region_bytes, strerror(errno));
  d->region = mmap(NULL, d->region_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, d->memfd, 0);
  if (d->region == MAP_FAILED) {
    d->region = NULL;
    return mh__error(MH_ERR_IO, "DSP: cannot map the shared region: %s", strerror(errno));
  }
  mh_wire_header *h = (mh_wire_header *)d->region;
  memset(h, 0, sizeof *h);
  h->magic = MH_WIRE_MAGIC, h->version = MH_WIRE_VERSION, h->region_bytes = (uint32_t)d->region_bytes;
  if (pipe2(req, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0) {
    close_fd(&req[0]), close_fd(&req[1]), close_fd(&rep[0]), close_fd(&rep[1]);
    return mh__error(MH_ERR_IO, "DSP: pipe: %s", strerror(errno));
  }
  char plugin_arg[1200];
  snprintf(plugin_arg, sizeof plugin_arg, "file=%s,fd=4,elf=%s", d->plugin, d->program);
  pid_t pid = fork();
  if (pid < 0) {
    close_fd(&req[0]), close_fd(&req[1]), close_fd(&rep[0]), close_fd(&rep[1]);
    return mh__error(MH_ERR_IO, "DSP: fork: %s", strerror(errno));
  }
  if (pid == 0) { /* child: stdin = requests, stdout = replies, fd 3 = region, fd 4 = packet counters */
    int counting = d->pkt != NULL; /* a counter table was made for the plugin */
    int pkt = counting ? fcntl(d->pkt_fd, F_DUPFD, 10) : -1; /* out of the way of fds 0-4 */
    if (dup2(req[0], 0) < 0 || dup2(rep[1], 1) < 0) _exit(126);
    if (d->memfd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(d->memfd, 3) < 0) _exit(126); /* dup2 clears CLOEXEC */
    if (counting && (pkt < 0 || dup2(pkt, 4) < 0)) _exit(126);
    char *argv[] = {d->emulator, "-plugin", plugin_arg, d->program, NULL};
    char *plain[] = {d->emulator, d->program, NULL};
    execv(d->emulator, counting ? argv : plain);
    _exit(127);
  }
  close_fd(&req[0]), close_fd(&rep[1]);
  d->req_fd = req[1], d->rep_fd = rep[0], d->pid = pid, d->alive = 1;
  return MH_OK;
}

/* Writes to a pipe whose reader may be gone without raising SIGPIPE in the process. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t n) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  ssize_t r = write(fd, buf, n);
  if (r < 0 && errno == EPIPE) {
    struct timespec zero = {0, 0};
    sigtimedwait(&block, NULL, &zero); /* consume the pending SIGPIPE */
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return r;
}

static int died(mh_dsp *d, const char *what) {
  int status = 0;
  char how[64] = "is gone";
  if (d->pid > 0 && waitpid(d->pid, &status, WNOHANG) == d->pid) {
    if (WIFEXITED(status)) snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(status));
    d->pid = 0;
  }
  d->alive = 0;
  return mh__error(MH_ERR_BACKEND, "DSP process (%s) %s %s", d->emulator, how, what);
}

static int emu_post(mh_dsp *d, uint32_t seq) {
  if (write_nosigpipe(d->req_fd, &seq, sizeof seq) != (ssize_t)sizeof seq) return died(d, "before a request");
  return MH_OK;
}

static int emu_wait(mh_dsp *d, uint32_t seq, int timeout_ms) {
  struct pollfd p = {d->rep_fd, POLLIN, 0};
  for (;;) {
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      if (d->pid > 0) kill(d->pid, SIGKILL);
      d->alive = 0;
      return mh__error(MH_ERR_BACKEND, "DSP did not answer message %u within %d ms; the DSP process was stopped", seq,
                       timeout_ms);
    }
    break;
  }
  uint32_t back = 0;
  ssize_t r;
  do r = read(d->rep_fd, &back, sizeof back);
  while (r < 0 && errno == EINTR);
  if (r != (ssize_t)sizeof back) return died(d, "while handling a request");
  if (back != seq) {
    d->alive = 0;
    return mh__error(MH_ERR_BACKEND, "DSP answered message %u with sequence %u", seq, back);
  }
  return MH_OK;
}

const mh_dsp_transport mh_dsp_transport_emu = {"qemu-hexagon", emu_start, emu_post, emu_wait, emu_stop};
