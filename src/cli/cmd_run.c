/* `ptyc run JOB.cfg [--set key=value ...] [--quiet]` */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "ptyc/options.h"
#include "ptyc/run.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: ptyc run JOB.cfg [--set group.key=value ...] [--quiet]\n\n"
          "Reconstructs the dataset named by data.path in the libconfig job file.\n"
          "  --set group.key=value   override one key of the job (same checks as the file)\n"
          "  --quiet                 print only warnings, errors and the final line\n"
          "Environment: PTYC_DEVICE=cpu|cuda overrides reconstructor.device;\n"
          "CUDA_VISIBLE_DEVICES decides which GPUs are visible.\n"
          "Outputs in output.directory: recon.h5, object_phase.png, object_amplitude.png,\n"
          "probe.png, cost.png, log.jsonl. See configs/default.cfg for every key.\n");
}

int pt_cmd_run(int argc, char **argv) {
  if (pt_wants_help(argc, argv)) {
    usage(stdout);
    return 0;
  }
  const char *job = NULL;
  const char **sets = calloc((size_t)argc, sizeof *sets);
  int n_sets = 0;
  ptyc_run_flags flags = {0};
  if (sets == NULL) return 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--set") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "ptyc run: error: --set needs group.key=value\n");
        free(sets);
        return 2;
      }
      sets[n_sets++] = argv[++i];
    } else if (strncmp(argv[i], "--set=", 6) == 0) {
      sets[n_sets++] = argv[i] + 6;
    } else if (strcmp(argv[i], "--quiet") == 0) {
      flags.quiet = 1;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "ptyc run: error: unknown option '%s' (see ptyc run --help)\n", argv[i]);
      free(sets);
      return 2;
    } else if (job == NULL) {
      job = argv[i];
    } else {
      fprintf(stderr, "ptyc run: error: more than one job file ('%s', '%s')\n", job, argv[i]);
      free(sets);
      return 2;
    }
  }
  if (job == NULL) {
    fprintf(stderr, "ptyc run: error: no job file given (usage: ptyc run JOB.cfg)\n");
    free(sets);
    return 2;
  }
  ptyc_options opts;
  ptyc_status st = ptyc_options_load(job, sets, n_sets, &opts);
  free(sets);
  ptyc_run_result result;
  if (st == PTYC_OK) st = ptyc_run_job(&opts, &flags, &result);
  if (st != PTYC_OK) {
    fprintf(stderr, "ptyc run: error: %s\n", ptyc_last_error());
    return 1;
  }
  if (flags.quiet)
    printf("done %d iterations | loss %.4e | median %.1f ms/iteration | %s\n",
           result.iterations_done, result.final_loss, result.median_iteration_ms,
           result.device);
  return 0;
}
