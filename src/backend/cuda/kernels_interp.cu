/* Sub-pixel shifts by interpolation (src/backend/interp_math.h): the windowed-sinc filter
 * of the probe modes, fused with the exit waves, and its adjoint summed over a batch,
 * fused with the probe gradient's conj(O) chi. Each launcher first solves every entry's
 * weights into scratch (2 * T floats per entry), which its blocks then read.
 *
 * Launch shape: a block of 32 x 8 threads makes a 32 x 32 tile of output pixels (each
 * thread 4 consecutive rows of one column). The tile's input, with the filter's reach of T - 1 pixels, is
 * staged in shared memory; the row pass filters it into `mid`, the column pass into
 * the outputs. grid.x = tiles of the image, grid.y = (entry, mode) or (mode, group of
 * entries), looping when there are more than 65535. */
#include "backend/cuda/cuda_device_util.h"
#include "backend/interp_math.h"

#include <cuda_pipeline.h>

#define TILE 32
#define TILE_ROWS 8                              /* blockDim.y */
#define REACH (PT_INTERP_TAPS - 1)               /* extra input pixels per axis */
#define SPAN (TILE + REACH)                      /* input pixels per axis of a tile */
/* Entries each block of the adjoint sums before one atomic add per output pixel.
 * Measured on the H100 (medium preset, 96 entries x 4 modes, 3 blocks per SM), ms per
 * batch, with the tiles staged through registers: 4: 0.482, 8: 0.450, 12: 0.463,
 * 16: 0.425, 24: 0.455, 32: 0.407, 48: 0.572; with a group's modes launched together:
 * 12: 0.425, 16: 0.388, 24: 0.411, 32: 0.377. With the cp.async double buffer the
 * count hardly matters: 8: 0.328, 12 to 24: 0.326, 32: 0.327.
 * Adding the object's update terms (conj(p) chi, |p|^2) to these blocks, each taking
 * every K-th entry of its group, was measured and dropped: 0.590 ms per batch against
 * 0.388 + 0.166 for this kernel and object_gradient apart (LSQML 85.1 vs 84.2 ms per
 * iteration): the extra loads and atomics run after the filter loop at this kernel's
 * 3 blocks per SM, where object_gradient alone streams at 2.9 TB/s. */
#define ENTRIES_PER_BLOCK 16
/* Blocks each SM must hold: the compiler fits both kernels in 80 registers for 3 (the
 * forward without spilling, the adjoint with 40 bytes), where on its own it took 127.
 * On the H100 (medium preset, per batch) 2 -> 3 blocks: forward 0.239 -> 0.208 ms,
 * adjoint (then staging through registers) 0.533 -> 0.451 ms; 4 blocks (64 registers,
 * both spilling): 0.277 and 0.458. The adjoint's 70 KiB of shared memory allow 3. */
#define MIN_BLOCKS_PER_SM 3

static_assert(PT_CUDA_INTERP_SCRATCH == 2 * PT_INTERP_TAPS * sizeof(float),
              "PT_CUDA_INTERP_SCRATCH holds one entry's weights");

/* Tile `t` of an M x M image: its top-left output pixel. */
__device__ __forceinline__ void tile_corner(int m, int t, int *y0, int *x0) {
  int tiles_x = (m + TILE - 1) / TILE;
  *y0 = (t / tiles_x) * TILE;
  *x0 = (t % tiles_x) * TILE;
}

/* ---- the weights: WEIGHT_ITEMS (entry, axis) pairs per block, a thread per tap: each
 * solves its entry of b(f), then its row of G^-1 b (interp_math.h), into weights[b][0..T)
 * (along y) and [T..2T) (along x). (One thread per pair, solving all T taps in turn, took
 * 8.5 us per launch for 96 entries on the H100: a chain of double sines.) */
#define WEIGHT_ITEMS 16
static_assert(PT_INTERP_TAPS <= 16, "a thread per tap, 16 threads per (entry, axis)");

