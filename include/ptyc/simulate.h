/* Simulated far-field ptychography datasets with known truth (`ptyc simulate`). */
#ifndef PTYC_SIMULATE_H
#define PTYC_SIMULATE_H

#include <stdint.h>

#include "ptyc/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptyc_sim_params {
  int m;                 /* pattern / probe size M (pixels) */
  int n_positions;       /* number of scan positions (Fermat spiral) */
  int n_modes;           /* incoherent probe modes K */
  double photons;        /* mean total photons per pattern; <= 0 = no noise (the
                            noiseless patterns then hold 1e6 counts on average) */
  double overlap;        /* linear overlap of neighbouring probes, 0..1 (0.7) */
  double jitter_px;      /* sub-pixel jitter amplitude of positions (pixels) */
  double aperture_frac;  /* aperture diameter as a fraction of M in the focal plane */
  double defocus;        /* defocus phase curvature (radians at the aperture edge) */
  uint64_t seed;
  /* geometry written to the file */
  double wavelength_m, detector_distance_m, detector_pixel_size_m;
} ptyc_sim_params;

/* Fills `p` with preset "small" (64x64, ~150 positions, 2 modes), "medium" (256x256,
 * 4096 positions, 4 modes) or "large" (512x512, ~12k positions, 3 modes).
 * PTYC_E_ARG with the list of presets for an unknown name. */
ptyc_status ptyc_sim_preset(const char *name, ptyc_sim_params *p);

/* Simulates in memory: object (Siemens star plus smooth random amplitude and phase),
 * defocused-aperture probe with K orthogonal modes, Fermat-spiral scan with jitter,
 * Poisson noise; deterministic for a seed. The caller frees both results. */
ptyc_status ptyc_simulate(const ptyc_sim_params *p, ptyc_dataset **data, ptyc_truth **truth);

/* Simulates and writes a native file with /truth. */
ptyc_status ptyc_simulate_write(const ptyc_sim_params *p, const char *path);

#ifdef __cplusplus
}
#endif
#endif
