/* The differentiable primitives of the far-field model (tape.h describes a primitive
 * and the buffers of each record). Each is a forward backend op and its VJP. */
#ifndef PT_AD_PRIMITIVES_H
#define PT_AD_PRIMITIVES_H

#include "autodiff/tape.h"

extern const pt_primitive pt_prim_fft;        /* 2-D FFT, forward or inverse, in place */
extern const pt_primitive pt_prim_shift;      /* sub-pixel shift of the probe modes */
extern const pt_primitive pt_prim_exit_waves; /* probe modes times the object patch */
extern const pt_primitive pt_prim_interp_exit_waves; /* shift by interpolation, then exit waves */
extern const pt_primitive pt_prim_loss;       /* |.|^2 summed over modes, then the cost */

#endif
