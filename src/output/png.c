/* PNG previews of a reconstruction (libpng): 8-bit grayscale images, written
 * atomically ("<path>.tmp.<pid>", then renamed over `path`).
 *
 * - ptyc_png_write_gray:   any float image, scaled between its own min and max;
 * - ptyc_png_write_object: phase and amplitude of the object, each scaled so;
 * - ptyc_png_write_probe:  probe-mode amplitudes side by side, each mode scaled to
 *                          its own maximum, 2-pixel white gaps between modes;
 * - ptyc_png_write_curve:  a 640 x 360 line plot of log10(values) (the cost curve). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt_try.h"
#include "ptyc/recon_io.h"

/* Largest image side accepted (libpng's own limit is 2^31 - 1). */
#define PNG_MAX_SIDE 100000
#define PROBE_GAP_PX 2
#define CURVE_W 640
#define CURVE_H 360
/* Plot area margins of the cost curve, pixels. */
#define CURVE_LEFT 40
#define CURVE_RIGHT 12
#define CURVE_TOP 12
#define CURVE_BOTTOM 28

enum { WHITE = 255, BLACK = 0, LIGHT_GRAY = 215 };

/* ---- writing ----------------------------------------------------------------------- */

/* libpng reports errors by calling this, which must not return: keep the message and
 * jump back to write_png's setjmp. */
typedef struct png_error_ctx {
  char message[200];
} png_error_ctx;

static void on_png_error(png_structp png, png_const_charp message) {
  png_error_ctx *ctx = (png_error_ctx *)png_get_error_ptr(png);
  snprintf(ctx->message, sizeof ctx->message, "%s", message);
  png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp message) {
  (void)png;
  (void)message;
}

/* Writes an 8-bit gray image of h rows of w pixels to path, atomically. */
static ptyc_status write_png(const char *path, const uint8_t *image, int h, int w) {
  char tmp[4096 + 64];
  int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  if (n < 0 || (size_t)n >= sizeof tmp)
    return ptyc_fail(PTYC_E_ARG, "%s: path too long", path);

  FILE *fp = fopen(tmp, "wb");
  if (!fp)
    return ptyc_fail(PTYC_E_IO, "%s: cannot create (%s): check that the output directory "
                                "exists and is writable",
                     tmp, strerror(errno));
  png_error_ctx ctx = {""};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_png_error,
                                            on_png_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info) {
    png_destroy_write_struct(png ? &png : NULL, NULL);
    fclose(fp);
    remove(tmp);
    return ptyc_fail(PTYC_E_NOMEM, "%s: out of memory creating the PNG writer", path);
  }
  /* png, info and fp are not modified after setjmp, so they are valid after a jump. */
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    fclose(fp);
    remove(tmp);
    return ptyc_fail(PTYC_E_IO, "%s: cannot write PNG (%s)", path, ctx.message);
  }
  png_init_io(png, fp);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < h; y++)
    png_write_row(png, image + (size_t)y * w);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);

  if (fclose(fp) != 0) {
    remove(tmp);
    return ptyc_fail(PTYC_E_IO, "%s: cannot write (%s)", path, strerror(errno));
  }
  if (rename(tmp, path) != 0) {
    int err = errno;
    remove(tmp);
    return ptyc_fail(PTYC_E_IO, "%s: cannot rename %s to it (%s)", path, tmp, strerror(err));
  }
  return PTYC_OK;
}

static ptyc_status check_size(const char *path, int h, int w) {
  if (!path)
    return ptyc_fail(PTYC_E_ARG, "PNG writer: NULL path");
  if (h <= 0 || w <= 0 || h > PNG_MAX_SIDE || w > PNG_MAX_SIDE)
    return ptyc_fail(PTYC_E_ARG, "%s: cannot write a %dx%d image", path, h, w);
  return PTYC_OK;
}

/* Scales values[0..count) linearly so that their finite minimum maps to 0 and their
 * maximum to 255; non-finite values and constant images give 0. */
