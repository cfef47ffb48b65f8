/* The primitives of the far-field model: forward ops and their vector-Jacobian products.
 *
 * The VJPs, derived with the Wirtinger convention (grad z = dC/d(conj z)):
 *  - a linear map y = A x has grad x = A^H grad y. The unnormalised DFT F and its
 *    unnormalised inverse G = M^2 F^-1 are adjoint to each other: F^H = G, G^H = F.
 *  - an element-wise product y = a x has grad x = conj(a) grad y, grad a = conj(x) grad y.
 *    The shift S_b = scale * P^ * ramp_b is such a product in P^ (a = scale * ramp_b; the
 *    sum over the batch accumulates); the exit wave psi_b = p_b * O_b in both factors.
 *  - a real parameter t enters as dC/dt = 2 Re sum conj(grad y) dy/dt: for the shift
 *    ramp exp(-2 pi i (fu fy + fv fx) / M), dS/dfy = -2 pi i fu / M * S.
 *  - the cost sum l(I), I = sum_k |Psi_k|^2, has dI/d(conj Psi_k) = Psi_k, so
 *    grad Psi_k = l'(I) Psi_k.
 * Each of these is one backend op (include/ptyc/backend.h). */
#include "autodiff/primitives.h"

#include "pt_try.h"

/* ---- 2-D FFT, in place ---------------------------------------------------------------------- */

/* The record's transform of `data`: all planned images, or the first `count`. */
static ptyc_status fft_run(ptyc_backend *be, const pt_record *r, ptyc_buf data, int inverse) {
  if (r->u.fft.count > 0)
    return ptyc_fft_exec_count(be, r->u.fft.plan, data, r->u.fft.count, inverse);
  return ptyc_fft_exec(be, r->u.fft.plan, data, inverse);
}

static ptyc_status fft_forward(const pt_record *r) {
  ptyc_backend *be = r->at.be;
  if (r->u.fft.in.ptr != NULL && r->u.fft.in.ptr != r->u.fft.data.ptr)
    PT_TRY(ptyc_buf_copy(be, r->u.fft.data, 0, r->u.fft.in, 0, r->u.fft.in.nbytes));
  return fft_run(be, r, r->u.fft.data, r->u.fft.inverse);
}

static ptyc_status fft_vjp(const pt_record *r) {
  /* y = F x: grad x = G grad y; y = G x: grad x = F grad y. */
  return fft_run(r->at.be, r, r->u.fft.grad, !r->u.fft.inverse);
}

const pt_primitive pt_prim_fft = {"fft", fft_forward, fft_vjp};

/* ---- sub-pixel shift ---------------------------------------------------------------------- */

static ptyc_status shift_forward(const pt_record *r) {
  return ptyc_op_shift_spectrum(r->at.be, r->at.scan, r->at.first, r->at.n, r->u.shift.spectrum,
                                r->u.shift.scale, r->u.shift.out);
}

static ptyc_status shift_vjp(const pt_record *r) {
  const pt_batch_ref *at = &r->at;
  if (r->u.shift.grad_spectrum.ptr != NULL) /* grad P^ += scale sum_b conj(ramp_b) grad S_b */
    PT_TRY(ptyc_op_unshift_accumulate(at->be, at->scan, at->first, at->n, r->u.shift.grad_out,
                                      r->u.shift.scale, r->u.shift.grad_spectrum));
  if (r->u.shift.grad_positions.ptr != NULL)
    PT_TRY(ptyc_op_shift_position_gradient(at->be, at->scan, at->first, at->n,
                                           r->u.shift.spectrum, r->u.shift.scale,
                                           r->u.shift.grad_out, r->u.shift.grad_positions));
  return PTYC_OK;
}

const pt_primitive pt_prim_shift = {"shift", shift_forward, shift_vjp};

/* ---- exit waves ---------------------------------------------------------------------------- */