__global__ void interp_weights_kernel(pt_cuda_batch batch, const pt_interp_design design,
                                      float *__restrict__ weights) {
  __shared__ double rhs[WEIGHT_ITEMS][PT_INTERP_TAPS];
  const int tap = threadIdx.x, item = blockIdx.x * WEIGHT_ITEMS + threadIdx.y;
  const bool active = tap < PT_INTERP_TAPS && item < 2 * batch.n;
  double f = 0.0;
  if (active) {
    const pt_patch p = batch_patch(batch, item >> 1);
    f = (item & 1) ? p.fx : p.fy;
    rhs[threadIdx.y][tap] = pt_interp_rhs(f, tap);
  }
  __syncthreads();
  if (active)
    weights[(size_t)item * PT_INTERP_TAPS + tap] =
        (float)pt_interp_weight_from_row(f, tap, pt_interp_row(&design, rhs[threadIdx.y], tap));
}

/* The inverse Gram matrix is the same for every launch: made on the host (a few
 * microseconds) and passed by value. */
static cudaError_t launch_weights(const pt_cuda_batch &batch, float *weights,
                                  cudaStream_t stream) {
  pt_interp_design design;
  pt_interp_design_make(&design);
  const unsigned blocks = (unsigned)((2 * (size_t)batch.n + WEIGHT_ITEMS - 1) / WEIGHT_ITEMS);
  interp_weights_kernel<<<blocks, dim3(16, WEIGHT_ITEMS), 0, stream>>>(batch, design, weights);
  return cudaGetLastError();
}

/* Rows and columns of a staged tile each thread loads: all of its loads are issued
 * before the first is used (the loop is unrolled), so their latencies overlap. */
#define STAGE_ROWS ((SPAN + TILE_ROWS - 1) / TILE_ROWS)
#define STAGE_COLS ((SPAN + TILE - 1) / TILE)

/* Entry b's weights into shared memory. */
__device__ __forceinline__ void load_weights(const float *__restrict__ weights, int b, float *w) {
  int t = threadIdx.y * blockDim.x + threadIdx.x;
  if (t < 2 * PT_INTERP_TAPS) w[t] = __ldg(weights + (size_t)b * 2 * PT_INTERP_TAPS + t);
}

/* The row pass then the column pass over the staged tile: out[q] = output pixel
 * (4 threadIdx.y + q, threadIdx.x) of the tile. `in` is SPAN x SPAN, `mid` SPAN x TILE
 * (+1 column of padding). Tap i reads input i pixels before the far end of the reach
 * (forward: in(y - i + BEFORE) sits at local y + REACH - i when the tile starts
 * REACH - BEFORE pixels early; adjoint: in(y + i - BEFORE) at local y + i when it
 * starts BEFORE early).
 * Each thread makes 4 consecutive outputs along the filtered axis from the 4 + REACH
 * inputs they share, kept in registers: a quarter of the shared-memory reads of one
 * output per thread. In the row pass the lanes of a warp take consecutive rows (the
 * odd row stride SPAN spreads them over all banks) of a 4-pixel group of x; `mid`'s
 * padding keeps its column-wise writes off a single bank. */
/* Four consecutive outputs of the filter along one axis from the 4 + REACH inputs they
 * share (weights w[0..T) of that axis). */
template <bool ADJOINT>
__device__ __forceinline__ void filter_four(const float2 (&v)[4 + REACH], const float *w,
                                            float2 out[4]) {
#pragma unroll
  for (int j = 0; j < 4; j++) {
    float2 s = make_float2(0.f, 0.f);
#pragma unroll
    for (int i = 0; i < PT_INTERP_TAPS; i++) {
      float2 u = v[ADJOINT ? j + i : j + REACH - i];
      s.x += w[i] * u.x;
      s.y += w[i] * u.y;
    }
    out[j] = s;
  }
}

template <bool ADJOINT>
__device__ __forceinline__ void filter_tile(const float2 (*in)[SPAN], float2 (*mid)[TILE + 1],
                                            const float *w, float2 out[4]) {
  const float *wy = w, *wx = w + PT_INTERP_TAPS;
  const int lane = threadIdx.x, x_out = 4 * threadIdx.y; /* blockDim.x == 32 */
  /* the row pass's SPAN x (TILE / 4) tasks (row, 4-pixel group) spread over all threads:
   * with a warp per group, the second round of rows kept only 11 of 32 lanes busy */
  for (int task = threadIdx.y * 32 + lane; task < SPAN * (TILE / 4); task += TILE * TILE_ROWS) {
    const int r = task % SPAN, x0 = 4 * (task / SPAN);
    float2 v[4 + REACH], row[4];
#pragma unroll
    for (int q = 0; q < 4 + REACH; q++) v[q] = in[r][x0 + q];
    filter_four<ADJOINT>(v, wx, row);
#pragma unroll
    for (int j = 0; j < 4; j++) mid[r][x0 + j] = row[j];
  }
  __syncthreads();
  float2 v[4 + REACH];
#pragma unroll
  for (int q = 0; q < 4 + REACH; q++) v[q] = mid[x_out + q][lane];
  filter_four<ADJOINT>(v, wy, out);
}

