/* `ptyc info FILE.h5|JOB.cfg [--positions FILE] [--modes K] [--batch B]`: what a dataset
 * holds and what a reconstruction of it will need. Given a job file, the dataset is read
 * as `ptyc run` reads it (its format, second file and `data` options). argv[0] is
 * "info". */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "ptyc/dataset.h"
#include "ptyc/options.h"

static void print_usage(FILE *out) {
  fprintf(out,
          "usage: ptyc info FILE.h5 [--positions FILE] [--modes K] [--batch B]\n"
          "       ptyc info JOB.cfg [--modes K] [--batch B]\n"
          "\n"
          "Prints what a dataset holds (format, patterns, positions, geometry, probe,\n"
          "mask, counts) and the memory a reconstruction will need. The format is\n"
          "recognised (native, CXI, ptychodus, PtychoShelves); given a job file (.cfg),\n"
          "the dataset is read as `ptyc run` reads it, with the job's data options.\n"
          "\n"
          "  --positions FILE  the second file of a ptychodus (product file) or\n"
          "                    PtychoShelves (*_para.hdf5) dataset\n"
          "  --modes K   probe modes to plan for (default: the file's probe modes, else 1)\n"
          "  --batch B   positions per minibatch to plan for (default: 64, at most N)\n"
          "  -h, --help  show this help\n");
}

/* Parses a positive int; 0 if `text` is not one. */
static int parse_positive(const char *text, int *value) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v <= 0 || v > INT_MAX)
    return 0;
  *value = (int)v;
  return 1;
}

/* Takes the value of option `name` given as "--name V" or "--name=V"; advances *i. */
static const char *option_value(int argc, char **argv, int *i, const char *name) {
  size_t len = strlen(name);
  if (strncmp(argv[*i], name, len) == 0 && argv[*i][len] == '=')
    return argv[*i] + len + 1;
  if (strcmp(argv[*i], name) == 0 && *i + 1 < argc)
    return argv[++*i];
  return NULL;
}

int pt_cmd_info(int argc, char **argv) {
  if (pt_wants_help(argc, argv)) {
    print_usage(stdout);
    return 0;
  }
  const char *path = NULL, *positions = NULL;
  int n_modes = 0, batch_size = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *value = NULL;
    if (strncmp(arg, "--modes", 7) == 0 && (arg[7] == '\0' || arg[7] == '=')) {
      value = option_value(argc, argv, &i, "--modes");
      if (!value || !parse_positive(value, &n_modes)) {
        fprintf(stderr, "ptyc info: error: --modes needs a positive integer\n");
        return 2;
      }
    } else if (strncmp(arg, "--batch", 7) == 0 && (arg[7] == '\0' || arg[7] == '=')) {
      value = option_value(argc, argv, &i, "--batch");
      if (!value || !parse_positive(value, &batch_size)) {
        fprintf(stderr, "ptyc info: error: --batch needs a positive integer\n");
        return 2;
      }
    } else if (strncmp(arg, "--positions", 11) == 0 && (arg[11] == '\0' || arg[11] == '=')) {
      positions = option_value(argc, argv, &i, "--positions");
      if (!positions || !positions[0]) {
        fprintf(stderr, "ptyc info: error: --positions needs a file\n");
        return 2;
      }
    } else if (arg[0] == '-' && arg[1] != '\0') {
      fprintf(stderr, "ptyc info: error: unknown option %s (see ptyc info --help)\n", arg);
      return 2;
    } else if (path) {
      fprintf(stderr, "ptyc info: error: one file at a time (got %s and %s)\n", path, arg);
      return 2;
    } else {
      path = arg;
    }
  }
  if (!path) {
    fprintf(stderr, "ptyc info: error: no file given (usage: ptyc info FILE.h5 [--modes K] "
                    "[--batch B])\n");
    return 2;
  }
  /* The `data` options: a job file's, or the defaults for a dataset file. */
  static ptyc_options opts; /* large (paths): kept off the stack */
  size_t len = strlen(path);
  int is_job = len > 4 && strcmp(path + len - 4, ".cfg") == 0;
  ptyc_status st = PTYC_OK;
  if (is_job) {
    const char *override[1];
    char set[PTYC_PATH_MAX + 32];
    if (positions)
      snprintf(set, sizeof set, "data.positions_path=%s", positions);
    override[0] = set;
    st = ptyc_options_load(path, override, positions ? 1 : 0, &opts);
    if (n_modes == 0)
      n_modes = opts.probe.modes; /* plan for the job's reconstruction */
    if (batch_size == 0)
      batch_size = opts.reconstructor.batch_size;
  } else {
    ptyc_options_default(&opts);
    if (len >= sizeof opts.data.path || (positions && strlen(positions) >= sizeof opts.data.path))
      st = ptyc_fail(PTYC_E_ARG, "%.80s...: path too long", path);
    snprintf(opts.data.path, sizeof opts.data.path, "%s", path);
    if (positions)
      snprintf(opts.data.positions_path, sizeof opts.data.positions_path, "%s", positions);
  }
  if (st == PTYC_OK)
    st = ptyc_dataset_describe_opts(&opts.data, n_modes, batch_size, stdout);
  if (st != PTYC_OK) {
    fprintf(stderr, "ptyc info: error: %s\n", ptyc_last_error());
    return 1;
  }
  return 0;
}