static ptyc_status exit_waves_forward(const pt_record *r) {
  return ptyc_op_exit_waves(r->at.be, r->at.scan, r->at.first, r->at.n, r->u.exit_waves.object,
                            r->u.exit_waves.probes, r->u.exit_waves.psi);
}

static ptyc_status exit_waves_vjp(const pt_record *r) {
  const pt_batch_ref *at = &r->at;
  return ptyc_op_exit_waves_vjp(at->be, at->scan, at->first, at->n, r->u.exit_waves.object,
                                r->u.exit_waves.probes, r->u.exit_waves.grad_psi,
                                r->u.exit_waves.grad_object, r->u.exit_waves.illumination,
                                r->u.exit_waves.grad_probes, r->u.exit_waves.object_intensity);
}

const pt_primitive pt_prim_exit_waves = {"exit_waves", exit_waves_forward, exit_waves_vjp};

/* ---- shift by interpolation and exit waves, fused ----------------------------------------------
 * psi_b = (S_b P) O_b with S_b the separable filter of the fraction f_b (interp_math.h),
 * linear in P: grad P = sum_b S_b^T conj(O_b) grad psi_b; grad O_b and grad p_b as for
 * the exit waves; dC/df_b = 2 Re sum conj(grad psi_b) O_b (dS_b/df P), dS/df being the
 * filter with the weights' derivative along that axis. */

static ptyc_status interp_exit_waves_forward(const pt_record *r) {
  return ptyc_op_interp_shift(r->at.be, r->at.scan, r->at.first, r->at.n, r->u.interp.probe,
                              r->u.interp.object, r->u.interp.probes, r->u.interp.psi);
}

static ptyc_status interp_exit_waves_vjp(const pt_record *r) {
  const pt_batch_ref *at = &r->at;
  const int probe_wanted = r->u.interp.grad_probe.ptr != NULL;
  /* the probe's VJP reads the object patches anyway: it adds their intensity */
  ptyc_buf intensity_here = probe_wanted ? (ptyc_buf){0} : r->u.interp.object_intensity;
  if (r->u.interp.grad_object.ptr != NULL || r->u.interp.illumination.ptr != NULL ||
      intensity_here.ptr != NULL)
    PT_TRY(ptyc_op_exit_waves_vjp(at->be, at->scan, at->first, at->n, r->u.interp.object,
                                  r->u.interp.probes, r->u.interp.grad_psi,
                                  r->u.interp.grad_object, r->u.interp.illumination,
                                  (ptyc_buf){0}, intensity_here));
  if (probe_wanted)
    PT_TRY(ptyc_op_interp_unshift_accumulate(at->be, at->scan, at->first, at->n,
                                             r->u.interp.object, r->u.interp.grad_psi,
                                             r->u.interp.grad_probe,
                                             r->u.interp.object_intensity));
  if (r->u.interp.grad_positions.ptr != NULL)
    PT_TRY(ptyc_op_interp_position_gradient(at->be, at->scan, at->first, at->n,
                                            r->u.interp.probe, r->u.interp.object,
                                            r->u.interp.grad_psi, r->u.interp.grad_positions));
  return PTYC_OK;
}

const pt_primitive pt_prim_interp_exit_waves = {"interp_exit_waves", interp_exit_waves_forward,
                                                interp_exit_waves_vjp};

/* ---- squared modulus summed over modes, and the cost ------------------------------------------ */

static ptyc_status loss_forward(const pt_record *r) {
  return ptyc_op_loss_gradient(r->at.be, r->at.scan, r->at.first, r->at.n, r->u.loss.loss,
                               r->u.loss.patterns, r->u.loss.mask, r->u.loss.waves,
                               r->u.loss.cost);
}

static ptyc_status loss_vjp(const pt_record *r) {
  (void)r; /* done by the forward op: the seed of the backward pass is dC/dC = 1 */
  return PTYC_OK;
}

const pt_primitive pt_prim_loss = {"loss", loss_forward, loss_vjp};
