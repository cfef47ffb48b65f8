/* Forward-model ops: sub-pixel shifts in Fourier space (and their adjoint), exit waves,
 * and the object / probe gradient terms.
 *
 * Launch shape of the per-pixel kernels: grid.x covers the M*M pixels of one image
 * (thread p = pixel p, so every warp reads and writes 32 consecutive complex values),
 * grid.y covers batch entries (or batch entry x mode), looping when there are more than
 * 65535. */
#include "backend/cuda/cuda_device_util.h"
#include "backend/fourier_math.h"

/* Batch entries per thread of probe_gradient: the illumination sum over them stays in a
 * register and reaches den with one atomic add. */
#define PROBE_GRADIENT_CHUNK 8

/* ---- sub-pixel ramps ----------------------------------------------------------------------
 * The ramp of entry b is separable: ramp(u, v) = ey[u] * ex[v], stored as
 * ramps[b][0..M) = ey and ramps[b][M..2M) = ex, each value made by pt_shift_phasor
 * exactly as the CPU makes it. 2*M*n double-precision sin/cos instead of M*M*n. */

__global__ void shift_ramps_kernel(pt_cuda_batch batch, double sign,
                                   ptyc_c32 *__restrict__ ramps) {
  const int m = batch.m;
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= 2 * m) return;
  for (int b = blockIdx.y; b < batch.n; b += gridDim.y) {
    pt_patch p = batch_patch(batch, b);
    ptyc_c32 r = i < m ? pt_shift_phasor(i, 0, m, p.fy, 0.0, sign)
                       : pt_shift_phasor(0, i - m, m, 0.0, p.fx, sign);
    store_c32(ramps + (size_t)b * 2 * m + i, r);
  }
}

static cudaError_t launch_ramps(const pt_cuda_batch &batch, double sign, ptyc_c32 *ramps,
                                cudaStream_t stream) {
  dim3 grid(pt_blocks(2 * (size_t)batch.m, PT_THREADS), pt_grid_rows(batch.n));
  shift_ramps_kernel<<<grid, PT_THREADS, 0, stream>>>(batch, sign, ramps);
  return cudaGetLastError();
}

/* ---- shift_spectrum: out[b][k] = spectrum[k] * scale * ramp_b ---------------------------- */

__global__ void shift_spectrum_kernel(pt_cuda_batch batch, const ptyc_c32 *__restrict__ spectrum,
                                      float scale, const ptyc_c32 *__restrict__ ramps,
                                      ptyc_c32 *__restrict__ out) {
  const int m = batch.m, k_modes = batch.n_modes;
  const int pixels = m * m;
  int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= pixels) return;
  const int u = p / m, v = p - u * m;
  for (int bk = blockIdx.y; bk < batch.n * k_modes; bk += gridDim.y) {
    const int b = bk / k_modes, k = bk - b * k_modes;
    const ptyc_c32 *ey = ramps + (size_t)b * 2 * m, *ex = ey + m;
    ptyc_c32 row = pt_cscale(ldg_c32(ey + u), scale);
    ptyc_c32 z = pt_cmul(ldg_c32(spectrum + (size_t)k * pixels + p), pt_cmul(row, ldg_c32(ex + v)));
    store_c32(out + (size_t)bk * pixels + p, z);
  }
}

extern "C" cudaError_t pt_cuda_launch_shift_spectrum(pt_cuda_batch batch,
                                                     const ptyc_c32 *spectrum, float scale,
                                                     ptyc_c32 *out, ptyc_c32 *ramps,
                                                     cudaStream_t stream) {
  cudaError_t err = launch_ramps(batch, -1.0, ramps, stream);
  if (err != cudaSuccess) return err;
  dim3 grid(pt_blocks((size_t)batch.m * batch.m, PT_THREADS),
            pt_grid_rows((size_t)batch.n * batch.n_modes));
  shift_spectrum_kernel<<<grid, PT_THREADS, 0, stream>>>(batch, spectrum, scale, ramps, out);
  return cudaGetLastError();
}

/* ---- unshift_accumulate: acc[k] += scale * sum_b spectra[b][k] * conj-ramp_b ---------------
 * One thread per (mode, pixel) sums over the batch in double, as the CPU does, so no
 * atomics are needed and the result does not depend on scheduling. */

