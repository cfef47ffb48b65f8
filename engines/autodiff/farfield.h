/* The far-field forward model of a minibatch as a tape of primitives, and its gradients.
 *
 * For batch entries b (position j, fraction f_b) and probe modes k (shared/FORMATS.md):
 *   P^_k   = F P_k                                 pt_prim_fft     (K images)
 *   S_bk   = P^_k ramp(f_b) / M^2                  pt_prim_shift
 *   p_bk   = G S_bk   (the shifted probe)          pt_prim_fft, inverse
 *   psi_bk = p_bk O_b                              pt_prim_exit_waves
 *   Psi_bk = F psi_bk                              pt_prim_fft
 *   C      = sum_b sum_pixels l(sum_k |Psi_bk|^2, d_j)   pt_prim_loss
 * The backward pass runs the VJPs in reverse. Buffers are reused in place: `probes`
 * holds S, then p; in the backward pass grad p (written over p by the exit-wave VJP),
 * then grad S. `waves` holds psi, Psi, grad Psi, grad psi.
 *
 * With probe.shift = "interpolate" the first four steps are one primitive,
 *   p_bk = S_b P_k (a 12-tap filter), psi_bk = p_bk O_b     pt_prim_interp_exit_waves
 * so a minibatch costs two FFT passes instead of four; `probes` keeps p for the
 * object's gradient and there is no spectrum.
 *
 * Everything is planned and allocated by pt_farfield_init; pt_farfield_run allocates
 * nothing. */
#ifndef PT_AD_FARFIELD_H
#define PT_AD_FARFIELD_H

#include "autodiff/tape.h"
#include "ptyc/backend.h"
#include "ptyc/options.h"

typedef struct pt_farfield {
  ptyc_backend *be;
  int m, n_modes, batch_max;
  ptyc_subpixel_shift shift;
  ptyc_fft *plan_modes; /* K transforms (the probe); NULL when interpolating */
  ptyc_fft *plan_big;   /* batch_max * K transforms */
  ptyc_fft *plan_small; /* (batch_max - 1) * K, for the smaller minibatches, or NULL */
  ptyc_buf spectrum;    /* c32 [K][M][M]: P^ ({NULL} when interpolating) */
  ptyc_buf probes;      /* c32 [batch_max][K][M][M] */
  ptyc_buf waves;       /* c32 [batch_max][K][M][M] */
  ptyc_buf cost;        /* double [batch_max]: each entry's cost after a run */
  pt_tape tape;
} pt_farfield;

/* Where a run puts gradients; a {NULL} buffer is not wanted (and not computed). */
typedef struct pt_farfield_grads {
  ptyc_buf object;           /* c32 [H][W], ADDED to: dC/d(conj O) */
  ptyc_buf illumination;     /* float [H][W], added to: sum_b,k |p_bk|^2 on the object */
  ptyc_buf probe;            /* c32 [K][M][M], OVERWRITTEN: dC/d(conj P) */
  ptyc_buf object_intensity; /* float [M][M], added to: sum_b |O_b|^2 */
  ptyc_buf positions;        /* double [n][4], overwritten: dC/dy, dC/dx, curvatures
                                (ptyc_op_shift_position_gradient) */
} pt_farfield_grads;

/* The measured data of a run: entry b's pattern is number pattern_scan->order
 * [pattern_first + b] of `patterns` (resident patterns: the scan of the model itself;
 * streamed ones: a batch-local buffer, engines/common/pattern_feed.h). */
typedef struct pt_farfield_data {
  ptyc_loss loss;
  ptyc_buf patterns;           /* float [.][M][M] */
  ptyc_buf mask;               /* float [M][M] or {NULL} */
  const ptyc_scan *pattern_scan;
  int pattern_first;
} pt_farfield_data;

/* Device bytes pt_farfield_init allocates. */
size_t pt_farfield_plan_bytes(int m, int n_modes, int batch_max, ptyc_subpixel_shift shift);

/* Plans FFTs for minibatches of batch_max and, if with_smaller, batch_max - 1 entries;
 * other sizes (a rank's varying part of a minibatch) run the first images of the
 * largest plan (ptyc_fft_exec_count). `shift` picks how the probe is moved. */
ptyc_status pt_farfield_init(pt_farfield *f, ptyc_backend *be, int m, int n_modes,
                             int batch_max, int with_smaller, ptyc_subpixel_shift shift);
void pt_farfield_free(pt_farfield *f);

/* The forward model of entries [first, first + n) of scan->order (1 <= n <= batch_max),
 * the cost of each entry in f->cost, and the gradients that `grads` asks for (grads NULL
 * or all {NULL}: forward only). */
ptyc_status pt_farfield_run(pt_farfield *f, const ptyc_scan *scan, int first, int n,
                            ptyc_buf object, ptyc_buf probe, const pt_farfield_data *data,
                            const pt_farfield_grads *grads);

#endif
