/* A QEMU TCG plugin that counts the Hexagon packets the DSP program executes, per function of the
 * program and HVX apart from scalar, into a counter table the host maps (mh_packets.h).
 *   qemu-hexagon -plugin file=libmh_packets.so,fd=N,elf=PROGRAM PROGRAM
 * fd: an open, writable file of MH_PKT_BYTES the plugin maps shared (the host reads it between
 * messages); elf: the program, whose FUNC symbols name the buckets. QEMU translates one Hexagon
 * packet per plugin instruction; each translation block adds its packets to its function's bucket
 * when it runs (inline adds, no callback). */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mh_packets.h"

/* The few declarations of QEMU's plugin API (include/qemu/qemu-plugin.h, API version 1, QEMU 7.2)
 * this plugin uses: Debian ships the loader, not the header. */
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t {
  const char *target_name;
  struct {
    int min, cur;
  } version;
  _Bool system_emulation;
  union {
    struct {
      int smp_vcpus, max_vcpus;
    } system;
  };
} qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static mh_pkt_table *table;

/* The bucket of the function holding addr (functions are sorted by address), or the last one. */
static uint32_t bucket_of(uint64_t addr) {
  uint32_t lo = 0, hi = table->n_funcs;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (addr < table->funcs[mid].lo) hi = mid;
    else if (addr >= table->funcs[mid].hi) lo = mid + 1;
    else return mid;
  }
  return table->n_funcs; /* "(other)" */
}

/* A packet is HVX when one of its words is an HVX instruction. */
static int packet_is_hvx(const uint8_t *p, size_t n) {
  for (size_t i = 0; i + 4 <= n; i += 4) {
    uint32_t w;
    memcpy(&w, p + i, 4);
    if (mh_pkt_word_is_hvx(w)) return 1;
  }
  return 0;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  uint64_t hvx = 0;
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    hvx += (uint64_t)packet_is_hvx(qemu_plugin_insn_data(insn), qemu_plugin_insn_size(insn));
  }
  mh_pkt_func *f = &table->funcs[bucket_of(qemu_plugin_tb_vaddr(tb))];
  qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &f->packets, n);
  if (hvx) qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &f->hvx_packets, hvx);
}

static int by_address(const void *a, const void *b) {
  const mh_pkt_func *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Reads the FUNC symbols (with a size) of a 32-bit ELF into the table; 0 on success. */
static int read_functions(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  Elf32_Ehdr eh;
  int ok = fread(&eh, sizeof eh, 1, f) == 1 && !memcmp(eh.e_ident, ELFMAG, SELFMAG) && eh.e_ident[EI_CLASS] == ELFCLASS32 &&
           eh.e_shentsize == sizeof(Elf32_Shdr) && eh.e_shnum > 0 && eh.e_shnum < 1024;
  Elf32_Shdr *sh = ok ? calloc(eh.e_shnum, sizeof *sh) : NULL;
  ok = ok && sh && fseek(f, (long)eh.e_shoff, SEEK_SET) == 0 && fread(sh, sizeof *sh, eh.e_shnum, f) == eh.e_shnum;
  uint32_t n = 0;
  for (int s = 0; ok && s < eh.e_shnum; s++) {
    if (sh[s].sh_type != SHT_SYMTAB || sh[s].sh_link >= eh.e_shnum) continue;
    const Elf32_Shdr *strs = &sh[sh[s].sh_link];
    char *names = malloc(strs->sh_size + 1);
    Elf32_Sym *syms = malloc(sh[s].sh_size);
    size_t count = sh[s].sh_size / sizeof(Elf32_Sym);
    if (names && syms && fseek(f, (long)strs->sh_offset, SEEK_SET) == 0 && fread(names, 1, strs->sh_size, f) == strs->sh_size &&
        fseek(f, (long)sh[s].sh_offset, SEEK_SET) == 0 && fread(syms, sizeof *syms, count, f) == count) {
      names[strs->sh_size] = 0;
      for (size_t i = 0; i < count && n < MH_PKT_FUNCS - 1; i++) {
        if (ELF32_ST_TYPE(syms[i].st_info) != STT_FUNC || !syms[i].st_size || syms[i].st_name >= strs->sh_size) continue;
        mh_pkt_func *fn = &table->funcs[n++];
        snprintf(fn->name, sizeof fn->name, "%s", names + syms[i].st_name);
        fn->lo = syms[i].st_value, fn->hi = (uint64_t)syms[i].st_value + syms[i].st_size;
      }
    }
    free(names), free(syms);
  }
  free(sh);
  fclose(f);
  if (!ok) return -1;
  qsort(table->funcs, n, sizeof table->funcs[0], by_address);
  table->n_funcs = n;
  snprintf(table->funcs[n].name, sizeof table->funcs[n].name, "(other)");
  return 0;
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                                               char **argv) {
  int fd = -1;
  const char *elf = NULL;
  for (int i = 0; i < argc; i++) {
    if (!strncmp(argv[i], "fd=", 3)) fd = atoi(argv[i] + 3);
    else if (!strncmp(argv[i], "elf=", 4)) elf = argv[i] + 4;
  }
  if (fd < 0 || !elf || (info && strcmp(info->target_name, "hexagon"))) {
    qemu_plugin_outs("mh_packets: needs fd=N and elf=PATH, on qemu-hexagon\n");
    return -1;
  }
  void *m = mmap(NULL, sizeof(mh_pkt_table), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    qemu_plugin_outs("mh_packets: cannot map the counter table\n");
    return -1;
  }
  table = m;
  close(fd);
  if (read_functions(elf)) {
    qemu_plugin_outs("mh_packets: cannot read the program's symbols\n");
    return -1;
  }
  table->magic = MH_PKT_MAGIC; /* last: the host reads the table once this is set */
  qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
  return 0;
}
