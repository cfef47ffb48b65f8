/* `ptyc`: parses the subcommand and dispatches; each subcommand lives in cmd_*.c. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "build_config.h"
#include "cli/commands.h"
#include "ptyc/engine.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} commands[] = {
    {"run", pt_cmd_run, "reconstruct a dataset from a job file"},
    {"simulate", pt_cmd_simulate, "write a simulated dataset with its ground truth"},
    {"info", pt_cmd_info, "describe a dataset file and the memory a reconstruction needs"},
    {"devices", pt_cmd_devices, "list the CPU and the visible GPUs"},
    {"compare", pt_cmd_compare, "object error of a reconstruction against the truth"},
    {"launch", pt_cmd_launch, "start a command on N ranks of this node through mpirun"},
};

int pt_wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
  return 0;
}

static void print_version(void) {
  printf("ptyc %s\n", PTYC_VERSION_STRING);
  printf("features: cpu (FFTW %s, OpenMP)%s, HDF5 %s, libconfig %s\n", PTYC_FFTW_VERSION,
         PTYC_HAVE_CUDA ? ", cuda (cuFFT, cuBLAS)" : ", no cuda", PTYC_HDF5_VERSION,
         PTYC_LIBCONFIG_VERSION);
  /* several ranks: MPI (its standard's version) and NCCL for GPU-to-GPU sums */
  printf("ranks: %s, %s\n", PTYC_HAVE_MPI ? "mpi " PTYC_MPI_VERSION : "no mpi",
         PTYC_HAVE_NCCL ? "nccl " PTYC_NCCL_VERSION : "no nccl");
  printf("engines:");
  for (const char *const *name = ptyc_engine_names(); *name; name++) printf(" %s", *name);
  printf("\n");
}

static void print_usage(FILE *out) {
  fprintf(out, "usage: ptyc <command> [options]   (ptyc <command> --help for details)\n\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\n  --version  print the version and the build's features\n");
}

/* A fatal signal: say in one line what most likely happened, then die of the signal as
 * before (exit status, core dump and debuggers unchanged). libhdf5 1.10 crashes on some
 * byte-corrupted files (tests/fuzz/libhdf5_findings/) before ptyc can validate them. */
static void on_fatal_signal(int sig) {
  static const char msg[] =
      "ptyc: error: crashed on a fatal signal; if an input file was being read it is most "
      "likely corrupt (check it with h5dump), otherwise please report this\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  signal(sig, SIG_DFL);
  raise(sig);
}

int main(int argc, char **argv) {
  signal(SIGSEGV, on_fatal_signal);
  signal(SIGBUS, on_fatal_signal);
  signal(SIGFPE, on_fatal_signal);
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
    print_version();
    return 0;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    print_usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "ptyc: error: unknown command '%s'; run 'ptyc --help' for the list\n", argv[1]);
  return 2;
}
