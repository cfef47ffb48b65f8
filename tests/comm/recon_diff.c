/* recon_diff A.h5 B.h5 [TOL]: the relative difference of two reconstructions,
 * ||O_A - O_B|| / ||O_A|| over /object (and the same for /probe), read through
 * include/ptyc/recon_io.h, and the largest difference of the positions in pixels.
 * Prints them; exits 0 when the object's is <= TOL (default 1e-4), 1 when it is larger
 * or the objects differ in size, 2 on a usage or read error.
 * The multi-rank tests compare an N-rank run with a 1-rank run with it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ptyc/recon_io.h"

/* ||a - b|| / ||a|| over `count` complex values. */
static double relative_difference(const ptyc_c32 *a, const ptyc_c32 *b, size_t count) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < count; i++) {
    double dr = (double)a[i].re - b[i].re, di = (double)a[i].im - b[i].im;
    diff += dr * dr + di * di;
    norm += (double)a[i].re * a[i].re + (double)a[i].im * a[i].im;
  }
  return norm > 0.0 ? sqrt(diff / norm) : sqrt(diff);
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: recon_diff A.h5 B.h5 [TOL]\n");
    return 2;
  }
  double tol = argc == 4 ? atof(argv[3]) : 1e-4;
  ptyc_recon *a = NULL, *b = NULL;
  if (ptyc_recon_read(argv[1], &a) != PTYC_OK || ptyc_recon_read(argv[2], &b) != PTYC_OK) {
    fprintf(stderr, "recon_diff: %s\n", ptyc_last_error());
    ptyc_recon_free(a);
    return 2;
  }
  int code = 1;
  if (a->obj_h != b->obj_h || a->obj_w != b->obj_w || a->n_modes != b->n_modes ||
      a->m != b->m) {
    printf("recon_diff: different shapes: object %dx%d vs %dx%d, probe %d x %d^2 vs %d x %d^2\n",
           a->obj_h, a->obj_w, b->obj_h, b->obj_w, a->n_modes, a->m, b->n_modes, b->m);
  } else {
    double object = relative_difference(a->object, b->object, (size_t)a->obj_h * a->obj_w);
    double probe = relative_difference(a->probe, b->probe, (size_t)a->n_modes * a->m * a->m);
    /* Refined positions: the largest difference of a coordinate, in pixels. */
    double positions = 0.0;
    int same_n = a->n_positions == b->n_positions && a->positions_px && b->positions_px;
    for (int i = 0; same_n && i < 2 * a->n_positions; i++) {
      double d = fabs(a->positions_px[i] - b->positions_px[i]);
      if (d > positions) positions = d;
    }
    printf("object %.3e probe %.3e (relative; object tolerance %.1e)", object, probe, tol);
    if (same_n) printf(" positions %.1e px (largest)", positions);
    printf("\n");
    code = object <= tol ? 0 : 1;
  }
  ptyc_recon_free(a);
  ptyc_recon_free(b);
  return code;
}
