/* The optimisable parameters of the autodiff engine (see optimizers.h). */
#include "autodiff/optimizers.h"

#include <string.h>

#include "pt_try.h"

/* Default steps, [parameter][rule] (SGD, Adam, RMSprop), for normalised gradients:
 *  object, probe: SGD 1 would be the ePIE step. Updating object and probe together
 *    doubles the correction of the residual they share (normalised curvature up to 2),
 *    and Nesterov momentum 0.9 is stable for step * curvature < 1.36: hence 0.5, which
 *    converged for random, compact and single minibatches of 8 to 144 positions on the
 *    small preset. Adam and RMSprop change each complex value by about `step` per
 *    update (the object's modulus is ~1); RMSprop has no warm-up correction, so its
 *    first steps are larger and its default smaller.
 *  positions: for SGD a fraction of the Gauss-Newton step; for Adam and RMSprop about
 *    the pixels moved per update. From positions perturbed by up to 1.5 px (small
 *    preset, from iteration 5), SGD 0.5 and Adam 0.05 both bring the rms error from 1.2
 *    to 0.25 px in 35 iterations; on exact positions SGD drifts least (0.06 px). */
static const double default_steps[PT_PARAM_COUNT][3] = {
    {0.5, 0.1, 0.02},    /* object */
    {0.5, 0.05, 0.02},   /* probe */
    {0.5, 0.05, 0.02},   /* positions */
};

double pt_default_step(pt_param_kind kind, ptyc_optimizer rule) {
  if (kind < 0 || kind >= PT_PARAM_COUNT || rule < 0 || rule > PTYC_OPTIMIZER_RMSPROP) return 0.0;
  return default_steps[kind][rule];
}

const char *pt_optimizer_name(ptyc_optimizer rule) {
  switch (rule) {
  case PTYC_OPTIMIZER_SGD: return "sgd";
  case PTYC_OPTIMIZER_ADAM: return "adam";
  case PTYC_OPTIMIZER_RMSPROP: return "rmsprop";
  default: return "default";
  }
}

ptyc_status pt_param_optimizer_init(pt_param_optimizer *o, ptyc_backend *be, pt_param_kind kind,
                                    int enabled, const ptyc_autodiff_options *ad,
                                    size_t state_nbytes) {
  memset(o, 0, sizeof *o);
  const ptyc_autodiff_param_options *po =
      kind == PT_PARAM_OBJECT ? &ad->object : (kind == PT_PARAM_PROBE ? &ad->probe : &ad->positions);
  ptyc_optimizer rule = po->optimizer == PTYC_OPTIMIZER_DEFAULT ? ad->optimizer : po->optimizer;
  o->kind = kind;
  o->enabled = enabled;
  o->start = po->start;
  o->stop = po->stop;
  o->params = (ptyc_optim_params){
      .kind = rule,
      .step = po->step > 0.0 ? po->step : pt_default_step(kind, rule),
      .momentum = ad->momentum,
      .nesterov = ad->nesterov,
      .beta1 = ad->adam_beta1,
      .beta2 = ad->adam_beta2,
      .alpha = ad->rmsprop_alpha,
      .epsilon = ad->epsilon,
      .t = 0,
      .grad_scale = 1.0,
      .den_mix = 1.0,
  };
  if (!enabled) return PTYC_OK;
  PT_TRY(ptyc_buf_alloc(be, state_nbytes, &o->state));
  return ptyc_buf_zero(be, o->state, 0, state_nbytes);
}

void pt_param_optimizer_free(pt_param_optimizer *o, ptyc_backend *be) {
  if (o != NULL) ptyc_buf_free(be, &o->state);
}

int pt_param_active(const pt_param_optimizer *o, int iteration) {
  return o->enabled && iteration >= o->start && (o->stop <= 0 || iteration < o->stop);
}

ptyc_status pt_param_step(ptyc_backend *be, pt_param_optimizer *o, ptyc_buf param, ptyc_buf grad,
                          size_t count, ptyc_buf den, size_t den_count, double grad_scale,
                          double den_mix) {
  o->params.t++;
  o->params.grad_scale = grad_scale;
  o->params.den_mix = den_mix;
  return ptyc_op_optimizer_step(be, &o->params, param, grad, count, den, den_count, o->state);
}

ptyc_status pt_positions_step(ptyc_backend *be, pt_param_optimizer *o, const ptyc_scan *scan,
                              int first, int n, ptyc_buf grad, ptyc_buf den, size_t den_count,
                              double grad_scale, int t) {
  o->params.t = t;
  o->params.grad_scale = grad_scale;
  return ptyc_op_position_step(be, scan, first, n, &o->params, grad, den, den_count, o->state);
}

ptyc_status pt_param_restart(ptyc_backend *be, pt_param_optimizer *o) {
  if (!o->enabled || o->params.kind != PTYC_OPTIMIZER_SGD || o->params.momentum <= 0.0)
    return PTYC_OK;
  /* SGD keeps only m; the next update starts it again from the gradient. */
  o->params.t = 0;
  return ptyc_buf_zero(be, o->state, 0, o->state.nbytes);
}