/* ---- interp_shift: probes[b][k] = S_b probe[k]; psi[b][k] = probes[b][k] O_b ---------------- */

/* Where this thread's staged pixels come from: offset y * m + x in an M x M image, or
 * -1 outside it. The same for every entry and mode of the tile, so computed once. */
__device__ __forceinline__ void stage_offsets(int m, int first_y, int first_x,
                                              int (&at)[STAGE_ROWS][STAGE_COLS]) {
#pragma unroll
  for (int i = 0; i < STAGE_ROWS; i++)
#pragma unroll
    for (int j = 0; j < STAGE_COLS; j++) {
      int r = threadIdx.y + i * TILE_ROWS, c = threadIdx.x + j * TILE;
      int y = first_y + r, x = first_x + c;
      at[i][j] = r < SPAN && c < SPAN && y >= 0 && y < m && x >= 0 && x < m ? y * m + x : -1;
    }
}

/* One block per (tile, entry): the entry's weights and object pixels serve all K modes.
 * (Copying the modes' tiles by cp.async into two buffers, mode k + 1's while mode k is
 * filtered, as the adjoint does, was measured and dropped: 0.208 -> 0.275 ms per batch
 * on the H100. The probe's tiles come from L2, and the two buffers' 41 KiB and the
 * spills it brought cost more than the latency they hid.) */
__global__ void __launch_bounds__(TILE * TILE_ROWS, MIN_BLOCKS_PER_SM)
    interp_shift_kernel(pt_cuda_batch batch, const float *__restrict__ weights,
                        const ptyc_c32 *__restrict__ probe,
                        const ptyc_c32 *__restrict__ object, ptyc_c32 *__restrict__ probes,
                        ptyc_c32 *__restrict__ psi) {
  __shared__ float2 in[SPAN][SPAN];
  __shared__ float2 mid[SPAN][TILE + 1];
  __shared__ float w[2 * PT_INTERP_TAPS];
  const int m = batch.m, k_modes = batch.n_modes;
  const int pixels = m * m;
  int ty0, tx0;
  tile_corner(m, blockIdx.x, &ty0, &tx0);
  int at[STAGE_ROWS][STAGE_COLS];
  stage_offsets(m, ty0 - (REACH - PT_INTERP_BEFORE), tx0 - (REACH - PT_INTERP_BEFORE), at);
  const int x = tx0 + threadIdx.x, y_first = ty0 + 4 * threadIdx.y;
  for (int b = blockIdx.y; b < batch.n; b += gridDim.y) {
    const pt_patch p = batch_patch(batch, b);
    float2 o[4];
    const float2 *orow = reinterpret_cast<const float2 *>(object) +
                         ((size_t)p.y0 * batch.obj_w + p.x0);
#pragma unroll
    for (int q = 0; q < 4; q++)
      o[q] = psi != NULL && y_first + q < m && x < m ? __ldg(orow + (y_first + q) * batch.obj_w + x)
                                                     : make_float2(0.f, 0.f);
    __syncthreads(); /* the previous entry's weights are no longer read */
    load_weights(weights, b, w);
    for (int k = 0; k < k_modes; k++) {
      const float2 *src = reinterpret_cast<const float2 *>(probe) + (size_t)k * pixels;
      float2 staged[STAGE_ROWS][STAGE_COLS];
#pragma unroll
      for (int i = 0; i < STAGE_ROWS; i++)
#pragma unroll
        for (int j = 0; j < STAGE_COLS; j++)
          staged[i][j] = at[i][j] >= 0 ? __ldg(src + at[i][j]) : make_float2(0.f, 0.f);
      __syncthreads(); /* the previous mode's tile is no longer read */
#pragma unroll
      for (int i = 0; i < STAGE_ROWS; i++)
#pragma unroll
        for (int j = 0; j < STAGE_COLS; j++) {
          int r = threadIdx.y + i * TILE_ROWS, c = threadIdx.x + j * TILE;
          if (r < SPAN && c < SPAN) in[r][c] = staged[i][j];
        }
      __syncthreads();
      float2 out[4];
      filter_tile<false>(in, mid, w, out);
      const size_t image = ((size_t)b * k_modes + k) * pixels;
#pragma unroll
      for (int q = 0; q < 4; q++) {
        if (y_first + q >= m || x >= m) continue;
        size_t i = image + (size_t)(y_first + q) * m + x;
        reinterpret_cast<float2 *>(probes)[i] = out[q];
        if (psi != NULL)
          reinterpret_cast<float2 *>(psi)[i] =
              make_float2(out[q].x * o[q].x - out[q].y * o[q].y, out[q].x * o[q].y + out[q].y * o[q].x);
      }
    }
  }
}

