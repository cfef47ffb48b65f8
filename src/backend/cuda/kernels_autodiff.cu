/* Autodiff ops: cost and its gradient, the exit-wave and sub-pixel-shift VJPs, the
 * optimizer updates and the object regularisers. What each computes is in the
 * "autodiff" section of include/ptyc/backend.h; the CPU reference is
 * src/backend/cpu/cpu_autodiff_ops.c and the per-element math,
 * src/backend/autodiff_math.h, is shared with it.
 *
 * Per-position sums (cost, position gradient) follow kernels_fourier.cu: bpp =
 * pt_cuda_blocks_per_position(M) blocks share the pixels of one entry, each block writes
 * its double partial sum to scratch, and a small kernel adds the partials in order, so
 * results repeat bit for bit and nothing waits for the host. */
#include "backend/autodiff_math.h"
#include "backend/cuda/cuda_device_util.h"
#include "backend/fourier_math.h"

/* Batch entries per thread of exit_waves_vjp: the object intensity over them stays in a
 * register and reaches object_intensity with one atomic add. */
#define VJP_CHUNK 8
/* Blocks of the grid-stride element-wise kernels. */
#define AD_MAX_BLOCKS 8192

static unsigned elementwise_blocks(size_t count) {
  unsigned blocks = pt_blocks(count, PT_THREADS);
  return blocks > AD_MAX_BLOCKS ? AD_MAX_BLOCKS : (blocks == 0 ? 1 : blocks);
}

/* Pixel range [begin, end) of block blk among bpp blocks of an entry. */
__device__ __forceinline__ void pixel_range(int pixels, int bpp, int blk, int *begin, int *end) {
  int per_block = (pixels + bpp - 1) / bpp;
  *begin = blk * per_block;
  *end = min(pixels, *begin + per_block);
}

/* ---- loss_gradient ---------------------------------------------------------------------- */

template <int KMAX>
__global__ void loss_gradient_kernel(pt_cuda_batch batch, ptyc_loss loss,
                                     const float *__restrict__ patterns,
                                     const float *__restrict__ mask,
                                     ptyc_c32 *__restrict__ waves,
                                     double *__restrict__ cost_part, int bpp) {
  __shared__ double shared[32];
  const int k_modes = batch.n_modes, pixels = batch.m * batch.m;
  int begin, end;
  pixel_range(pixels, bpp, blockIdx.x, &begin, &end);
  for (int b = blockIdx.y; b < batch.n; b += gridDim.y) {
    const float *d = patterns + (size_t)__ldg(batch.order + batch.first + b) * pixels;
    ptyc_c32 *wb = waves + (size_t)b * k_modes * pixels;
    double cost[1] = {0.0};
    for (int p = begin + threadIdx.x; p < end; p += blockDim.x) {
      ptyc_c32 w[KMAX];
      float intensity = 0.f;
#pragma unroll
      for (int k = 0; k < KMAX; k++)
        if (k < k_modes) {
          w[k] = load_c32(wb + (size_t)k * pixels + p);
          intensity += pt_cabs2(w[k]);
        }
      float factor = 0.f;
      if (mask == nullptr || __ldg(mask + p) > 0.f) {
        float data = __ldg(d + p);
        cost[0] += pt_loss_value(loss, intensity, data);
        factor = pt_loss_derivative(loss, intensity, data);
      }
#pragma unroll
      for (int k = 0; k < KMAX; k++)
        if (k < k_modes) store_c32(wb + (size_t)k * pixels + p, pt_cscale(w[k], factor));
    }
    block_sum(cost, shared);
    if (threadIdx.x == 0) cost_part[(size_t)b * bpp + blockIdx.x] = cost[0];
  }
}

extern "C" cudaError_t pt_cuda_launch_loss_gradient(pt_cuda_batch batch, int loss,
                                                    const float *patterns, const float *mask,
                                                    ptyc_c32 *waves, double *cost,
                                                    double *scratch, cudaStream_t stream) {
  const int bpp = pt_cuda_blocks_per_position(batch.m);
  dim3 grid((unsigned)bpp, pt_grid_rows((size_t)batch.n));
  PT_DISPATCH_MODES(batch.n_modes, KMAX,
                    loss_gradient_kernel<KMAX><<<grid, PT_THREADS, 0, stream>>>(
                        batch, (ptyc_loss)loss, patterns, mask, waves, scratch, bpp));
  PT_LAUNCH_CHECK();
  return pt_launch_finish_entry_sums(scratch, bpp, batch.n, cost, stream);
}

