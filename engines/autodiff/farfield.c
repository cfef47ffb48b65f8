/* The far-field model of a minibatch on a tape (see farfield.h). */
#include "autodiff/farfield.h"

#include <string.h>

#include "autodiff/primitives.h"
#include "pt_try.h"

static size_t modes_bytes(int m, int n_modes) {
  return (size_t)n_modes * m * m * sizeof(ptyc_c32);
}

size_t pt_farfield_plan_bytes(int m, int n_modes, int batch_max, ptyc_subpixel_shift shift) {
  size_t spectrum = shift == PTYC_SHIFT_FOURIER ? 1 : 0;
  return modes_bytes(m, n_modes) * (spectrum + 2 * (size_t)batch_max) +
         (size_t)batch_max * sizeof(double);
}

void pt_farfield_free(pt_farfield *f) {
  if (f == NULL || f->be == NULL) return;
  ptyc_fft_free(f->be, f->plan_modes);
  ptyc_fft_free(f->be, f->plan_big);
  ptyc_fft_free(f->be, f->plan_small);
  ptyc_buf_free(f->be, &f->spectrum);
  ptyc_buf_free(f->be, &f->probes);
  ptyc_buf_free(f->be, &f->waves);
  ptyc_buf_free(f->be, &f->cost);
  memset(f, 0, sizeof *f);
}

ptyc_status pt_farfield_init(pt_farfield *f, ptyc_backend *be, int m, int n_modes,
                             int batch_max, int with_smaller, ptyc_subpixel_shift shift) {
  memset(f, 0, sizeof *f);
  f->be = be;
  f->m = m;
  f->n_modes = n_modes;
  f->batch_max = batch_max;
  f->shift = shift;
  ptyc_status st = PTYC_OK;
  size_t modes = modes_bytes(m, n_modes);
  PT_CHECK(ptyc_fft_plan(be, m, n_modes * batch_max, &f->plan_big));
  if (with_smaller && batch_max > 1)
    PT_CHECK(ptyc_fft_plan(be, m, n_modes * (batch_max - 1), &f->plan_small));
  if (shift == PTYC_SHIFT_FOURIER) {
    PT_CHECK(ptyc_fft_plan(be, m, n_modes, &f->plan_modes));
    PT_CHECK(ptyc_buf_alloc(be, modes, &f->spectrum));
  }
  PT_CHECK(ptyc_buf_alloc(be, modes * batch_max, &f->probes));
  PT_CHECK(ptyc_buf_alloc(be, modes * batch_max, &f->waves));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(double) * batch_max, &f->cost));
  return PTYC_OK;
fail:
  pt_farfield_free(f);
  return st;
}

/* The tape's end for both shifts: Psi = F psi, the cost (and grad Psi in place), then
 * the backward pass if one is wanted. */
static ptyc_status far_field_and_loss(pt_farfield *f, pt_batch_ref at, ptyc_fft *plan, int images,
                                      ptyc_buf waves, int backward, const pt_farfield_data *data,
                                      ptyc_buf cost) {
  pt_tape *tape = &f->tape;
  pt_record r = {.prim = &pt_prim_fft, .at = at, .backward = backward};
  r.u.fft.plan = plan; /* Psi = F psi */
  r.u.fft.count = images;
  r.u.fft.inverse = 0;
  r.u.fft.data = waves;
  r.u.fft.grad = waves;
  PT_TRY(pt_tape_forward(tape, &r));

  /* C, and grad Psi in place; the patterns are found through the data's own scan */
  pt_batch_ref data_at = {f->be, data->pattern_scan, data->pattern_first, at.n};
  r = (pt_record){.prim = &pt_prim_loss, .at = data_at, .backward = 0};
  r.u.loss.loss = data->loss;
  r.u.loss.patterns = data->patterns;
  r.u.loss.mask = data->mask;
  r.u.loss.waves = waves;
  r.u.loss.cost = cost;
  PT_TRY(pt_tape_forward(tape, &r));

  return backward ? pt_tape_backward(tape) : PTYC_OK;
}

