/* `ptyc run JOB.cfg [--set key=value ...] [--resume] [--quiet]` */
#define _POSIX_C_SOURCE 200809L /* sigaction */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "cli/commands.h"
#include "ptyc/backend.h"
#include "ptyc/comm.h"
#include "ptyc/engine.h"
#include "ptyc/options.h"
#include "ptyc/run.h"
#include "ptyc/status.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: ptyc run JOB.cfg [--set group.key=value ...] [--resume] [--quiet]\n\n"
          "Reconstructs the dataset named by data.path in the libconfig job file.\n"
          "  --set group.key=value   override one key of the job (same checks as the file)\n"
          "  --resume                continue from output.directory/checkpoint.h5 up to\n"
          "                          reconstructor.iterations (same job, same dataset)\n"
          "  --quiet                 print only warnings, errors and the final line\n"
          "Environment: PTYC_DEVICE=cpu|cuda overrides reconstructor.device;\n"
          "CUDA_VISIBLE_DEVICES decides which GPUs are visible.\n"
          "Several ranks: under mpirun, mpiexec or srun every rank reads its share of the\n"
          "patterns and uses GPU (local rank %% visible GPUs); only rank 0 prints progress\n"
          "and writes files, and the result is that of one rank. Without a launcher, a\n"
          "node with several visible GPUs runs one rank per GPU through 'ptyc launch'\n"
          "(reconstructor.gpus limits them).\n"
          "Outputs in output.directory: recon.h5, object_phase.png, object_amplitude.png,\n"
          "probe.png, cost.png, log.jsonl, and checkpoint.h5 every\n"
          "output.checkpoint_every iterations. SIGINT (Ctrl-C) or SIGTERM stops after the\n"
          "current iteration, writes checkpoint.h5 and the outputs, and exits with\n"
          "128 + the signal number; a second Ctrl-C stops at once.\n"
          "See configs/default.cfg for every key.\n");
}

/* The signal that asked the run to stop, 0 if none. Written only by on_stop_signal. */
static volatile sig_atomic_t stop_signal = 0;

static void on_stop_signal(int sig) { stop_signal = sig; }

/* SIGINT and SIGTERM set stop_signal once; SA_RESETHAND restores the default action,
 * so a second signal ends the program at once (every output is written atomically,
 * so that loses at most the iteration in progress). */
static void catch_stop_signals(struct sigaction old[2]) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  sigaction(SIGINT, &sa, &old[0]);
  sigaction(SIGTERM, &sa, &old[1]);
}

static void restore_signals(const struct sigaction old[2]) {
  sigaction(SIGINT, &old[0], NULL);
  sigaction(SIGTERM, &old[1], NULL);
}

/* Without any launcher, on a node with several visible GPUs, a CUDA run uses
 * reconstructor.gpus of them (0 = all), one rank each, by starting itself again through
 * `ptyc launch`, which replaces this process by mpirun. Returns only when it does not
 * launch (one GPU, the CPU, no MPI in this build, or no mpirun). */
static void launch_on_gpus(const ptyc_options *opts, int argc, char **argv) {
  ptyc_device_kind device;
  char notice[320];
  if (!ptyc_engine_data_parallel(opts->reconstructor.engine) ||
      ptyc_resolve_device(opts->reconstructor.device, &device, notice, sizeof notice) !=
          PTYC_OK ||
      device != PTYC_DEVICE_CUDA)
    return;
  int visible = ptyc_cuda_device_count(), wanted = opts->reconstructor.gpus;
  int gpus = wanted > 0 && wanted < visible ? wanted : visible;
  if (gpus < 2) return;
  if (!PTYC_HAVE_MPI) {
    fprintf(stderr, "ptyc run: note: %d GPUs are visible but this ptyc was built without MPI: "
                    "using one (rebuild with -DPTYC_MPI=ON, or set reconstructor.gpus = 1)\n",
            visible);
    return;
  }
  char count[16];
  snprintf(count, sizeof count, "%d", gpus);
  char **args = calloc((size_t)argc + 4, sizeof *args);
  if (args == NULL) return;
  int n = 0;
  args[n++] = "launch";
  args[n++] = "--nproc-per-node";
  args[n++] = count;
  for (int i = 0; i < argc; i++) args[n++] = argv[i]; /* "run" and its arguments */
  pt_cmd_launch(n, args); /* returns only if mpirun could not be started */
  fprintf(stderr, "ptyc run: note: could not start %d ranks (see above): running on one GPU; "
                  "set reconstructor.gpus = 1 to skip the attempt\n", gpus);
  free(args);
}

/* An error line; ranks after the first name themselves. */
static void print_error(int rank, const char *text) {
  if (rank > 0)
    fprintf(stderr, "[rank %d] ptyc run: error: %s\n", rank, text);
  else
    fprintf(stderr, "ptyc run: error: %s\n", text);
}

/* Prints argv as a command line to paste, quoting what the shell would split. */
static void print_command(FILE *out, int argc, char **argv) {
  fprintf(out, "ptyc");
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--resume") == 0) continue; /* added once at the end */
    if (a[0] != '\0' && strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789_-+=./,:@%") == strlen(a)) {
      fprintf(out, " %s", a);
      continue;
    }
    fputs(" '", out);
    for (; *a; a++) {
      if (*a == '\'')
        fputs("'\\''", out);
      else
        fputc(*a, out);
    }
    fputc('\'', out);
  }
  fprintf(out, " --resume");
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
    } else if (strcmp(argv[i], "--resume") == 0) {
      flags.resume = 1;
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
  ptyc_rank_env env; /* the launcher's: rank 0 of 1 without one */
  ptyc_rank_env_detect(&env);
  ptyc_options opts;
  ptyc_status st = ptyc_options_load(job, sets, n_sets, &opts);
  free(sets);
  if (st == PTYC_OK && env.size == 1 && strcmp(env.launcher, "none") == 0)
    launch_on_gpus(&opts, argc, argv);
  ptyc_comm *comm = NULL;
  if (st == PTYC_OK) st = ptyc_comm_create(&env, &comm); /* MPI_Init with several ranks */
  flags.comm = comm;
  ptyc_run_result result;
  if (st == PTYC_OK) {
    struct sigaction old[2];
    stop_signal = 0;
    flags.stop_signal = &stop_signal;
    catch_stop_signals(old);
    st = ptyc_run_job(&opts, &flags, &result);
    restore_signals(old);
  }
  if (st == PTYC_E_INTERRUPTED) { /* every rank stopped after the same iteration */
    /* One line: what happened, what was kept, and the command that continues. */
    if (env.rank == 0) {
      fprintf(stderr, "ptyc run: %s; continue with: ", ptyc_last_error());
      print_command(stderr, argc, argv);
      fputc('\n', stderr);
    }
    ptyc_comm_free(comm);
    return 128 + (int)stop_signal;
  }
  if (st != PTYC_OK) {
    print_error(env.rank, ptyc_last_error());
    /* The other ranks may be waiting for this one in a collective: end them all now. */
    if (env.size > 1) ptyc_comm_abort(comm, 1);
    ptyc_comm_free(comm);
    return 1;
  }
  if (flags.quiet && env.rank == 0)
    printf("done %d iterations | loss %.4e | median %.1f ms/iteration | %s\n",
           result.iterations_done, result.final_loss, result.median_iteration_ms,
           result.device);
  ptyc_comm_free(comm);
  return 0;
}
