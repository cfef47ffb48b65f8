/* `ptyc simulate [--preset P] [overrides] -o OUT.h5`: writes a simulated dataset with its
 * ground truth (src/simulate.c). argv[0] is "simulate". */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "ptyc/simulate.h"

static void print_usage(FILE *out) {
  fprintf(out,
          "usage: ptyc simulate [--preset small|medium|large] [--size M] [--positions N]\n"
          "                     [--modes K] [--photons P] [--seed S] [--jitter PX] -o OUT.h5\n"
          "\n"
          "Writes a simulated far-field ptychography dataset in the native format, with the\n"
          "true object and probe in /truth: a Siemens star with smooth random amplitude and\n"
          "phase, a defocused-aperture probe with K orthogonal modes, a Fermat-spiral scan\n"
          "(70 %% overlap) with sub-pixel jitter, and Poisson noise. The same options and\n"
          "seed give the same file.\n"
          "\n"
          "  --preset NAME   small  (64x64, 144 positions, 2 modes, 1e6 photons; default)\n"
          "                  medium (256x256, 4096 positions, 4 modes, 1e7 photons)\n"
          "                  large  (512x512, 12000 positions, 3 modes, 1e7 photons)\n"
          "  --size M        pattern size in pixels (even; the beam keeps its relative size)\n"
          "  --positions N   number of scan positions\n"
          "  --modes K       incoherent probe modes (1..10)\n"
          "  --photons P     mean total photons per pattern; 0 or less: no noise (the\n"
          "                  noiseless patterns then hold 1e6 counts on average)\n"
          "  --seed S        random seed (a non-negative integer; default 1)\n"
          "  --jitter PX     uniform jitter of the positions, +-PX pixels (default 0.5)\n"
          "  -o, --output F  the file to write (required)\n"
          "  -h, --help      show this help\n");
}

/* Takes the value of option `name` given as "--name V" or "--name=V"; advances *i.
 * Sets *matched when argv[*i] is this option; returns NULL if its value is missing. */
static const char *option_value(int argc, char **argv, int *i, const char *name, int *matched) {
  size_t len = strlen(name);
  const char *arg = argv[*i];
  *matched = 0;
  if (strncmp(arg, name, len) != 0 || (arg[len] != '\0' && arg[len] != '=')) return NULL;
  *matched = 1;
  if (arg[len] == '=') return arg + len + 1;
  if (*i + 1 < argc) return argv[++*i];
  return NULL;
}

static int parse_positive_int(const char *text, int *value) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v <= 0 || v > INT_MAX) return 0;
  *value = (int)v;
  return 1;
}

static int parse_double(const char *text, double *value) {
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !isfinite(v)) return 0;
  *value = v;
  return 1;
}

static int parse_seed(const char *text, uint64_t *value) {
  char *end = NULL;
  errno = 0;
  if (text[0] == '-' || text[0] == '+') return 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return 0;
  *value = (uint64_t)v;
  return 1;
}

/* Size of a file in bytes, or -1. */
static long file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return -1;
  long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  fclose(f);
  return size;
}

/* What the command line asked for; negative / NULL = not given. */
typedef struct sim_request {
  const char *preset, *output;
  int m, n_positions, n_modes;
  int have_photons, have_seed, have_jitter;
  double photons, jitter_px;
  uint64_t seed;
} sim_request;

static int usage_error(const char *message, const char *detail) {
  fprintf(stderr, "ptyc simulate: error: %s%s (see ptyc simulate --help)\n", message, detail);
  return 2;
}

int pt_cmd_simulate(int argc, char **argv) {
  if (pt_wants_help(argc, argv)) {
    print_usage(stdout);
    return 0;
  }
  sim_request req = {"small", NULL, -1, -1, -1, 0, 0, 0, 0.0, 0.0, 0};
  for (int i = 1; i < argc; i++) {
    const char *v;
    int matched;
    if ((v = option_value(argc, argv, &i, "--preset", &matched)) || matched) {
      if (!v) return usage_error("--preset needs a name", "");
      req.preset = v;
    } else if ((v = option_value(argc, argv, &i, "--size", &matched)) || matched) {
      if (!v || !parse_positive_int(v, &req.m)) return usage_error("--size needs a positive integer", "");
    } else if ((v = option_value(argc, argv, &i, "--positions", &matched)) || matched) {
      if (!v || !parse_positive_int(v, &req.n_positions))
        return usage_error("--positions needs a positive integer", "");
    } else if ((v = option_value(argc, argv, &i, "--modes", &matched)) || matched) {
      if (!v || !parse_positive_int(v, &req.n_modes)) return usage_error("--modes needs a positive integer", "");
    } else if ((v = option_value(argc, argv, &i, "--photons", &matched)) || matched) {
      if (!v || !parse_double(v, &req.photons)) return usage_error("--photons needs a number", "");
      req.have_photons = 1;
    } else if ((v = option_value(argc, argv, &i, "--seed", &matched)) || matched) {
      if (!v || !parse_seed(v, &req.seed)) return usage_error("--seed needs a non-negative integer", "");
      req.have_seed = 1;
    } else if ((v = option_value(argc, argv, &i, "--jitter", &matched)) || matched) {
      if (!v || !parse_double(v, &req.jitter_px) || req.jitter_px < 0)
        return usage_error("--jitter needs a number of pixels >= 0", "");
      req.have_jitter = 1;
    } else if ((v = option_value(argc, argv, &i, "--output", &matched)) || matched ||
               (v = option_value(argc, argv, &i, "-o", &matched)) || matched) {
      if (!v || !v[0]) return usage_error("-o needs a file name", "");
      req.output = v;
    } else if (argv[i][0] == '-') {
      return usage_error("unknown option ", argv[i]);
    } else {
      return usage_error("unexpected argument ", argv[i]);
    }
  }
  if (req.output == NULL) return usage_error("no output file given: add -o OUT.h5", "");

  ptyc_sim_params p;
  if (ptyc_sim_preset(req.preset, &p) != PTYC_OK) return usage_error(ptyc_last_error(), "");
  if (req.m > 0) {
    p.defocus *= (double)req.m / p.m; /* the same beam diameter relative to the window */
    p.m = req.m;
  }
  if (req.n_positions > 0) p.n_positions = req.n_positions;
  if (req.n_modes > 0) p.n_modes = req.n_modes;
  if (req.have_photons) p.photons = req.photons;
  if (req.have_seed) p.seed = req.seed;
  if (req.have_jitter) p.jitter_px = req.jitter_px;

  ptyc_status st = ptyc_simulate_write(&p, req.output);
  if (st != PTYC_OK) {
    fprintf(stderr, "ptyc simulate: error: %s\n", ptyc_last_error());
    return st == PTYC_E_ARG ? 2 : 1; /* a parameter out of range is a usage error */
  }
  long size = file_size(req.output);
  char noise[64];
  if (p.photons > 0)
    snprintf(noise, sizeof noise, "%.3g photons per pattern", p.photons);
  else
    snprintf(noise, sizeof noise, "noiseless");
  printf("ptyc simulate: wrote %s (%.1f MB): %d patterns of %dx%d, %d probe mode%s, %s, "
         "seed %llu\n",
         req.output, size >= 0 ? size / 1e6 : 0.0, p.n_positions, p.m, p.m, p.n_modes,
         p.n_modes == 1 ? "" : "s", noise, (unsigned long long)p.seed);
  return 0;
}
