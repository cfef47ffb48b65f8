/* `ptyc compare RECON.h5 TRUTH.h5 [--json]`: the object error of a reconstruction
 * against the ground truth of a simulated dataset (src/compare.c). argv[0] is "compare". */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "ptyc/compare.h"
#include "ptyc/dataset.h"
#include "ptyc/recon_io.h"

static void print_usage(FILE *out) {
  fprintf(out,
          "usage: ptyc compare RECON.h5 TRUTH.h5 [--json]\n"
          "\n"
          "Compares the object of a reconstruction (recon.h5) with the true object of a\n"
          "simulated dataset (its /truth group) and prints\n"
          "  object_nrmse     ||c exp(i g.r) O_rec - O_true|| / ||O_true||, minimised over the\n"
          "                   complex scale c and the phase ramp g\n"
          "  pixels_compared  the pixels where the truth probe's summed intensity is at\n"
          "                   least 10 %% of its maximum\n"
          "The grids are aligned through the two files' scan positions.\n"
          "\n"
          "  --json      print one JSON object instead\n"
          "  -h, --help  show this help\n");
}

int pt_cmd_compare(int argc, char **argv) {
  if (pt_wants_help(argc, argv)) {
    print_usage(stdout);
    return 0;
  }
  const char *paths[2] = {NULL, NULL};
  int n_paths = 0, json = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf(stderr, "ptyc compare: error: unknown option %s (see ptyc compare --help)\n", argv[i]);
      return 2;
    } else if (n_paths < 2) {
      paths[n_paths++] = argv[i];
    } else {
      fprintf(stderr, "ptyc compare: error: unexpected argument %s: give RECON.h5 TRUTH.h5\n", argv[i]);
      return 2;
    }
  }
  if (n_paths != 2) {
    fprintf(stderr, "ptyc compare: error: two files needed (usage: ptyc compare RECON.h5 TRUTH.h5)\n");
    return 2;
  }

  ptyc_recon *recon = NULL;
  ptyc_truth *truth = NULL;
  ptyc_dataset *data = NULL;
  ptyc_compare_result result;
  int rc = 1;
  if (ptyc_recon_read(paths[0], &recon) != PTYC_OK || ptyc_truth_read(paths[1], &truth) != PTYC_OK ||
      ptyc_dataset_read(paths[1], "auto", &data) != PTYC_OK) {
    fprintf(stderr, "ptyc compare: error: %s\n", ptyc_last_error());
    goto done;
  }
  if (truth->object == NULL || truth->probe == NULL || truth->probe_modes <= 0) {
    fprintf(stderr, "ptyc compare: error: %s: /truth needs both object and probe\n", paths[1]);
    goto done;
  }
  ptyc_compare_object rec = {recon->object, recon->obj_h, recon->obj_w, recon->positions_px,
                             recon->n_positions};
  ptyc_compare_object tru = {truth->object, truth->obj_h, truth->obj_w, data->positions_px,
                             data->n_patterns};
  if (ptyc_object_compare(&rec, &tru, truth->probe, truth->probe_modes, truth->m, &result) != PTYC_OK) {
    fprintf(stderr, "ptyc compare: error: %s\n", ptyc_last_error());
    goto done;
  }
  if (json)
    printf("{\"object_nrmse\": %.6g, \"pixels_compared\": %ld}\n", result.nrmse, result.n_pixels);
  else
    printf("object_nrmse %.4g\npixels_compared %ld\n", result.nrmse, result.n_pixels);
  rc = 0;
done:
  ptyc_recon_free(recon);
  ptyc_truth_free(truth);
  ptyc_dataset_free(data);
  return rc;
}