extern "C" cudaError_t pt_cuda_launch_interp_shift(pt_cuda_batch batch, const ptyc_c32 *probe,
                                                   const ptyc_c32 *object, ptyc_c32 *probes,
                                                   ptyc_c32 *psi, float *weights,
                                                   cudaStream_t stream) {
  cudaError_t err = launch_weights(batch, weights, stream);
  if (err != cudaSuccess) return err;
  int tiles = (batch.m + TILE - 1) / TILE;
  dim3 grid((unsigned)(tiles * tiles), pt_grid_rows((size_t)batch.n));
  interp_shift_kernel<<<grid, dim3(TILE, TILE_ROWS), 0, stream>>>(batch, weights, probe, object,
                                                                  probes, psi);
  return cudaGetLastError();
}

/* ---- interp_unshift_accumulate: acc[k] += sum_b S_b^T G[b][k], den += sum_b |O_b|^2 ----------
 * Each block sums ENTRIES_PER_BLOCK entries of one mode in registers, then adds them to
 * acc with one atomic add per pixel (the blocks of other entry groups add theirs).
 * The entries' chi and object tiles are copied into shared memory asynchronously
 * (cp.async), double-buffered: entry b + 1's copies fly while entry b is filtered. (With
 * the tiles staged through registers instead, half of the warps' stalls were waits for
 * those loads: 0.389 ms per batch.) */

struct unshift_smem {
  float2 chi[2][SPAN][SPAN]; /* conj(O) chi once multiplied in place */
  float2 obj[2][SPAN][SPAN];
  float2 mid[SPAN][TILE + 1];
  float w[2][2 * PT_INTERP_TAPS];
};

/* Queues the copies of entry b's tile (chi of mode k, the object, the weights) into
 * buffer `buf` as one cp.async group; pixels outside the image are zeroed directly. The
 * staged tile starts BEFORE pixels up and left of the output tile. */
__device__ __forceinline__ void queue_unshift_tile(const pt_cuda_batch &batch,
                                                   const float *__restrict__ weights,
                                                   const ptyc_c32 *__restrict__ object,
                                                   const ptyc_c32 *__restrict__ chi, int b, int k,
                                                   int first_y, int first_x, unshift_smem &s,
                                                   int buf) {
  const int m = batch.m;
  const pt_patch p = batch_patch(batch, b);
  const float2 *c = reinterpret_cast<const float2 *>(chi) + ((size_t)b * batch.n_modes + k) * m * m;
  const float2 *corner = reinterpret_cast<const float2 *>(object) +
                         ((size_t)p.y0 * batch.obj_w + p.x0);
#pragma unroll
  for (int i = 0; i < STAGE_ROWS; i++)
#pragma unroll
    for (int j = 0; j < STAGE_COLS; j++) {
      const int r = threadIdx.y + i * TILE_ROWS, col = threadIdx.x + j * TILE;
      if (r >= SPAN || col >= SPAN) continue;
      const int y = first_y + r, x = first_x + col;
      if (y >= 0 && y < m && x >= 0 && x < m) {
        __pipeline_memcpy_async(&s.chi[buf][r][col], c + (size_t)y * m + x, sizeof(float2));
        if (object != NULL)
          __pipeline_memcpy_async(&s.obj[buf][r][col], corner + (size_t)y * batch.obj_w + x,
                                  sizeof(float2));
      } else { /* both: stale object values could be Inf or NaN, and NaN * 0 is NaN */
        s.chi[buf][r][col] = make_float2(0.f, 0.f);
        s.obj[buf][r][col] = make_float2(0.f, 0.f);
      }
    }
  const int t = threadIdx.y * TILE + threadIdx.x;
  if (t < 2 * PT_INTERP_TAPS)
    __pipeline_memcpy_async(&s.w[buf][t], weights + (size_t)b * 2 * PT_INTERP_TAPS + t,
                            sizeof(float));
  __pipeline_commit();
}

