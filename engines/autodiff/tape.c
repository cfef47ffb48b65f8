/* The tape: records in order, VJPs in reverse (see tape.h). */
#include "autodiff/tape.h"

#include "pt_try.h"

void pt_tape_clear(pt_tape *tape) { tape->count = 0; }

ptyc_status pt_tape_forward(pt_tape *tape, const pt_record *r) {
  if (tape->count == PT_TAPE_CAPACITY)
    return ptyc_fail(PTYC_E_ARG, "autodiff tape: more than %d primitives in one minibatch",
                     PT_TAPE_CAPACITY);
  PT_TRY(r->prim->forward(r));
  tape->records[tape->count++] = *r;
  return PTYC_OK;
}

ptyc_status pt_tape_backward(pt_tape *tape) {
  for (int i = tape->count - 1; i >= 0; i--) {
    const pt_record *r = &tape->records[i];
    if (r->backward) PT_TRY(r->prim->vjp(r));
  }
  return PTYC_OK;
}
