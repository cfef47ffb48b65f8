/* `ptyc launch [--nproc-per-node N] [--dry-run] COMMAND [ARGS...]`: the torchrun of
 * ptyc. Starts N ranks of `ptyc COMMAND ARGS...` on this node through the MPI launcher,
 * with the flags one node needs, by replacing this process with mpirun (exec). */
#define _POSIX_C_SOURCE 200809L /* readlink, setenv, popen */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "build_config.h"
#include "cli/commands.h"
#include "ptyc/backend.h"
#include "ptyc/comm.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: ptyc launch [--nproc-per-node N] [--dry-run] COMMAND [ARGS...]\n\n"
          "Starts N ranks of 'ptyc COMMAND ARGS...' on this node through MPI, e.g.\n"
          "  ptyc launch --nproc-per-node 4 run job.cfg\n"
          "  --nproc-per-node N  ranks to start; default: the visible GPUs (at least 1).\n"
          "                      Rank r uses GPU r %% (visible GPUs); on the CPU the ranks\n"
          "                      share the cores (cores / N threads each).\n"
          "  --dry-run           print the launcher's command line instead of running it\n"
          "The launcher is 'mpirun' from PATH (PTYC_MPIRUN names another): Open MPI gets\n"
          "-np N --bind-to none (plus --oversubscribe beyond the cores, and the\n"
          "OMPI_ALLOW_RUN_AS_ROOT variables as root); MPICH's gets -n N. For several nodes\n"
          "run mpirun or srun yourself: ptyc reads its rank from their environment.\n"
          "'ptyc run' on a node with several visible GPUs launches itself this way unless\n"
          "reconstructor.gpus (or CUDA_VISIBLE_DEVICES) limits it to one.\n");
}

typedef enum mpi_flavour { FLAVOUR_UNKNOWN, FLAVOUR_OPENMPI, FLAVOUR_MPICH } mpi_flavour;

/* Which MPI `launcher` belongs to, from its --version text. */
static mpi_flavour launcher_flavour(const char *launcher, int *found) {
  char command[1024], line[512];
  snprintf(command, sizeof command, "'%s' --version 2>&1", launcher);
  *found = 0;
  FILE *p = popen(command, "r");
  if (p == NULL) return FLAVOUR_UNKNOWN;
  mpi_flavour flavour = FLAVOUR_UNKNOWN;
  while (fgets(line, sizeof line, p)) {
    if (strstr(line, "Open MPI") || strstr(line, "OpenRTE")) flavour = FLAVOUR_OPENMPI;
    if (strstr(line, "HYDRA") || strstr(line, "MPICH") || strstr(line, "Intel(R) MPI"))
      flavour = FLAVOUR_MPICH;
  }
  int status = pclose(p);
  *found = status != -1 && !(WIFEXITED(status) && WEXITSTATUS(status) == 127);
  return flavour;
}

/* Whether `name` is an executable in a directory of PATH. */
static int on_path(const char *name) {
  const char *path = getenv("PATH");
  char dir[4096], file[4200];
  while (path && *path) {
    size_t len = strcspn(path, ":");
    snprintf(dir, sizeof dir, "%.*s", (int)len, path);
    snprintf(file, sizeof file, "%s/%s", len ? dir : ".", name);
    if (access(file, X_OK) == 0) return 1;
    path += len + (path[len] == ':');
  }
  return 0;
}

/* This program's own path, so that every rank runs the same build. */
static int own_path(char *buf, size_t size, const char *argv0) {
  ssize_t n = readlink("/proc/self/exe", buf, size - 1);
  if (n > 0) {
    buf[n] = '\0';
    return 1;
  }
  snprintf(buf, size, "%s", argv0);
  return 0;
}

/* Parses a positive count; 0 on a bad value. */
static int parse_count(const char *s) {
  char *end = NULL;
  long v = strtol(s, &end, 10);
  return *s != '\0' && *end == '\0' && v >= 1 && v <= 4096 ? (int)v : 0;
}