/* chi := conj(O) chi over this thread's staged pixels (those it queued). */
__device__ __forceinline__ void multiply_conj_object(unshift_smem &s, int buf) {
#pragma unroll
  for (int i = 0; i < STAGE_ROWS; i++)
#pragma unroll
    for (int j = 0; j < STAGE_COLS; j++) {
      const int r = threadIdx.y + i * TILE_ROWS, col = threadIdx.x + j * TILE;
      if (r >= SPAN || col >= SPAN) continue;
      const float2 o = s.obj[buf][r][col], v = s.chi[buf][r][col];
      s.chi[buf][r][col] = make_float2(o.x * v.x + o.y * v.y, o.x * v.y - o.y * v.x);
    }
}

__global__ void __launch_bounds__(TILE * TILE_ROWS, MIN_BLOCKS_PER_SM)
    interp_unshift_kernel(pt_cuda_batch batch, const float *__restrict__ weights,
                          const ptyc_c32 *__restrict__ object,
                          const ptyc_c32 *__restrict__ chi, ptyc_c32 *__restrict__ acc,
                          float *__restrict__ den) {
  extern __shared__ float4 unshift_smem_raw[];
  unshift_smem &s = *reinterpret_cast<unshift_smem *>(unshift_smem_raw);
  const int m = batch.m, k_modes = batch.n_modes;
  const size_t pixels = (size_t)m * m;
  const int groups = (batch.n + ENTRIES_PER_BLOCK - 1) / ENTRIES_PER_BLOCK;
  int ty0, tx0;
  tile_corner(m, blockIdx.x, &ty0, &tx0);
  const int x = tx0 + threadIdx.x, first_y = ty0 - PT_INTERP_BEFORE,
            first_x = tx0 - PT_INTERP_BEFORE;
  /* the modes of one group of entries are neighbours in the launch, so they run together
   * and read the group's object patches from L2 */
  for (int gk = blockIdx.y; gk < k_modes * groups; gk += gridDim.y) {
    const int g = gk / k_modes, k = gk - g * k_modes;
    const int b_first = g * ENTRIES_PER_BLOCK, b_end = min(batch.n, b_first + ENTRIES_PER_BLOCK);
    const bool illuminate = den != NULL && k == 0;
    float2 sum[4];
    float illumination[4];
#pragma unroll
    for (int q = 0; q < 4; q++) sum[q] = make_float2(0.f, 0.f), illumination[q] = 0.f;
    __syncthreads(); /* the previous group's buffers are no longer read */
    queue_unshift_tile(batch, weights, object, chi, b_first, k, first_y, first_x, s, 0);
    for (int b = b_first; b < b_end; b++) {
      const int buf = (b - b_first) & 1;
      __pipeline_wait_prior(0); /* this thread's copies of entry b have landed */
      if (object != NULL) multiply_conj_object(s, buf);
      /* every pixel of entry b is staged, and entry b - 1 is no longer read: its
       * buffers take entry b + 1 while entry b is filtered */
      __syncthreads();
      if (b + 1 < b_end)
        queue_unshift_tile(batch, weights, object, chi, b + 1, k, first_y, first_x, s, buf ^ 1);
      float2 out[4];
      filter_tile<true>(s.chi[buf], s.mid, s.w[buf], out);
#pragma unroll
      for (int q = 0; q < 4; q++) {
        sum[q].x += out[q].x;
        sum[q].y += out[q].y;
        if (illuminate) {
          const float2 o = s.obj[buf][4 * threadIdx.y + q + PT_INTERP_BEFORE]
                                     [threadIdx.x + PT_INTERP_BEFORE];
          illumination[q] += o.x * o.x + o.y * o.y;
        }
      }
    }
#pragma unroll
    for (int q = 0; q < 4; q++) {
      const int y = ty0 + 4 * threadIdx.y + q;
      if (y >= m || x >= m) continue;
      atomic_add_c32(acc + (size_t)k * pixels + (size_t)y * m + x, sum[q].x, sum[q].y);
      if (illuminate) atomicAdd(den + (size_t)y * m + x, illumination[q]);
    }
  }
}