/* ---- exit_waves_vjp --------------------------------------------------------------------
 * A thread takes one pixel of VJP_CHUNK consecutive entries. For each it reads O_b and,
 * per mode, the probe and grad_psi once: it forms the object terms (summed over modes in
 * double, then one atomic per entry: patches overlap) and writes conj(O_b) grad_psi.
 * `probes` and `grad_probes` may be one buffer: each element is read before it is
 * written, by the same thread, so neither pointer is __restrict__. */

__global__ void exit_waves_vjp_kernel(pt_cuda_batch batch, const ptyc_c32 *__restrict__ object,
                                      const ptyc_c32 *probes,
                                      const ptyc_c32 *__restrict__ grad_psi,
                                      ptyc_c32 *grad_object, float *illumination,
                                      ptyc_c32 *grad_probes, float *object_intensity) {
  const int m = batch.m, k_modes = batch.n_modes;
  const int pixels = m * m;
  int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= pixels) return;
  const int y = p / m, x = p - y * m;
  const int n_chunks = (batch.n + VJP_CHUNK - 1) / VJP_CHUNK;
  for (int chunk = blockIdx.y; chunk < n_chunks; chunk += gridDim.y) {
    int b_end = min((chunk + 1) * VJP_CHUNK, batch.n);
    double intensity = 0.0;
    for (int b = chunk * VJP_CHUNK; b < b_end; b++) {
      pt_patch patch = batch_patch(batch, b);
      size_t o_index = object_index(patch, batch.obj_w, y, x);
      ptyc_c32 o = ldg_c32(object + o_index);
      size_t base = (size_t)b * k_modes * pixels + p;
      double re = 0.0, im = 0.0, illum = 0.0;
      for (int k = 0; k < k_modes; k++) {
        size_t i = base + (size_t)k * pixels;
        ptyc_c32 pr = load_c32(probes + i);
        ptyc_c32 g = ldg_c32(grad_psi + i);
        ptyc_c32 z = pt_cmulc(pr, g);
        re += z.re;
        im += z.im;
        illum += pt_cabs2(pr);
        if (grad_probes) store_c32(grad_probes + i, pt_cmulc(o, g));
      }
      if (grad_object) atomic_add_c32(grad_object + o_index, (float)re, (float)im);
      if (illumination) atomicAdd(illumination + o_index, (float)illum);
      intensity += pt_cabs2(o);
    }
    if (object_intensity) atomicAdd(object_intensity + p, (float)intensity);
  }
}

extern "C" cudaError_t pt_cuda_launch_exit_waves_vjp(pt_cuda_batch batch, const ptyc_c32 *object,
                                                     const ptyc_c32 *probes,
                                                     const ptyc_c32 *grad_psi,
                                                     ptyc_c32 *grad_object, float *illumination,
                                                     ptyc_c32 *grad_probes,
                                                     float *object_intensity,
                                                     cudaStream_t stream) {
  size_t n_chunks = ((size_t)batch.n + VJP_CHUNK - 1) / VJP_CHUNK;
  dim3 grid(pt_blocks((size_t)batch.m * batch.m, PT_THREADS), pt_grid_rows(n_chunks));
  exit_waves_vjp_kernel<<<grid, PT_THREADS, 0, stream>>>(batch, object, probes, grad_psi,
                                                         grad_object, illumination, grad_probes,
                                                         object_intensity);
  return cudaGetLastError();
}

