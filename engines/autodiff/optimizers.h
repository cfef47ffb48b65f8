/* The optimisable parameters of the autodiff engine: each has its own rule (SGD with
 * (Nesterov) momentum, Adam or RMSprop), step size, iteration window and state on the
 * device; the update itself is one backend op (ptyc_op_optimizer_step or
 * ptyc_op_position_step).
 *
 * Steps are taken on normalised gradients (autodiff.c says how each is scaled): the
 * object's and probe's as in ePIE, so that SGD with step 1 and no momentum is the ePIE /
 * minibatch update; the positions' over a Gauss-Newton curvature. */
#ifndef PT_AD_OPTIMIZERS_H
#define PT_AD_OPTIMIZERS_H

#include "ptyc/backend.h"
#include "ptyc/options.h"

typedef enum pt_param_kind {
  PT_PARAM_OBJECT = 0,
  PT_PARAM_PROBE,
  PT_PARAM_POSITIONS,
  PT_PARAM_COUNT
} pt_param_kind;

typedef struct pt_param_optimizer {
  pt_param_kind kind;
  int enabled;              /* optimisable at all */
  int start, stop;          /* updated for iterations start <= it < stop (stop 0: no end) */
  ptyc_optim_params params; /* resolved rule and hyper-parameters; params.t counts updates */
  ptyc_buf state;           /* the rule's state on the device, zero at the start */
} pt_param_optimizer;

/* The default step of a rule for a parameter (used where the job gives 0). */
double pt_default_step(pt_param_kind kind, ptyc_optimizer rule);

/* Resolves the options of one parameter ("default" rule, 0 step) and allocates
 * state_nbytes of zeroed state (none if not enabled). */
ptyc_status pt_param_optimizer_init(pt_param_optimizer *o, ptyc_backend *be, pt_param_kind kind,
                                    int enabled, const ptyc_autodiff_options *ad,
                                    size_t state_nbytes);
void pt_param_optimizer_free(pt_param_optimizer *o, ptyc_backend *be);

/* Whether the parameter is updated in `iteration`. */
int pt_param_active(const pt_param_optimizer *o, int iteration);

/* One update of a complex parameter from its raw gradient: the normalised gradient is
 * grad_scale * grad / ((1 - mix) den + mix max(den)) (see ptyc_op_optimizer_step). */
ptyc_status pt_param_step(ptyc_backend *be, pt_param_optimizer *o, ptyc_buf param, ptyc_buf grad,
                          size_t count, ptyc_buf den, size_t den_count, double grad_scale,
                          double den_mix);

/* One update of the batch's positions (see ptyc_op_position_step); `t` is the number
 * of this update of each position (one per iteration). */
ptyc_status pt_positions_step(ptyc_backend *be, pt_param_optimizer *o, const ptyc_scan *scan,
                              int first, int n, ptyc_buf grad, ptyc_buf den, size_t den_count,
                              double grad_scale, int t);

/* Forgets the momentum of SGD (the state's running mean); other rules are left as
 * they are. */
ptyc_status pt_param_restart(ptyc_backend *be, pt_param_optimizer *o);

/* "sgd", "adam", "rmsprop". */
const char *pt_optimizer_name(ptyc_optimizer rule);

#endif
