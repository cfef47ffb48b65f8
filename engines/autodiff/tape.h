/* The tape of reverse-mode differentiation: the primitives applied to one minibatch, in
 * order, so that their vector-Jacobian products (VJPs) can run in reverse.
 *
 * A primitive (primitives.h) is a forward op and its VJP, both backend ops, so the
 * same tape runs on every backend. A record is one application of a primitive: which
 * buffers it read and wrote and where the gradients go. The tape is a fixed array of
 * records filled again for every minibatch (no allocation); buffers are planned by the
 * model that records them (farfield.h).
 *
 * Gradients follow the Wirtinger convention: for the real cost C and a complex value z,
 * grad z = dC/d(conj z), so that dC = 2 Re(conj(grad z) dz). A VJP maps the gradient of
 * a primitive's output to the gradients of its inputs. Where a forward op works in place
 * (the FFTs), its VJP does too, on the gradient buffer. */
#ifndef PT_AD_TAPE_H
#define PT_AD_TAPE_H

#include "ptyc/backend.h"

typedef struct pt_record pt_record;

/* A differentiable primitive. forward() computes the record's outputs from its inputs;
 * vjp() computes (or adds to) the gradients of its inputs from the gradient of its
 * outputs. Adding a primitive: these two functions, a member of pt_record's union for
 * its buffers, and their tests (tests/grad/). */
typedef struct pt_primitive {
  const char *name;
  ptyc_status (*forward)(const pt_record *r);
  ptyc_status (*vjp)(const pt_record *r);
} pt_primitive;

/* What every record of a minibatch works on. */
typedef struct pt_batch_ref {
  ptyc_backend *be;
  const ptyc_scan *scan;
  int first, n; /* entries [first, first + n) of scan->order */
} pt_batch_ref;

/* One application of a primitive. Buffers named grad_* hold gradients (Wirtinger);
 * {NULL} where a gradient is not wanted. */
struct pt_record {
  const pt_primitive *prim;
  pt_batch_ref at;
  int backward; /* 0: the backward pass skips this record (no gradient flows through) */
  union {
    /* pt_prim_fft: data = F data (forward) or G data (inverse, unnormalised), in place,
     * on the images planned in `plan`, or only its first `count` when count > 0 (a
     * batch smaller than planned: ptyc_fft_exec_count); `in`, when given, is copied to
     * `data` first. VJP (F^H = G, G^H = F): grad = G grad (or F grad) in place; it is
     * then also the gradient of `in`. */
    struct {
      ptyc_fft *plan;
      int inverse;
      int count;
      ptyc_buf in, data, grad;
    } fft;
    /* pt_prim_shift: out[b][k] = scale * spectrum[k] * ramp(f_b) (ptyc_op_shift_spectrum).
     * VJP from grad_out = dC/d(conj out): grad_spectrum (K images) += its adjoint
     * (ptyc_op_unshift_accumulate), grad_positions (double [n][4]) = dC/dy, dC/dx and
     * the curvature terms (ptyc_op_shift_position_gradient); either may be {NULL}. */
    struct {
      float scale;
      ptyc_buf spectrum, out;
      ptyc_buf grad_out, grad_spectrum, grad_positions;
    } shift;
    /* pt_prim_exit_waves: psi[b][k] = probes[b][k] * O_b (ptyc_op_exit_waves).
     * VJP (ptyc_op_exit_waves_vjp): grad_object += sum_k conj(P) grad_psi (scattered),
     * grad_probes = conj(O_b) grad_psi (may be `probes`: overwritten), plus the
     * illumination sum |P|^2 and the object intensity sum |O_b|^2 that scale steps. */
    struct {
      ptyc_buf object, probes, psi;
      ptyc_buf grad_psi, grad_object, illumination, grad_probes, object_intensity;
    } exit_waves;
    /* pt_prim_interp_exit_waves: probes[b][k] = S_b probe[k], the shift by interpolation,
     * and psi[b][k] = probes[b][k] O_b, in one pass (ptyc_op_interp_shift). VJP from
     * grad_psi = dC/d(conj psi), each output {NULL} when not wanted:
     * grad_object += sum_k conj(probes) grad_psi, illumination += sum_k |probes|^2
     * (ptyc_op_exit_waves_vjp); grad_probe += sum_b S_b^T conj(O_b) grad_psi and
     * object_intensity += sum_b |O_b|^2 (ptyc_op_interp_unshift_accumulate);
     * grad_positions = dC/dy, dC/dx and the curvature terms
     * (ptyc_op_interp_position_gradient). */
    struct {
      ptyc_buf probe, object, probes, psi;
      ptyc_buf grad_psi, grad_object, illumination, grad_probe, object_intensity, grad_positions;
    } interp;
    /* pt_prim_loss: cost[b] = sum over pixels of l(sum_k |waves_k|^2, d)
     * (ptyc_op_loss_gradient). It ends the tape, so the gradient's seed is known
     * (dC/dC = 1): forward also replaces `waves` with dC/d(conj waves), and the VJP has
     * nothing left to do. */
    struct {
      ptyc_loss loss;
      ptyc_buf patterns, mask, waves, cost;
    } loss;
  } u;
};

#define PT_TAPE_CAPACITY 16

typedef struct pt_tape {
  pt_record records[PT_TAPE_CAPACITY];
  int count;
} pt_tape;

/* Forgets every record (the start of a minibatch). */
void pt_tape_clear(pt_tape *tape);
/* Runs r's forward op and appends r to the tape. */
ptyc_status pt_tape_forward(pt_tape *tape, const pt_record *r);
/* Runs the VJPs of the recorded primitives in reverse order, skipping records whose
 * `backward` is 0. */
ptyc_status pt_tape_backward(pt_tape *tape);

#endif