__global__ void unshift_accumulate_kernel(pt_cuda_batch batch,
                                          const ptyc_c32 *__restrict__ spectra, float scale,
                                          const ptyc_c32 *__restrict__ ramps,
                                          ptyc_c32 *__restrict__ acc) {
  const int m = batch.m, k_modes = batch.n_modes;
  const int pixels = m * m;
  const int k = blockIdx.y;
  int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= pixels) return;
  const int u = p / m, v = p - u * m;
  const size_t stride = (size_t)k_modes * pixels; /* from one batch entry to the next */
  const ptyc_c32 *src = spectra + (size_t)k * pixels + p;
  double re = 0.0, im = 0.0;
#pragma unroll 4
  for (int b = 0; b < batch.n; b++) {
    const ptyc_c32 *ey = ramps + (size_t)b * 2 * m, *ex = ey + m;
    ptyc_c32 z = pt_cmul(ldg_c32(src + b * stride), pt_cmul(ldg_c32(ey + u), ldg_c32(ex + v)));
    re += z.re;
    im += z.im;
  }
  ptyc_c32 *a = acc + (size_t)k * pixels + p;
  ptyc_c32 old = load_c32(a);
  store_c32(a, pt_c32(old.re + (float)(scale * re), old.im + (float)(scale * im)));
}

extern "C" cudaError_t pt_cuda_launch_unshift_accumulate(pt_cuda_batch batch,
                                                         const ptyc_c32 *spectra, float scale,
                                                         ptyc_c32 *acc, ptyc_c32 *ramps,
                                                         cudaStream_t stream) {
  cudaError_t err = launch_ramps(batch, +1.0, ramps, stream);
  if (err != cudaSuccess) return err;
  dim3 grid(pt_blocks((size_t)batch.m * batch.m, PT_THREADS), (unsigned)batch.n_modes);
  unshift_accumulate_kernel<<<grid, PT_THREADS, 0, stream>>>(batch, spectra, scale, ramps, acc);
  return cudaGetLastError();
}

/* ---- exit_waves: psi[b][k] = probes[b][k] * O_b ------------------------------------------- */

__global__ void exit_waves_kernel(pt_cuda_batch batch, const ptyc_c32 *__restrict__ object,
                                  const ptyc_c32 *__restrict__ probes,
                                  ptyc_c32 *__restrict__ psi) {
  const int m = batch.m, k_modes = batch.n_modes;
  const int pixels = m * m;
  int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= pixels) return;
  const int y = p / m, x = p - y * m;
  for (int b = blockIdx.y; b < batch.n; b += gridDim.y) {
    pt_patch patch = batch_patch(batch, b);
    ptyc_c32 o = ldg_c32(object + object_index(patch, batch.obj_w, y, x));
    size_t base = (size_t)b * k_modes * pixels + p;
    for (int k = 0; k < k_modes; k++)
      store_c32(psi + base + (size_t)k * pixels, pt_cmul(ldg_c32(probes + base + (size_t)k * pixels), o));
  }
}

extern "C" cudaError_t pt_cuda_launch_exit_waves(pt_cuda_batch batch, const ptyc_c32 *object,
                                                 const ptyc_c32 *probes, ptyc_c32 *psi,
                                                 cudaStream_t stream) {
  dim3 grid(pt_blocks((size_t)batch.m * batch.m, PT_THREADS), pt_grid_rows(batch.n));
  exit_waves_kernel<<<grid, PT_THREADS, 0, stream>>>(batch, object, probes, psi);
  return cudaGetLastError();
}

/* ---- object_gradient -----------------------------------------------------------------------
 * One thread per (entry, pixel) sums its modes in double (as the CPU), then adds into the
 * object with float atomics: patches of one batch overlap, so two entries may hit the
 * same object pixel at once. */