static void scale_min_max(const float *values, size_t count, uint8_t *out, size_t stride_out,
                          size_t row_len) {
  float lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < count; i++) {
    if (!isfinite(values[i]))
      continue;
    lo = values[i] < lo ? values[i] : lo;
    hi = values[i] > hi ? values[i] : hi;
  }
  double range = hi > lo ? (double)hi - lo : 0.0;
  for (size_t i = 0; i < count; i++) {
    double v = values[i];
    double s = (range > 0.0 && isfinite(v)) ? (v - lo) / range : 0.0;
    out[(i / row_len) * stride_out + i % row_len] = (uint8_t)lrint(s * 255.0);
  }
}

ptyc_status ptyc_png_write_gray(const char *path, const float *pixels, int h, int w) {
  PT_TRY(check_size(path, h, w));
  if (!pixels)
    return ptyc_fail(PTYC_E_ARG, "%s: no pixels", path);
  size_t count = (size_t)h * w;
  uint8_t *image = malloc(count);
  if (!image)
    return ptyc_fail(PTYC_E_NOMEM, "%s: out of memory", path);
  scale_min_max(pixels, count, image, (size_t)w, (size_t)w);
  ptyc_status st = write_png(path, image, h, w);
  free(image);
  return st;
}

ptyc_status ptyc_png_write_object(const char *prefix, const ptyc_c32 *object, int h, int w) {
  ptyc_status st = PTYC_OK;
  float *values = NULL;
  char path[4096];
  PT_TRY(check_size(prefix, h, w));
  if (!object)
    return ptyc_fail(PTYC_E_ARG, "%s: no object", prefix);
  size_t count = (size_t)h * w;
  values = malloc(count * sizeof *values);
  if (!values)
    return ptyc_fail(PTYC_E_NOMEM, "%s: out of memory", prefix);

  for (size_t i = 0; i < count; i++)
    values[i] = atan2f(object[i].im, object[i].re);
  if ((size_t)snprintf(path, sizeof path, "%s_phase.png", prefix) >= sizeof path)
    PT_FAIL(PTYC_E_ARG, "%s: path too long", prefix);
  PT_CHECK(ptyc_png_write_gray(path, values, h, w));

  for (size_t i = 0; i < count; i++)
    values[i] = sqrtf(pt_cabs2(object[i]));
  snprintf(path, sizeof path, "%s_amplitude.png", prefix);
  PT_CHECK(ptyc_png_write_gray(path, values, h, w));
fail:
  free(values);
  return st;
}

ptyc_status ptyc_png_write_probe(const char *path, const ptyc_c32 *probe, int n_modes, int m) {
  if (n_modes <= 0 || m <= 0 || n_modes > PNG_MAX_SIDE / (m + PROBE_GAP_PX))
    return ptyc_fail(PTYC_E_ARG, "%s: cannot draw %d probe modes of %dx%d", path ? path : "",
                     n_modes, m, m);
  int w = n_modes * m + (n_modes - 1) * PROBE_GAP_PX;
  PT_TRY(check_size(path, m, w));
  if (!probe)
    return ptyc_fail(PTYC_E_ARG, "%s: no probe", path);
  uint8_t *image = malloc((size_t)m * w);
  if (!image)
    return ptyc_fail(PTYC_E_NOMEM, "%s: out of memory", path);
  memset(image, WHITE, (size_t)m * w);

  size_t plane = (size_t)m * m;
  for (int k = 0; k < n_modes; k++) {
    const ptyc_c32 *mode = probe + (size_t)k * plane;
    float peak = 0.0f;
    for (size_t i = 0; i < plane; i++) {
      float a = sqrtf(pt_cabs2(mode[i]));
      peak = isfinite(a) && a > peak ? a : peak;
    }
    uint8_t *tile = image + (size_t)k * (m + PROBE_GAP_PX);
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++) {
        float a = sqrtf(pt_cabs2(mode[(size_t)y * m + x]));
        double s = peak > 0.0f && isfinite(a) ? a / peak : 0.0;
        tile[(size_t)y * w + x] = (uint8_t)lrint(s * 255.0);
      }
  }
  ptyc_status st = write_png(path, image, m, w);
  free(image);
  return st;
}

