/* Checkpoints, the part without HDF5: which job and which dataset a checkpoint belongs
 * to, and the check that refuses to resume another job's checkpoint. Reading and
 * writing the file is src/data/checkpoint_h5.c. */
#include "ptyc/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_try.h"

ptyc_status ptyc_checkpoint_job_text(const ptyc_options *opts, char **text) {
  ptyc_options job = *opts, defaults;
  ptyc_options_default(&defaults);
  /* How far, where and how fast to run, and where to write: a resume may change these.
   * The dataset is compared by its hash, so moving the file is no change either; the
   * other data keys (how the file is read) stay in. */
  job.reconstructor.iterations = defaults.reconstructor.iterations;
  job.reconstructor.device = defaults.reconstructor.device;
  job.reconstructor.threads = defaults.reconstructor.threads;
  job.reconstructor.gpus = defaults.reconstructor.gpus;
  job.reconstructor.memory_fraction = defaults.reconstructor.memory_fraction;
  job.output = defaults.output;
  memcpy(job.data.path, defaults.data.path, sizeof job.data.path);
  return ptyc_options_to_text(&job, text);
}

/* ---- dataset hash ---------------------------------------------------------------------- */

/* Four independent lanes of the xxHash64 round, so the loop runs at memory speed. */
typedef struct hasher {
  uint64_t lane[4];
  unsigned char tail[32]; /* bytes not yet forming a whole 32-byte block */
  size_t n_tail;
  uint64_t total;
} hasher;

#define HASH_P1 0x9E3779B185EBCA87ull
#define HASH_P2 0xC2B2AE3D27D4EB4Full

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t round64(uint64_t acc, uint64_t word) {
  return rotl64(acc + word * HASH_P2, 31) * HASH_P1;
}

static void hash_block(hasher *h, const unsigned char *p) {
  for (int l = 0; l < 4; l++) {
    uint64_t word;
    memcpy(&word, p + 8 * l, 8);
    h->lane[l] = round64(h->lane[l], word);
  }
}

static void hash_bytes(hasher *h, const void *data, size_t n) {
  const unsigned char *p = data;
  h->total += n;
  while (n > 0 && h->n_tail > 0) { /* complete a pending block first */
    h->tail[h->n_tail++] = *p++;
    n--;
    if (h->n_tail == 32) {
      hash_block(h, h->tail);
      h->n_tail = 0;
    }
  }
  for (; n >= 32; p += 32, n -= 32) hash_block(h, p);
  memcpy(h->tail + h->n_tail, p, n);
  h->n_tail += n;
}

static void hash_int(hasher *h, long long v) { hash_bytes(h, &v, sizeof v); }

static uint64_t hash_final(hasher *h) {
  uint64_t acc = h->total;
  for (int l = 0; l < 4; l++) acc = round64(acc ^ h->lane[l], (uint64_t)l + 1);
  for (size_t i = 0; i < h->n_tail; i++) acc = rotl64(acc ^ (h->tail[i] * HASH_P1), 11) * HASH_P2;
  acc ^= acc >> 33; /* final avalanche (xxHash64's) */
  acc *= HASH_P2;
  acc ^= acc >> 29;
  return acc;
}

uint64_t ptyc_dataset_hash(const ptyc_dataset *ds) {
  hasher h = {.lane = {HASH_P1 + HASH_P2, HASH_P2, 0, (uint64_t)0 - HASH_P1}};
  size_t n = (size_t)ds->n_patterns, mm = (size_t)ds->m * (size_t)ds->m;
  size_t held = (size_t)ptyc_dataset_patterns_held(ds); /* a rank's share: its patterns */
  hash_int(&h, ds->n_patterns);
  hash_int(&h, ds->m);
  hash_bytes(&h, ds->patterns, sizeof(float) * held * mm);
  hash_bytes(&h, ds->positions_px, sizeof(double) * 2 * n);
  hash_int(&h, ds->mask != NULL);
  if (ds->mask) hash_bytes(&h, ds->mask, mm);
  hash_int(&h, ds->probe ? ds->probe_modes : 0);
  if (ds->probe) hash_bytes(&h, ds->probe, sizeof(ptyc_c32) * (size_t)ds->probe_modes * mm);
  double geometry[4] = {ds->wavelength_m, ds->detector_distance_m, ds->detector_pixel_size_m,
                        ds->object_pixel_size_m};
  hash_bytes(&h, geometry, sizeof geometry);
  hash_int(&h, ds->positions_from_metres);
  return hash_final(&h);
}