/* ---- shift_position_gradient -------------------------------------------------------------
 * 1. The ramps of every entry, exactly as shift_spectrum makes them (sign -1):
 *    ramps[b][0..M) = ey, ramps[b][M..2M) = ex.
 * 2. grid (bpp, n): per entry, S = scale * spectrum * ey[u] ex[v] and the four sums
 *    fu Im(conj(G) S), fv Im(conj(G) S), fu^2 |S|^2, fv^2 |S|^2 over modes and pixels.
 * 3. One thread per entry adds its partials and applies the factors 4 pi / M, (2 pi / M)^2.
 * Scratch: ramps [n][2M] complex, then partials [n][bpp][4] doubles. */

__global__ void ad_ramps_kernel(pt_cuda_batch batch, ptyc_c32 *__restrict__ ramps) {
  const int m = batch.m;
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= 2 * m) return;
  for (int b = blockIdx.y; b < batch.n; b += gridDim.y) {
    pt_patch p = batch_patch(batch, b);
    ptyc_c32 r = i < m ? pt_shift_phasor(i, 0, m, p.fy, 0.0, -1.0)
                       : pt_shift_phasor(0, i - m, m, 0.0, p.fx, -1.0);
    store_c32(ramps + (size_t)b * 2 * m + i, r);
  }
}

__global__ void shift_gradient_kernel(pt_cuda_batch batch, const ptyc_c32 *__restrict__ spectrum,
                                      float scale, const ptyc_c32 *__restrict__ ramps,
                                      const ptyc_c32 *__restrict__ grad_spectra,
                                      double *__restrict__ partial, int bpp) {
  __shared__ double shared[4 * 32];
  const int m = batch.m, k_modes = batch.n_modes, pixels = m * m;
  int begin, end;
  pixel_range(pixels, bpp, blockIdx.x, &begin, &end);
  for (int b = blockIdx.y; b < batch.n; b += gridDim.y) {
    const ptyc_c32 *ey = ramps + (size_t)b * 2 * m, *ex = ey + m;
    const ptyc_c32 *gb = grad_spectra + (size_t)b * k_modes * pixels;
    double v[4] = {0.0, 0.0, 0.0, 0.0};
    for (int p = begin + threadIdx.x; p < end; p += blockDim.x) {
      const int u = p / m, w = p - u * m;
      const double fu = pt_freq_index(u, m), fv = pt_freq_index(w, m);
      ptyc_c32 row = pt_cscale(ldg_c32(ey + u), scale);
      ptyc_c32 ramp = pt_cmul(row, ldg_c32(ex + w));
      for (int k = 0; k < k_modes; k++) {
        ptyc_c32 s = pt_cmul(ldg_c32(spectrum + (size_t)k * pixels + p), ramp);
        ptyc_c32 z = pt_cmulc(ldg_c32(gb + (size_t)k * pixels + p), s);
        double s2 = pt_cabs2(s);
        v[0] += fu * z.im;
        v[1] += fv * z.im;
        v[2] += fu * fu * s2;
        v[3] += fv * fv * s2;
      }
    }
    block_sum(v, shared);
    if (threadIdx.x == 0)
      for (int i = 0; i < 4; i++) partial[((size_t)b * bpp + blockIdx.x) * 4 + i] = v[i];
  }
}

__global__ void shift_gradient_finish_kernel(const double *__restrict__ partial, int bpp, int n,
                                             int m, double *__restrict__ out) {
  int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= n) return;
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  for (int blk = 0; blk < bpp; blk++)
    for (int i = 0; i < 4; i++) s[i] += partial[((size_t)b * bpp + blk) * 4 + i];
  const double w = 2.0 * 3.14159265358979323846 / m;
  out[4 * (size_t)b + 0] = 2.0 * w * s[0];
  out[4 * (size_t)b + 1] = 2.0 * w * s[1];
  out[4 * (size_t)b + 2] = w * w * s[2];
  out[4 * (size_t)b + 3] = w * w * s[3];
}

