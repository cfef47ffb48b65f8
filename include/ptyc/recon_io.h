/* Reconstruction results: recon.h5 (shared/FORMATS.md), PNG previews, log.jsonl. */
#ifndef PTYC_RECON_IO_H
#define PTYC_RECON_IO_H

#include <stdio.h>

#include "ptyc/status.h"
#include "ptyc/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptyc_recon {
  ptyc_c32 *object;          /* [H][W] */
  int obj_h, obj_w;
  ptyc_c32 *probe;           /* [K][M][M], strongest mode first */
  int n_modes, m;
  double *positions_px;      /* [N][2] (y, x) top-left on the grid of `object` */
  int n_positions;
  double *loss;              /* [n_iterations] */
  double *iteration_time_s;  /* [n_iterations] */
  int n_iterations;          /* iterations done so far */
  int iterations;            /* iterations configured */
  char engine[32];
  char *config_text;         /* resolved job (libconfig text) */
  double object_pixel_size_m; /* 0 if unknown */
  double wavelength_m;       /* the dataset's, 0 if unknown */
  double detector_distance_m; /* the dataset's, 0 if unknown */
} ptyc_recon;

/* Writes recon.h5 atomically (temporary file in the same directory, then rename). */
ptyc_status ptyc_recon_write(const char *path, const ptyc_recon *recon);

/* Reads a recon.h5; the caller frees with ptyc_recon_free. */
ptyc_status ptyc_recon_read(const char *path, ptyc_recon **out);
void ptyc_recon_free(ptyc_recon *recon);

/* A ptychodus product file (AdvancedPhotonSource/ptychodus, its HDF5 "product"
 * layout), written atomically, so that the result opens in the ptychodus GUI:
 *   root attributes  name, comments, detector_object_distance_m, probe_energy_eV,
 *                    probe_photon_count, exposure_time_s, mass_attenuation_m2_kg,
 *                    tomography_angle_deg (0 where ptyc does not know them)
 *   /probe_position_indexes (N,) int64, /probe_position_x_m, /probe_position_y_m (N,)
 *                    probe centres in metres, relative to the object's centre
 *   /probe           (K, M, M) complex64, attributes pixel_width_m, pixel_height_m
 *   /object          (H, W) complex64, attributes pixel_width_m, pixel_height_m,
 *                    center_x_m = center_y_m = 0
 *   /object_layer_spacing_m (0,) float64 (a single slice)
 *   /loss_epochs (I,) int64, /loss_values (I,) float64
 * plus the names older ptychodus releases read: /object_layer_distance_m, /costs.
 * Needs recon->object_pixel_size_m > 0; `name` (may be NULL) names the product. */
ptyc_status ptyc_ptychodus_write(const char *path, const ptyc_recon *recon, const char *name);

/* PNG previews, written atomically. Images are scaled to 8 bits between their own
 * minimum and maximum (phase: -pi..pi is NOT forced; the range is the data's). */
ptyc_status ptyc_png_write_gray(const char *path, const float *pixels, int h, int w);
/* Object phase and amplitude: <prefix>_phase.png, <prefix>_amplitude.png */
ptyc_status ptyc_png_write_object(const char *prefix, const ptyc_c32 *object, int h, int w);
/* Probe modes side by side (amplitude), one row: <path> */
ptyc_status ptyc_png_write_probe(const char *path, const ptyc_c32 *probe, int n_modes, int m);
/* Cost curve (log scale) as a simple line plot: <path> */
ptyc_status ptyc_png_write_curve(const char *path, const double *values, int n);

#ifdef __cplusplus
}
#endif
#endif
