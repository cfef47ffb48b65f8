/* `ptyc devices`: the CPU and the visible GPUs, and why a GPU is unusable. */
#include <stdio.h>

#include "cli/commands.h"
#include "ptyc/backend.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

int pt_cmd_devices(int argc, char **argv) {
  if (pt_wants_help(argc, argv)) {
    printf("usage: ptyc devices\n\nLists the CPU and the GPUs that CUDA_VISIBLE_DEVICES leaves "
           "visible, with memory and compute capability, and says why no GPU is usable.\n");
    return 0;
  }
  ptyc_backend *cpu = NULL;
  ptyc_device_info info;
  if (ptyc_backend_create(PTYC_DEVICE_CPU, 0, 0, &cpu) != PTYC_OK ||
      ptyc_backend_device_info(cpu, &info) != PTYC_OK) {
    fprintf(stderr, "ptyc devices: error: %s\n", ptyc_last_error());
    ptyc_backend_free(cpu);
    return 1;
  }
  printf("cpu     %s | %d threads | memory %.1f GiB total, %.1f GiB free\n", info.name,
         info.threads, info.memory_total / GIB, info.memory_free / GIB);
  ptyc_backend_free(cpu);
  char why[256];
  if (!ptyc_cuda_usable(why, sizeof why)) {
    printf("cuda    none usable: %s\n", why);
    return 0;
  }
  int n = ptyc_cuda_device_count();
  for (int i = 0; i < n; i++) {
    if (ptyc_cuda_device_info(i, &info) != PTYC_OK) {
      printf("cuda:%d  unusable: %s\n", i, ptyc_last_error());
      continue;
    }
    printf("cuda:%d  %s | compute %d.%d | memory %.1f GiB total, %.1f GiB free\n", i, info.name,
           info.compute_major, info.compute_minor, info.memory_total / GIB,
           info.memory_free / GIB);
  }
  return 0;
}