extern "C" cudaError_t pt_cuda_launch_shift_position_gradient(pt_cuda_batch batch,
                                                              const ptyc_c32 *spectrum,
                                                              float scale,
                                                              const ptyc_c32 *grad_spectra,
                                                              double *out, void *scratch,
                                                              cudaStream_t stream) {
  const int m = batch.m, n = batch.n, bpp = pt_cuda_blocks_per_position(m);
  ptyc_c32 *ramps = (ptyc_c32 *)scratch;
  double *partial = (double *)(ramps + (size_t)n * 2 * m);
  dim3 ramp_grid(pt_blocks(2 * (size_t)m, PT_THREADS), pt_grid_rows((size_t)n));
  ad_ramps_kernel<<<ramp_grid, PT_THREADS, 0, stream>>>(batch, ramps);
  PT_LAUNCH_CHECK();
  dim3 grid((unsigned)bpp, pt_grid_rows((size_t)n));
  shift_gradient_kernel<<<grid, PT_THREADS, 0, stream>>>(batch, spectrum, scale, ramps,
                                                         grad_spectra, partial, bpp);
  PT_LAUNCH_CHECK();
  shift_gradient_finish_kernel<<<pt_blocks((size_t)n, PT_THREADS), PT_THREADS, 0, stream>>>(
      partial, bpp, n, m, out);
  return cudaGetLastError();
}

/* ---- optimizer_step ------------------------------------------------------------------------ */

__global__ void optimizer_kernel(pt_optim_coeffs c, float grad_scale, float den_mix,
                                 ptyc_c32 *__restrict__ param, const ptyc_c32 *__restrict__ grad,
                                 size_t count, const float *__restrict__ den, size_t den_count,
                                 ptyc_c32 *__restrict__ mean, float *__restrict__ mean_square,
                                 const unsigned *__restrict__ max_bits) {
  const float mixed_max = den ? den_mix * __uint_as_float(*max_bits) : 0.f;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
       i += (size_t)gridDim.x * blockDim.x) {
    float s = grad_scale;
    if (den) {
      size_t di = den_count == count ? i : i % den_count;
      float d = (1.f - den_mix) * __ldg(den + di) + mixed_max;
      s = d > 0.f ? grad_scale / d : 0.f;
    }
    /* Each rule touches only the state it keeps: SGD m (with momentum), RMSprop v,
     * Adam both; the object's state is large and read every minibatch. */
    const bool keeps_m = c.kind == PTYC_OPTIMIZER_ADAM || (c.kind == PTYC_OPTIMIZER_SGD && c.momentum > 0.f);
    const bool keeps_v = c.kind != PTYC_OPTIMIZER_SGD;
    ptyc_c32 m = keeps_m ? load_c32(mean + i) : pt_c32(0.f, 0.f);
    float v = keeps_v ? mean_square[i] : 0.f;
    ptyc_c32 change = pt_optim_update_c32(&c, pt_cscale(ldg_c32(grad + i), s), &m, &v);
    if (keeps_m) store_c32(mean + i, m);
    if (keeps_v) mean_square[i] = v;
    store_c32(param + i, pt_cadd(load_c32(param + i), change));
  }
}

extern "C" cudaError_t pt_cuda_launch_optimizer_step(const struct pt_optim_coeffs *coeffs,
                                                     float grad_scale, float den_mix,
                                                     ptyc_c32 *param, const ptyc_c32 *grad,
                                                     size_t count, const float *den,
                                                     size_t den_count, void *state,
                                                     unsigned *scratch, cudaStream_t stream) {
  if (den) {
    cudaError_t err = pt_launch_max_positive(den, den_count, scratch, stream);
    if (err != cudaSuccess) return err;
  }
  ptyc_c32 *mean = (ptyc_c32 *)state;
  float *mean_square = (float *)(mean + count);
  optimizer_kernel<<<elementwise_blocks(count), PT_THREADS, 0, stream>>>(
      *coeffs, grad_scale, den_mix, param, grad, count, den, den_count, mean, mean_square,
      scratch);
  return cudaGetLastError();
}

/* ---- position_step: one thread per batch entry (distinct positions) ------------------------- */