extern "C" cudaError_t pt_cuda_launch_interp_unshift_accumulate(pt_cuda_batch batch,
                                                                const ptyc_c32 *object,
                                                                const ptyc_c32 *chi,
                                                                ptyc_c32 *acc, float *den,
                                                                float *weights,
                                                                cudaStream_t stream) {
  /* more than the 48 KiB a block gets without asking; asked on every launch (the
   * attribute is per device, and this costs well under a microsecond) */
  cudaError_t err = cudaFuncSetAttribute(interp_unshift_kernel,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)sizeof(unshift_smem));
  if (err != cudaSuccess) return err;
  err = launch_weights(batch, weights, stream);
  if (err != cudaSuccess) return err;
  int tiles = (batch.m + TILE - 1) / TILE;
  size_t groups = ((size_t)batch.n + ENTRIES_PER_BLOCK - 1) / ENTRIES_PER_BLOCK;
  dim3 grid((unsigned)(tiles * tiles), pt_grid_rows(groups * batch.n_modes));
  interp_unshift_kernel<<<grid, dim3(TILE, TILE_ROWS), sizeof(unshift_smem), stream>>>(
      batch, weights, object, chi, acc, den);
  return cudaGetLastError();
}

/* ---- interp_position_gradient ------------------------------------------------------------
 * 1. One thread per entry: its weights and their derivatives, [dwy, wx, wy, dwx], so that
 *    [0, 2T) are the (y, x) weights of D_y and [2T, 4T) those of D_x (filter_tile reads
 *    y then x weights).
 * 2. One block per (tile, entry), as interp_shift: per mode, the tile of D_y P and D_x P
 *    and four sums over its pixels (conj(g) O: the exit wave's factor)
 *      Re(conj(g) O D_y P), Re(conj(g) O D_x P), |D_y P|^2, |D_x P|^2
 *    into partial[b][tile][4].
 * 3. A warp per entry adds its tiles and applies the factors 2, 2, 1/M^2, 1/M^2.
 * Only run when positions are refined, so written for clarity over speed: it filters
 * each tile twice and is not fused with the other backward ops. */

static_assert(TILE == 32, "pt_cuda_interp_gradient_scratch_per_position assumes 32 x 32 tiles");
#define GRADIENT_WEIGHTS (4 * PT_INTERP_TAPS)

__global__ void interp_gradient_weights_kernel(pt_cuda_batch batch, const pt_interp_design design,
                                               float *__restrict__ weights) {
  int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= batch.n) return;
  pt_patch p = batch_patch(batch, b);
  float *w = weights + (size_t)b * GRADIENT_WEIGHTS;
  pt_interp_weights(&design, p.fy, w + 2 * PT_INTERP_TAPS, w);
  pt_interp_weights(&design, p.fx, w + PT_INTERP_TAPS, w + 3 * PT_INTERP_TAPS);
}