/* ---- the check -------------------------------------------------------------------------- */

/* Copies the first line of `text` (without its newline) into buf; returns where the
 * next line starts, or NULL when `text` is empty. */
static const char *next_line(const char *text, char *buf, size_t size) {
  if (text == NULL || *text == '\0') return NULL;
  size_t len = strcspn(text, "\n");
  snprintf(buf, size, "%.*s", (int)len, text);
  return text[len] ? text + len + 1 : text + len;
}

/* "group.key = value" from a line "  key = value;" inside the group `group`. */
static void describe_line(const char *group, const char *line, char *out, size_t size) {
  while (*line == ' ') line++;
  size_t len = strlen(line);
  if (len > 0 && line[len - 1] == ';') len--;
  if (group[0])
    snprintf(out, size, "%s.%.*s", group, (int)len, line);
  else
    snprintf(out, size, "%.*s", (int)len, line);
}

/* The first difference between two job texts, described as
 * "lsqml.max_step = 2 there, lsqml.max_step = 1.5 now". */
static void first_difference(const char *then, const char *now, char *out, size_t size) {
  char a[512], b[512], group[64] = "", da[600], db[600];
  for (;;) {
    const char *next_then = next_line(then, a, sizeof a);
    const char *next_now = next_line(now, b, sizeof b);
    if (!next_then && !next_now) {
      snprintf(out, size, "the jobs differ");
      return;
    }
    if (!next_then) a[0] = '\0';
    if (!next_now) b[0] = '\0';
    if (strcmp(a, b) != 0) {
      describe_line(group, a, da, sizeof da);
      describe_line(group, b, db, sizeof db);
      snprintf(out, size, "%s there, %s now", da[0] ? da : "(nothing)",
               db[0] ? db : "(nothing)");
      return;
    }
    /* "name = {" opens a group; "};" closes it */
    size_t glen = strcspn(a, " =");
    if (strstr(a, "= {") && glen < sizeof group)
      snprintf(group, sizeof group, "%.*s", (int)glen, a);
    else if (strcmp(a, "};") == 0)
      group[0] = '\0';
    then = next_then;
    now = next_now;
  }
}

ptyc_status ptyc_checkpoint_check(const char *path, const ptyc_recon *recon,
                                  const ptyc_checkpoint_info *info, const char *engine,
                                  const char *job_text, uint64_t dataset_hash) {
  const char *advice = "resume with the job that wrote it, or run without --resume to "
                       "start afresh";
  if (strcmp(recon->engine, engine) != 0)
    return ptyc_fail(PTYC_E_CONFIG, "%s was written by engine \"%s\", this job uses \"%s\": %s",
                     path, recon->engine, engine, advice);
  if (info->job == NULL || strcmp(info->job, job_text) != 0) {
    char diff[1400];
    first_difference(info->job ? info->job : "", job_text, diff, sizeof diff);
    return ptyc_fail(PTYC_E_CONFIG, "%s was written by a different job (%s): %s", path, diff,
                     advice);
  }
  if (info->dataset_hash != dataset_hash)
    return ptyc_fail(PTYC_E_CONFIG, "%s was written for a different dataset (its patterns, "
                                    "positions, mask, probe or geometry differ from data.path's): %s",
                     path, advice);
  return PTYC_OK;
}