__global__ void object_gradient_kernel(pt_cuda_batch batch, const ptyc_c32 *__restrict__ probes,
                                       const ptyc_c32 *__restrict__ chi,
                                       const float *__restrict__ weights,
                                       ptyc_c32 *__restrict__ num, float *__restrict__ den) {
  const int m = batch.m, k_modes = batch.n_modes;
  const int pixels = m * m;
  int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= pixels) return;
  const int y = p / m, x = p - y * m;
  for (int b = blockIdx.y; b < batch.n; b += gridDim.y) {
    pt_patch patch = batch_patch(batch, b);
    float wb = weights ? __ldg(weights + b) : 1.f;
    double re = 0.0, im = 0.0, illum = 0.0;
    size_t base = (size_t)b * k_modes * pixels + p;
    for (int k = 0; k < k_modes; k++) {
      ptyc_c32 pr = ldg_c32(probes + base + (size_t)k * pixels);
      ptyc_c32 z = pt_cmulc(pr, ldg_c32(chi + base + (size_t)k * pixels));
      re += z.re;
      im += z.im;
      illum += pt_cabs2(pr);
    }
    size_t o = object_index(patch, batch.obj_w, y, x);
    atomic_add_c32(num + o, (float)(wb * re), (float)(wb * im));
    if (den) atomicAdd(den + o, (float)illum);
  }
}

extern "C" cudaError_t pt_cuda_launch_object_gradient(pt_cuda_batch batch,
                                                      const ptyc_c32 *probes,
                                                      const ptyc_c32 *chi, const float *weights,
                                                      ptyc_c32 *num, float *den,
                                                      cudaStream_t stream) {
  dim3 grid(pt_blocks((size_t)batch.m * batch.m, PT_THREADS), pt_grid_rows(batch.n));
  object_gradient_kernel<<<grid, PT_THREADS, 0, stream>>>(batch, probes, chi, weights, num, den);
  return cudaGetLastError();
}

/* ---- probe_gradient -------------------------------------------------------------------------
 * g[b][k] = conj(O_b) chi[b][k]; den[p] += sum_b |O_b[p]|^2. A thread takes one pixel of
 * PROBE_GRADIENT_CHUNK consecutive entries: it reads each O_b[p] once for the K modes
 * and the illumination, and adds its chunk's illumination (summed in double) to den
 * with one atomic. */

__global__ void probe_gradient_kernel(pt_cuda_batch batch, const ptyc_c32 *__restrict__ object,
                                      const ptyc_c32 *__restrict__ chi,
                                      ptyc_c32 *__restrict__ g, float *__restrict__ den) {
  const int m = batch.m, k_modes = batch.n_modes;
  const int pixels = m * m;
  int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= pixels) return;
  const int y = p / m, x = p - y * m;
  const int n_chunks = (batch.n + PROBE_GRADIENT_CHUNK - 1) / PROBE_GRADIENT_CHUNK;
  for (int chunk = blockIdx.y; chunk < n_chunks; chunk += gridDim.y) {
    int b_end = (chunk + 1) * PROBE_GRADIENT_CHUNK;
    if (b_end > batch.n) b_end = batch.n;
    double illum = 0.0;
    for (int b = chunk * PROBE_GRADIENT_CHUNK; b < b_end; b++) {
      pt_patch patch = batch_patch(batch, b);
      ptyc_c32 o = ldg_c32(object + object_index(patch, batch.obj_w, y, x));
      size_t base = (size_t)b * k_modes * pixels + p;
      for (int k = 0; k < k_modes; k++)
        store_c32(g + base + (size_t)k * pixels, pt_cmulc(o, ldg_c32(chi + base + (size_t)k * pixels)));
      illum += pt_cabs2(o);
    }
    if (den) atomicAdd(den + p, (float)illum);
  }
}

extern "C" cudaError_t pt_cuda_launch_probe_gradient(pt_cuda_batch batch,
                                                     const ptyc_c32 *object,
                                                     const ptyc_c32 *chi, ptyc_c32 *g,
                                                     float *den, cudaStream_t stream) {
  size_t n_chunks = ((size_t)batch.n + PROBE_GRADIENT_CHUNK - 1) / PROBE_GRADIENT_CHUNK;
  dim3 grid(pt_blocks((size_t)batch.m * batch.m, PT_THREADS), pt_grid_rows(n_chunks));
  probe_gradient_kernel<<<grid, PT_THREADS, 0, stream>>>(batch, object, chi, g, den);
  return cudaGetLastError();
}
