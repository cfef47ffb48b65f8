/* libFuzzer target: the job file parser. The input is a job file's bytes.
 *
 * Whatever the bytes, ptyc_options_load answers PTYC_OK or an error with a one-line
 * message. An accepted job also survives a round trip: ptyc_options_to_text() of it
 * loads back to the same options, printed the same (the resolved job stored in every
 * recon.h5 must be a valid job file). */
#include "fuzz_common.h"

#include "ptyc/checkpoint.h"
#include "ptyc/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char job_path[512], round_path[512];
  if (job_path[0] == '\0') {
    fuzz_scratch_path("job.cfg", job_path, sizeof job_path);
    fuzz_scratch_path("round.cfg", round_path, sizeof round_path);
  }
  fuzz_write_file(job_path, data, size);

  ptyc_options opts;
  ptyc_status st = ptyc_options_load(job_path, NULL, 0, &opts);
  fuzz_check_status(st, "ptyc_options_load");
  if (st != PTYC_OK) return 0;

  char *text = NULL, *again = NULL, *job = NULL;
  st = ptyc_options_to_text(&opts, &text);
  fuzz_check_status(st, "ptyc_options_to_text");
  if (st == PTYC_OK) {
    ptyc_options reloaded;
    fuzz_write_file(round_path, (const uint8_t *)text, strlen(text));
    st = ptyc_options_load(round_path, NULL, 0, &reloaded);
    if (st != PTYC_OK) {
      fprintf(stderr, "the resolved job does not load back: %s\n---\n%s---\n",
              ptyc_last_error(), text);
      abort();
    }
    if (ptyc_options_to_text(&reloaded, &again) != PTYC_OK || strcmp(text, again) != 0) {
      fprintf(stderr, "the resolved job changes on a round trip:\n---\n%s---\n%s---\n", text,
              again ? again : "(none)");
      abort();
    }
  }
  fuzz_check_status(ptyc_checkpoint_job_text(&opts, &job), "ptyc_checkpoint_job_text");
  free(text);
  free(again);
  free(job);
  return 0;
}