__global__ void position_step_kernel(pt_cuda_batch batch, double *__restrict__ positions,
                                     double limit_y, double limit_x, pt_optim_coeffs c,
                                     double grad_scale, const double *__restrict__ grad,
                                     int use_den, const unsigned *__restrict__ max_bits,
                                     double *__restrict__ state) {
  int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= batch.n) return;
  const int j = __ldg(batch.order + batch.first + b);
  const double scale = use_den ? (double)__uint_as_float(*max_bits) : 1.0;
  const double limit[2] = {limit_y, limit_x};
  for (int a = 0; a < 2; a++) {
    double curvature = grad[4 * (size_t)b + 2 + a] * scale;
    double g = curvature > 0.0 ? grad_scale * grad[4 * (size_t)b + a] / curvature : 0.0;
    double change = pt_optim_update_real(&c, g, &state[4 * (size_t)j + a],
                                         &state[4 * (size_t)j + 2 + a]);
    positions[2 * (size_t)j + a] = pt_move_position(positions[2 * (size_t)j + a], change, limit[a]);
  }
}

extern "C" cudaError_t pt_cuda_launch_position_step(pt_cuda_batch batch, double *positions,
                                                    double limit_y, double limit_x,
                                                    const struct pt_optim_coeffs *coeffs,
                                                    double grad_scale, const double *grad,
                                                    const float *den, size_t den_count,
                                                    double *state, unsigned *scratch,
                                                    cudaStream_t stream) {
  if (den) {
    cudaError_t err = pt_launch_max_positive(den, den_count, scratch, stream);
    if (err != cudaSuccess) return err;
  }
  position_step_kernel<<<pt_blocks((size_t)batch.n, PT_THREADS), PT_THREADS, 0, stream>>>(
      batch, positions, limit_y, limit_x, *coeffs, grad_scale, grad, den != nullptr, scratch,
      state);
  return cudaGetLastError();
}

/* ---- object_regularize: grid-stride over pixels, then the blocks' partials in order ---------- */

__global__ void regularize_kernel(const ptyc_c32 *__restrict__ object, int h, int w,
                                  double l1_weight, double tv_weight,
                                  ptyc_c32 *__restrict__ grad, double *__restrict__ partial) {
  __shared__ double shared[32];
  double v[1] = {0.0};
  const size_t count = (size_t)h * w;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
       i += (size_t)gridDim.x * blockDim.x) {
    const int y = (int)(i / w), x = (int)(i - (size_t)y * w);
    ptyc_c32 o = ldg_c32(object + i);
    double gre = 0.0, gim = 0.0;
    if (l1_weight > 0.0) {
      double s = pt_smooth_abs(o.re, o.im);
      v[0] += l1_weight * s;
      gre += l1_weight * o.re / (2.0 * s);
      gim += l1_weight * o.im / (2.0 * s);
    }
    if (tv_weight > 0.0) {
      ptyc_c64 g;
      v[0] += tv_weight * pt_tv_pixel(object, h, w, y, x, &g);
      gre += tv_weight * g.re;
      gim += tv_weight * g.im;
    }
    ptyc_c32 old = load_c32(grad + i);
    store_c32(grad + i, pt_c32(old.re + (float)gre, old.im + (float)gim));
  }
  block_sum(v, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = v[0];
}

__global__ void add_partials_kernel(const double *__restrict__ partial, int n_partial,
                                    double *__restrict__ out) {
  __shared__ double shared[32];
  double v[1] = {0.0};
  for (int i = threadIdx.x; i < n_partial; i += blockDim.x) v[0] += partial[i];
  block_sum(v, shared);
  if (threadIdx.x == 0) *out += v[0];
}

extern "C" cudaError_t pt_cuda_launch_object_regularize(const ptyc_c32 *object, int h, int w,
                                                        double l1_weight, double tv_weight,
                                                        ptyc_c32 *grad, double *cost,
                                                        double *scratch, cudaStream_t stream) {
  unsigned blocks = pt_blocks((size_t)h * w, PT_THREADS);
  if (blocks > PT_CUDA_REDUCE_BLOCKS) blocks = PT_CUDA_REDUCE_BLOCKS;
  regularize_kernel<<<blocks, PT_THREADS, 0, stream>>>(object, h, w, l1_weight, tv_weight, grad,
                                                      scratch);
  PT_LAUNCH_CHECK();
  add_partials_kernel<<<1, PT_THREADS, 0, stream>>>(scratch, (int)blocks, cost);
  return cudaGetLastError();
}
