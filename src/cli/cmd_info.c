/* `ptyc info FILE.h5 [--modes K] [--batch B]`: what a dataset holds and what a
 * reconstruction of it will need. argv[0] is "info". */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "ptyc/dataset.h"

static void print_usage(FILE *out) {
  fprintf(out,
          "usage: ptyc info FILE.h5 [--modes K] [--batch B]\n"
          "\n"
          "Prints what a dataset file holds (format, patterns, positions, geometry, probe,\n"
          "mask, counts) and the memory a reconstruction will need.\n"
          "\n"
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
  const char *path = NULL;
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
  ptyc_status st = ptyc_dataset_describe(path, n_modes, batch_size, stdout);
  if (st != PTYC_OK) {
    fprintf(stderr, "ptyc info: error: %s\n", ptyc_last_error());
    return 1;
  }
  return 0;
}