__global__ void __launch_bounds__(TILE * TILE_ROWS)
    interp_gradient_kernel(pt_cuda_batch batch, const float *__restrict__ weights,
                           const ptyc_c32 *__restrict__ probe, const ptyc_c32 *__restrict__ object,
                           const ptyc_c32 *__restrict__ grad_psi, double *__restrict__ partial) {
  __shared__ float2 in[SPAN][SPAN];
  __shared__ float2 mid[SPAN][TILE + 1];
  __shared__ float w[GRADIENT_WEIGHTS];
  __shared__ float warp_sums[TILE_ROWS][4];
  const int m = batch.m, k_modes = batch.n_modes;
  const size_t pixels = (size_t)m * m;
  int ty0, tx0;
  tile_corner(m, blockIdx.x, &ty0, &tx0);
  int at[STAGE_ROWS][STAGE_COLS];
  stage_offsets(m, ty0 - (REACH - PT_INTERP_BEFORE), tx0 - (REACH - PT_INTERP_BEFORE), at);
  const int x = tx0 + threadIdx.x, y_first = ty0 + 4 * threadIdx.y;
  const int t = threadIdx.y * TILE + threadIdx.x;
  for (int b = blockIdx.y; b < batch.n; b += gridDim.y) {
    const pt_patch p = batch_patch(batch, b);
    __syncthreads(); /* the previous entry's weights and sums are no longer read */
    if (t < GRADIENT_WEIGHTS) w[t] = __ldg(weights + (size_t)b * GRADIENT_WEIGHTS + t);
    float sum[4] = {0.f, 0.f, 0.f, 0.f};
    for (int k = 0; k < k_modes; k++) {
      const float2 *src = reinterpret_cast<const float2 *>(probe) + (size_t)k * pixels;
      __syncthreads(); /* the previous mode's tile is no longer read */
#pragma unroll
      for (int i = 0; i < STAGE_ROWS; i++)
#pragma unroll
        for (int j = 0; j < STAGE_COLS; j++) {
          int r = threadIdx.y + i * TILE_ROWS, c = threadIdx.x + j * TILE;
          if (r < SPAN && c < SPAN)
            in[r][c] = at[i][j] >= 0 ? __ldg(src + at[i][j]) : make_float2(0.f, 0.f);
        }
      __syncthreads();
      float2 dy[4], dx[4];
      filter_tile<false>(in, mid, w, dy);
      __syncthreads(); /* `mid` is filled again */
      filter_tile<false>(in, mid, w + 2 * PT_INTERP_TAPS, dx);
      const ptyc_c32 *g = grad_psi + ((size_t)b * k_modes + k) * pixels;
#pragma unroll
      for (int q = 0; q < 4; q++) {
        const int y = y_first + q;
        if (y >= m || x >= m) continue;
        ptyc_c32 z = pt_cmulc(ldg_c32(g + (size_t)y * m + x),
                              ldg_c32(object + object_index(p, batch.obj_w, y, x)));
        sum[0] += z.re * dy[q].x - z.im * dy[q].y;
        sum[1] += z.re * dx[q].x - z.im * dx[q].y;
        sum[2] += dy[q].x * dy[q].x + dy[q].y * dy[q].y;
        sum[3] += dx[q].x * dx[q].x + dx[q].y * dx[q].y;
      }
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) sum[i] += __shfl_down_sync(0xffffffffu, sum[i], off);
      if (threadIdx.x == 0) warp_sums[threadIdx.y][i] = sum[i];
    }
    __syncthreads();
    if (t < 4) {
      double s = 0.0;
      for (int r = 0; r < TILE_ROWS; r++) s += warp_sums[r][t];
      partial[((size_t)b * gridDim.x + blockIdx.x) * 4 + t] = s;
    }
  }
}

__global__ void interp_gradient_finish_kernel(const double *__restrict__ partial, int tiles, int n,
                                              int m, double *__restrict__ out) {
  const int b = pt_warp_entry();
  if (b >= n) return;
  const double scale[4] = {2.0, 2.0, 1.0 / ((double)m * m), 1.0 / ((double)m * m)};
  for (int i = 0; i < 4; i++) {
    double s = pt_warp_sum(partial + (size_t)b * tiles * 4 + i, tiles, 4);
    if ((threadIdx.x & 31) == 0) out[4 * (size_t)b + i] = scale[i] * s;
  }
}

extern "C" cudaError_t pt_cuda_launch_interp_position_gradient(pt_cuda_batch batch,
                                                               const ptyc_c32 *probe,
                                                               const ptyc_c32 *object,
                                                               const ptyc_c32 *grad_psi,
                                                               double *out, void *scratch,
                                                               cudaStream_t stream) {
  const int n = batch.n, tiles_axis = (batch.m + TILE - 1) / TILE;
  const int tiles = tiles_axis * tiles_axis;
  float *weights = (float *)scratch;
  double *partial = (double *)(weights + (size_t)n * GRADIENT_WEIGHTS);
  pt_interp_design design;
  pt_interp_design_make(&design);
  interp_gradient_weights_kernel<<<pt_blocks((size_t)n, 64), 64, 0, stream>>>(batch, design,
                                                                              weights);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  dim3 grid((unsigned)tiles, pt_grid_rows((size_t)n));
  interp_gradient_kernel<<<grid, dim3(TILE, TILE_ROWS), 0, stream>>>(batch, weights, probe, object,
                                                                     grad_psi, partial);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  interp_gradient_finish_kernel<<<pt_blocks((size_t)n, PT_WARPS_PER_BLOCK), PT_THREADS, 0,
                                  stream>>>(partial, tiles, n, batch.m, out);
  return cudaGetLastError();
}
