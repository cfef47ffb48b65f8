/* The comm layer without a launcher: the launcher's environment (Open MPI, MPICH,
 * Slurm variables), the contiguous shares of positions, and the single-rank comm and
 * NULL comm, whose collectives leave data as it is. Reading a dataset's share with one
 * rank is the plain read. */
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv */

#include <stdlib.h>
#include <string.h>

#include "ptyc/comm.h"
#include "ptyc/dataset.h"
#include "test_util.h"

static const char *launcher_vars[] = {
    "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
    "OMPI_COMM_WORLD_LOCAL_SIZE", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID",
    "MPI_LOCALNRANKS", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
    "SLURM_NTASKS_PER_NODE"};

static void clear_launcher(void) {
  for (size_t i = 0; i < sizeof launcher_vars / sizeof launcher_vars[0]; i++)
    unsetenv(launcher_vars[i]);
}

static void test_env(void) {
  ptyc_rank_env env;
  clear_launcher();
  ptyc_rank_env_detect(&env);
  EXPECT(env.rank == 0 && env.size == 1 && env.local_rank == 0 && env.local_size == 1);
  EXPECT(strcmp(env.launcher, "none") == 0);

  setenv("OMPI_COMM_WORLD_RANK", "5", 1);
  setenv("OMPI_COMM_WORLD_SIZE", "8", 1);
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
  setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4", 1);
  ptyc_rank_env_detect(&env);
  EXPECT(env.rank == 5 && env.size == 8 && env.local_rank == 1 && env.local_size == 4);
  EXPECT(strcmp(env.launcher, "openmpi") == 0);

  clear_launcher();
  setenv("PMI_RANK", "2", 1);
  setenv("PMI_SIZE", "3", 1);
  setenv("MPI_LOCALRANKID", "2", 1);
  ptyc_rank_env_detect(&env); /* no MPI_LOCALNRANKS: the job size bounds the node's */
  EXPECT(env.rank == 2 && env.size == 3 && env.local_rank == 2 && env.local_size == 3);
  EXPECT(strcmp(env.launcher, "mpich") == 0);

  clear_launcher();
  setenv("SLURM_PROCID", "3", 1);
  setenv("SLURM_NTASKS", "4", 1);
  setenv("SLURM_LOCALID", "1", 1);
  setenv("SLURM_NTASKS_PER_NODE", "2(x2)", 1); /* Slurm's compressed form: not a count */
  ptyc_rank_env_detect(&env);
  EXPECT(env.rank == 3 && env.size == 4 && env.local_rank == 1 && env.local_size == 4);
  EXPECT(strcmp(env.launcher, "slurm") == 0);

  clear_launcher();
  setenv("OMPI_COMM_WORLD_RANK", "4", 1); /* rank beyond size: not a launcher's */
  setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  ptyc_rank_env_detect(&env);
  EXPECT(env.size == 1 && strcmp(env.launcher, "none") == 0);
  clear_launcher();
}

/* Shares tile [0, n) in rank order, differ by at most one, and none is empty when
 * n >= size. */
static void test_shares(void) {
  int sizes[] = {1, 2, 3, 7, 8};
  int ns[] = {1, 7, 144, 1000, 12000};
  for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++)
    for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
      int size = sizes[a], n = ns[b], next = 0, lo = n, hi = 0;
      for (int r = 0; r < size; r++) {
        int first, count;
        ptyc_comm_share(n, r, size, &first, &count);
        EXPECT(first == next);
        next = first + count;
        if (count < lo) lo = count;
        if (count > hi) hi = count;
      }
      EXPECT(next == n);
      EXPECT(hi - lo <= 1);
      if (n >= size) EXPECT(lo >= 1);
    }
}

static void test_single(void) {
  ptyc_rank_env env;
  clear_launcher();
  ptyc_rank_env_detect(&env);
  ptyc_comm *comm = NULL;
  REQUIRE_OK(ptyc_comm_create(&env, &comm));
  EXPECT(ptyc_comm_rank(comm) == 0 && ptyc_comm_size(comm) == 1);
  EXPECT(strcmp(ptyc_comm_name(comm), "single") == 0);
  double values[3] = {1.5, -2.0, 3.0};
  EXPECT_OK(ptyc_comm_allreduce_host(comm, values, 3, PTYC_COMM_SUM));
  EXPECT_OK(ptyc_comm_allreduce_host(comm, values, 3, PTYC_COMM_MAX));
  EXPECT(values[0] == 1.5 && values[1] == -2.0 && values[2] == 3.0);
  EXPECT_OK(ptyc_comm_barrier(comm));

  ptyc_backend *be = NULL;
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 1, &be));
  EXPECT(ptyc_backend_native_stream(be, NULL) == NULL); /* the CPU has none */
  REQUIRE_OK(ptyc_comm_bind(comm, be));
  ptyc_buf buf;
  REQUIRE_OK(ptyc_buf_alloc(be, 4 * sizeof(float), &buf));
  float host[4] = {1.f, 2.f, 3.f, 4.f}, back[4];
  REQUIRE_OK(ptyc_buf_upload(be, buf, 0, host, sizeof host));
  EXPECT_OK(ptyc_comm_allreduce(comm, buf, sizeof(float), 2, PTYC_COMM_FLOAT));
  EXPECT_OK(ptyc_comm_broadcast(comm, buf, 0, sizeof host, 0));
  REQUIRE_OK(ptyc_buf_download(be, back, buf, 0, sizeof back));
  EXPECT(memcmp(host, back, sizeof host) == 0);
  /* With one rank nothing is exchanged, so nothing is checked against the buffer:
   * a NULL comm (what engines get from a model made without one) behaves the same. */
  EXPECT(ptyc_comm_size(NULL) == 1 && ptyc_comm_rank(NULL) == 0);
  EXPECT_OK(ptyc_comm_allreduce(NULL, buf, 0, 4, PTYC_COMM_FLOAT));
  EXPECT_OK(ptyc_comm_allreduce_host(NULL, values, 3, PTYC_COMM_SUM));
  ptyc_comm_abort(comm, 1); /* one rank: returns, the caller exits as usual */
  ptyc_comm_unbind(comm, 0);
  ptyc_buf_free(be, &buf);
  ptyc_backend_free(be);
  ptyc_comm_free(comm);
  ptyc_comm_free(NULL);
}

/* One rank's share is the whole dataset, read as usual. */
static void test_read_share(void) {
  const char *dir = getenv("PTYC_TEST_DATA");
  if (dir == NULL) return;
  ptyc_options opts;
  ptyc_options_default(&opts);
  snprintf(opts.data.path, sizeof opts.data.path, "%s/small.h5", dir);
  ptyc_dataset *whole = NULL, *share = NULL;
  REQUIRE_OK(ptyc_dataset_read_opts(&opts.data, &whole));
  REQUIRE_OK(ptyc_dataset_read_share(&opts.data, NULL, &share));
  EXPECT(share->n_patterns == whole->n_patterns && share->m == whole->m);
  EXPECT(ptyc_dataset_patterns_held(share) == whole->n_patterns);
  size_t plane = (size_t)whole->m * whole->m;
  EXPECT(memcmp(share->patterns, whole->patterns,
                sizeof(float) * plane * whole->n_patterns) == 0);
  EXPECT(memcmp(share->positions_px, whole->positions_px,
                sizeof(double) * 2 * whole->n_patterns) == 0);
  ptyc_dataset_free(whole);
  ptyc_dataset_free(share);
}

int main(void) {
  test_env();
  test_shares();
  test_single();
  test_read_share();
  return TEST_RESULT();
}