int pt_cmd_launch(int argc, char **argv) {
  int nproc = 0, dry_run = 0, at = 1;
  for (; at < argc && argv[at][0] == '-'; at++) {
    const char *a = argv[at];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--dry-run") == 0) {
      dry_run = 1;
    } else if (strcmp(a, "--nproc-per-node") == 0 || strncmp(a, "--nproc-per-node=", 17) == 0) {
      const char *v = a[16] == '=' ? a + 17 : (at + 1 < argc ? argv[++at] : "");
      nproc = parse_count(v);
      if (nproc == 0) {
        fprintf(stderr, "ptyc launch: error: --nproc-per-node needs a count from 1 to 4096, "
                        "not '%s'\n", v);
        return 2;
      }
    } else {
      fprintf(stderr, "ptyc launch: error: unknown option '%s' (see ptyc launch --help)\n", a);
      return 2;
    }
  }
  if (at >= argc) {
    fprintf(stderr, "ptyc launch: error: no command given (e.g. ptyc launch "
                    "--nproc-per-node 2 run job.cfg)\n");
    return 2;
  }
  if (!PTYC_HAVE_MPI) {
    fprintf(stderr, "ptyc launch: error: this ptyc was built without MPI: install an MPI "
                    "(e.g. openmpi-bin libopenmpi-dev) and rebuild with -DPTYC_MPI=ON\n");
    return 1;
  }
  ptyc_rank_env env;
  ptyc_rank_env_detect(&env);
  if (env.size > 1) {
    fprintf(stderr, "ptyc launch: error: already rank %d of %d under %s: run 'ptyc %s' "
                    "directly\n", env.rank, env.size, env.launcher, argv[at]);
    return 2;
  }
  if (nproc == 0) {
    int gpus = ptyc_cuda_device_count();
    nproc = gpus > 1 ? gpus : 1;
  }

  const char *launcher = getenv("PTYC_MPIRUN");
  if (launcher == NULL || *launcher == '\0') launcher = "mpirun";
  int found = 0;
  mpi_flavour flavour = launcher_flavour(launcher, &found);
  if (!found) {
    fprintf(stderr, "ptyc launch: error: '%s' not found: install Open MPI (e.g. apt install "
                    "openmpi-bin) or set PTYC_MPIRUN to your MPI's launcher\n", launcher);
    return 1;
  }
  if (flavour == FLAVOUR_UNKNOWN) {
    fprintf(stderr, "ptyc launch: error: '%s --version' names neither Open MPI nor MPICH: "
                    "start the ranks yourself (e.g. %s -n %d ptyc %s ...)\n",
            launcher, launcher, nproc, argv[at]);
    return 1;
  }

  char self[4096], count[16];
  own_path(self, sizeof self, argv[0]);
  snprintf(count, sizeof count, "%d", nproc);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  /* launcher, its flags (at most 5), ptyc, the command and its arguments, NULL */
  char **args = calloc((size_t)(argc - at) + 8, sizeof *args);
  if (args == NULL) return 1;
  int n = 0;
  args[n++] = (char *)launcher;
  if (flavour == FLAVOUR_OPENMPI) {
    args[n++] = "-np";
    args[n++] = count;
    args[n++] = "--bind-to"; /* each rank runs OpenMP threads over its share of cores */
    args[n++] = "none";
    if (cores > 0 && nproc > cores) args[n++] = "--oversubscribe";
    if (geteuid() == 0) { /* Open MPI refuses root unless told twice */
      setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
      setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    }
    /* Open MPI 4 gives up, even on one node, when it finds neither ssh nor rsh (a bare
     * container); with no remote agent it starts the ranks locally instead. */
    if (!on_path("ssh") && !on_path("rsh") && getenv("OMPI_MCA_plm_rsh_agent") == NULL)
      setenv("OMPI_MCA_plm_rsh_agent", "", 1);
  } else {
    args[n++] = "-n";
    args[n++] = count;
  }
  args[n++] = self;
  for (int i = at; i < argc; i++) args[n++] = argv[i];
  args[n] = NULL;

  fprintf(stderr, "ptyc launch:");
  for (int i = 0; i < n; i++) fprintf(stderr, " %s", args[i]);
  fputc('\n', stderr);
  if (dry_run) {
    free(args);
    return 0;
  }
  fflush(stdout);
  fflush(stderr);
  execvp(launcher, args);
  fprintf(stderr, "ptyc launch: error: cannot run %s: ", launcher);
  perror(NULL);
  free(args);
  return 1;
}