ptyc_status pt_farfield_run(pt_farfield *f, const ptyc_scan *scan, int first, int n,
                            ptyc_buf object, ptyc_buf probe, const pt_farfield_data *data,
                            const pt_farfield_grads *grads) {
  if (n < 1 || n > f->batch_max)
    return ptyc_fail(PTYC_E_ARG, "pt_farfield_run: a minibatch of %d entries (planned: 1 to %d)",
                     n, f->batch_max);
  /* The batch's own plan where there is one, else the first n K images of the largest. */
  ptyc_fft *plan = f->plan_big;
  int images = 0;
  if (n == f->batch_max - 1 && f->plan_small != NULL)
    plan = f->plan_small;
  else if (n < f->batch_max)
    images = n * f->n_modes;
  pt_farfield_grads none = {.object = {0}};
  if (grads == NULL) grads = &none;
  const int want_object = grads->object.ptr != NULL || grads->illumination.ptr != NULL;
  const int want_probe = grads->probe.ptr != NULL;
  const int want_positions = grads->positions.ptr != NULL;
  const int want_shifted = want_probe || want_positions || grads->object_intensity.ptr != NULL;
  const int backward = want_object || want_shifted;

  /* The batch's buffers: `probes` and `waves` as views of n entries. */
  size_t batch_bytes = modes_bytes(f->m, f->n_modes) * n;
  ptyc_buf probes = {f->probes.ptr, batch_bytes}, waves = {f->waves.ptr, batch_bytes};
  ptyc_buf cost = {f->cost.ptr, sizeof(double) * n};
  pt_batch_ref at = {f->be, scan, first, n};
  pt_tape *tape = &f->tape;
  pt_tape_clear(tape);
  if (want_probe) PT_TRY(ptyc_buf_zero(f->be, grads->probe, 0, grads->probe.nbytes));

  pt_record r;
  if (f->shift == PTYC_SHIFT_INTERPOLATE) {
    r = (pt_record){.prim = &pt_prim_interp_exit_waves, .at = at, .backward = backward};
    r.u.interp.probe = probe; /* p = S P, psi = p O */
    r.u.interp.object = object;
    r.u.interp.probes = probes;
    r.u.interp.psi = waves;
    r.u.interp.grad_psi = waves;
    r.u.interp.grad_object = grads->object;
    r.u.interp.illumination = grads->illumination;
    r.u.interp.grad_probe = grads->probe;
    r.u.interp.object_intensity = grads->object_intensity;
    r.u.interp.grad_positions = grads->positions;
    PT_TRY(pt_tape_forward(tape, &r));
    return far_field_and_loss(f, at, plan, images, waves, backward, data, cost);
  }

  r = (pt_record){.prim = &pt_prim_fft, .at = at, .backward = want_probe};
  r.u.fft.plan = f->plan_modes; /* P^ = F P */
  r.u.fft.inverse = 0;
  r.u.fft.in = probe;
  r.u.fft.data = f->spectrum;
  r.u.fft.grad = grads->probe;
  PT_TRY(pt_tape_forward(tape, &r));

  r = (pt_record){.prim = &pt_prim_shift, .at = at, .backward = want_probe || want_positions};
  r.u.shift.scale = 1.f / (float)(f->m * f->m); /* S = P^ ramp / M^2 */
  r.u.shift.spectrum = f->spectrum;
  r.u.shift.out = probes;
  r.u.shift.grad_out = probes;
  r.u.shift.grad_spectrum = grads->probe;
  r.u.shift.grad_positions = grads->positions;
  PT_TRY(pt_tape_forward(tape, &r));

  r = (pt_record){.prim = &pt_prim_fft, .at = at, .backward = want_probe || want_positions};
  r.u.fft.plan = plan; /* p = G S: the shifted probes */
  r.u.fft.count = images;
  r.u.fft.inverse = 1;
  r.u.fft.data = probes;
  r.u.fft.grad = probes;
  PT_TRY(pt_tape_forward(tape, &r));

  r = (pt_record){.prim = &pt_prim_exit_waves, .at = at, .backward = backward};
  r.u.exit_waves.object = object; /* psi = p O */
  r.u.exit_waves.probes = probes;
  r.u.exit_waves.psi = waves;
  r.u.exit_waves.grad_psi = waves;
  r.u.exit_waves.grad_object = grads->object;
  r.u.exit_waves.illumination = grads->illumination;
  r.u.exit_waves.grad_probes = (want_probe || want_positions) ? probes : (ptyc_buf){0};
  r.u.exit_waves.object_intensity = grads->object_intensity;
  PT_TRY(pt_tape_forward(tape, &r));

  return far_field_and_loss(f, at, plan, images, waves, backward, data, cost);
}
