/* Quality figures of a reconstruction against ground truth (`ptyc compare`). */
#ifndef PTYC_COMPARE_H
#define PTYC_COMPARE_H

#include "ptyc/status.h"
#include "ptyc/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One object on its grid with the probe positions on that grid. */
typedef struct ptyc_compare_object {
  const ptyc_c32 *object;      /* [h][w] */
  int h, w;
  const double *positions_px;  /* [n][2] (y, x) top-left */
  int n_positions;
} ptyc_compare_object;

/* Object NRMSE = ||c e^{i g.r} O_rec - O_true|| / ||O_true|| over the illuminated region,
 * minimised over the complex scale c and the linear phase ramp g. The two grids are
 * aligned through their positions (mean offset). The illuminated region: pixels where
 * the sum over positions of |probe|^2 (the truth probe, all modes, [n_modes][m][m]) is at
 * least 10 % of its maximum. */
ptyc_status ptyc_object_nrmse(const ptyc_compare_object *recon, const ptyc_compare_object *truth,
                              const ptyc_c32 *probe, int n_modes, int m, double *nrmse);

/* What ptyc_object_compare found besides the NRMSE. */
typedef struct ptyc_compare_result {
  double nrmse;
  long n_pixels;             /* pixels of the illuminated region */
  int offset_y, offset_x;    /* recon pixel = truth pixel + offset */
  double ramp_y, ramp_x;     /* g (radians per pixel), about the region's centroid */
  ptyc_c64 scale;            /* c */
} ptyc_compare_result;

/* ptyc_object_nrmse with the details (`ptyc compare` prints the pixel count). */
ptyc_status ptyc_object_compare(const ptyc_compare_object *recon, const ptyc_compare_object *truth,
                                const ptyc_c32 *probe, int n_modes, int m,
                                ptyc_compare_result *result);

#ifdef __cplusplus
}
#endif
#endif
