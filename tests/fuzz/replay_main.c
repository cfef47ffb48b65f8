/* Runs a fuzz target's LLVMFuzzerTestOneInput on files, without libFuzzer: every file
 * of the directories (and the files) named on the command line, in sorted order. This
 * is how the seed corpora and the inputs of past crashes (tests/fuzz/regressions/) run
 * in every build as ordinary tests; under PTYC_SANITIZE=ON the sanitizers watch them.
 *   replay_<target> DIR_OR_FILE...   exit 0 when every input passed its checks (a
 *                                    failed check aborts, like under libFuzzer) */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the whole file into a new buffer; 0 on success. */
static int read_file(const char *path, uint8_t **data, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return -1;
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n < cap) continue;
    uint8_t *bigger = realloc(buf, cap *= 2);
    if (bigger == NULL) free(buf);
    buf = bigger;
  }
  fclose(f);
  if (buf == NULL) return -1;
  *data = buf;
  *size = n;
  return 0;
}

static int run_one(const char *path) {
  uint8_t *data = NULL;
  size_t size = 0;
  if (read_file(path, &data, &size) != 0) {
    fprintf(stderr, "replay: cannot read %s\n", path);
    return -1;
  }
  LLVMFuzzerTestOneInput(data, size);
  free(data);
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file of `dir`; returns the count, or -1 on an error. */
static int run_directory(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return -1;
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue; /* ".", "..", hidden files such as .gitkeep */
    if (n == cap) {
      char **more = realloc(names, sizeof *names * (cap = cap ? 2 * cap : 64));
      if (more == NULL) break;
      names = more;
    }
    if ((names[n] = strdup(e->d_name)) == NULL) break;
    n++;
  }
  closedir(d);
  if (n > 1) qsort(names, n, sizeof *names, by_name);
  int count = 0, bad = 0;
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
      if (run_one(path) != 0) bad = 1;
      count++;
    }
    free(names[i]);
  }
  free(names);
  return bad ? -1 : count;
}

int main(int argc, char **argv) {
  int total = 0;
  for (int i = 1; i < argc; i++) {
    struct stat sb;
    if (stat(argv[i], &sb) != 0) {
      fprintf(stderr, "replay: no %s\n", argv[i]);
      return 1;
    }
    int count = S_ISDIR(sb.st_mode) ? run_directory(argv[i]) : (run_one(argv[i]) == 0 ? 1 : -1);
    if (count < 0) return 1;
    total += count;
  }
  printf("replayed %d inputs: ok\n", total);
  return 0;
}