/* ---- the cost curve ---------------------------------------------------------------- */

static void put_pixel(uint8_t *image, int x, int y, uint8_t value) {
  if (x >= 0 && x < CURVE_W && y >= 0 && y < CURVE_H)
    image[(size_t)y * CURVE_W + x] = value;
}

/* Bresenham's line from (x0, y0) to (x1, y1), both ends included. */
static void draw_line(uint8_t *image, int x0, int y0, int x1, int y1, uint8_t value) {
  int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
  int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    put_pixel(image, x0, y0, value);
    if (x0 == x1 && y0 == y1)
      break;
    int e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

ptyc_status ptyc_png_write_curve(const char *path, const double *values, int n) {
  if (!path)
    return ptyc_fail(PTYC_E_ARG, "PNG writer: NULL path");
  if (n < 0 || (n > 0 && !values))
    return ptyc_fail(PTYC_E_ARG, "%s: no values to plot", path);
  uint8_t *image = malloc((size_t)CURVE_W * CURVE_H);
  if (!image)
    return ptyc_fail(PTYC_E_NOMEM, "%s: out of memory", path);
  memset(image, WHITE, (size_t)CURVE_W * CURVE_H);

  const int x_left = CURVE_LEFT, x_right = CURVE_W - CURVE_RIGHT;
  const int y_top = CURVE_TOP, y_bottom = CURVE_H - CURVE_BOTTOM;

  /* Range of log10 over the positive finite values; others are not drawn (gaps). */
  double lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < n; i++)
    if (isfinite(values[i]) && values[i] > 0.0) {
      double l = log10(values[i]);
      lo = l < lo ? l : lo;
      hi = l > hi ? l : hi;
    }
  int have_points = lo <= hi;
  if (have_points && hi - lo < 1e-12) {
    lo -= 0.5;
    hi += 0.5;
  }

  /* Light grid lines at each power of ten, with a tick on the y axis. */
  if (have_points) {
    for (double d = ceil(lo); d <= floor(hi) && d - ceil(lo) < 64; d += 1.0) {
      int y = (int)lrint(y_bottom - (d - lo) / (hi - lo) * (y_bottom - y_top));
      draw_line(image, x_left + 1, y, x_right, y, LIGHT_GRAY);
      draw_line(image, x_left - 5, y, x_left, y, BLACK);
    }
  }
  /* Axes: y on the left, x at the bottom. */
  draw_line(image, x_left, y_top, x_left, y_bottom, BLACK);
  draw_line(image, x_left, y_bottom, x_right, y_bottom, BLACK);

  if (have_points) {
    int prev_x = 0, prev_y = 0, prev_ok = 0;
    for (int i = 0; i < n; i++) {
      int ok = isfinite(values[i]) && values[i] > 0.0;
      if (!ok) {
        prev_ok = 0;
        continue;
      }
      double t = n > 1 ? (double)i / (n - 1) : 0.5;
      int x = (int)lrint(x_left + t * (x_right - x_left));
      int y = (int)lrint(y_bottom - (log10(values[i]) - lo) / (hi - lo) * (y_bottom - y_top));
      int next_ok = i + 1 < n && isfinite(values[i + 1]) && values[i + 1] > 0.0;
      if (prev_ok)
        draw_line(image, prev_x, prev_y, x, y, BLACK);
      else if (!next_ok) /* an isolated point: a small square so that it shows */
        for (int d = -1; d <= 1; d++)
          draw_line(image, x - 1, y + d, x + 1, y + d, BLACK);
      prev_x = x;
      prev_y = y;
      prev_ok = 1;
    }
  }
  ptyc_status st = write_png(path, image, CURVE_H, CURVE_W);
  free(image);
  return st;
}
