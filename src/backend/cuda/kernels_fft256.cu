/* 256 x 256 complex FFTs (unnormalised, both directions, in place) in one pass over
 * memory. cuFFT makes this size in two kernels, a row pass and a column pass, each
 * reading and writing every image: 0.296 ms for 384 images on the H100, twice a copy's
 * 0.143 ms. Here a cluster of 8 blocks holds one image in their shared memory (64 KiB
 * each) and the column pass's exchange goes over the cluster's shared memory (Hopper),
 * so the image crosses DRAM once each way.
 *
 * Image x[n][l] (row n, column l), X[k][q] = sum_n sum_l x[n][l] W^(n k + l q), with
 * W = exp(-2 pi i / 256) forward and its conjugate inverse.
 * 1. Block c (rank 0..7) loads rows n = 8 i + c, i = 0..31, into its shared memory.
 * 2. Row DFTs, 256 = 16 x 16: l = t + 16 s, q = a + 16 b:
 *      A[t][a] = W^(t a) sum_s x[t + 16 s] W16^(s a);  R[a + 16 b] = sum_t A[t][a] W16^(t b)
 *    16 threads per row, each 16 values in registers; the transpose between the two
 *    steps goes through the row's own shared memory (swizzled: no bank conflicts).
 * 3. Column DFTs, 256 = 32 (in the block) x 8 (across the cluster): n = 8 i + c,
 *    k = k2 + 32 k1:  W^(n k) = W32^(i k2) W^(c k2) W8^(c k1). Each thread takes one
 *    column: Y_c[k2] = W^(c k2) sum_i R[8 i + c] W32^(i k2), in place.
 * 4. Cluster barrier; block j takes k2 = 4 j .. 4 j + 3 of every column, reads Y_c[k2]
 *    of all 8 blocks and writes X[k2 + 32 k1] = sum_c Y_c[k2] W8^(c k1) to memory.
 * 5. Cluster barrier: no block leaves while another still reads its shared memory.
 * A variant takes the probes and the object and transforms the exit waves, so that
 * they are never written to memory (pt_cuda_launch_fft256_exit_waves).
 * The small DFTs are radix-2 in registers (indices known at compile time); the
 * twiddles are a 256-entry table of sincospif values in shared memory. */
#include <cooperative_groups.h>

#include "backend/cuda/cuda_device_util.h"

namespace cg = cooperative_groups;

#define FFT_N 256
#define FFT_CLUSTER 8                    /* blocks per image */
#define FFT_ROWS (FFT_N / FFT_CLUSTER)   /* rows each block holds: 32 */
#define FFT_THREADS 256

struct fft256_smem {
  float2 rows[FFT_ROWS][FFT_N];
  float2 twiddle[FFT_N]; /* W^j */
};

__device__ __forceinline__ float2 cmul(float2 a, float2 b) {
  return make_float2(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

/* W^e of the direction's sign (the table holds the forward ones). */
template <bool INVERSE>
__device__ __forceinline__ float2 twiddle(const float2 *table, int e) {
  float2 w = table[e & (FFT_N - 1)];
  return INVERSE ? make_float2(w.x, -w.y) : w;
}

/* i's lowest BITS bits reversed (BITS <= 8). */
template <int BITS>
__device__ __forceinline__ int bit_reverse(int i) {
  int r = 0;
#pragma unroll
  for (int k = 0; k < BITS; k++) r |= ((i >> k) & 1) << (BITS - 1 - k);
  return r;
}

__host__ __device__ constexpr int log2_exact(int n) { return n <= 1 ? 0 : 1 + log2_exact(n / 2); }

/* One radix-2 decimation-in-frequency stage of span HALF on v, then the next ones.
 * (A template per stage: with a loop over the stages the compiler kept v in local
 * memory.) */
template <int N, int HALF, bool INVERSE>
struct dif_stages {
  static __device__ __forceinline__ void run(float2 (&v)[N], const float2 *table) {
#pragma unroll
    for (int start = 0; start < N; start += 2 * HALF) {
#pragma unroll
      for (int j = 0; j < HALF; j++) {
        const float2 a = v[start + j], b = v[start + j + HALF];
        v[start + j] = make_float2(a.x + b.x, a.y + b.y);
        const float2 d = make_float2(a.x - b.x, a.y - b.y);
        /* W_(2 HALF)^j = W^(j 256 / (2 HALF)) */
        v[start + j + HALF] = j == 0 ? d : cmul(d, twiddle<INVERSE>(table, j * (FFT_N / 2 / HALF)));
      }
    }
    dif_stages<N, HALF / 2, INVERSE>::run(v, table);
  }
};
template <int N, bool INVERSE>
struct dif_stages<N, 0, INVERSE> {
  static __device__ __forceinline__ void run(float2 (&)[N], const float2 *) {}
};

/* v := DFT_N(v) in natural order (N a power of two <= 256): the radix-2 stages, then
 * the bit-reversal permutation, which with every index known at compile time is only a
 * renaming of registers. */
template <int N, bool INVERSE>
__device__ __forceinline__ void dft_registers(float2 (&v)[N], const float2 *table) {
  dif_stages<N, N / 2, INVERSE>::run(v, table);
  float2 t[N];
#pragma unroll
  for (int i = 0; i < N; i++) t[i] = v[bit_reverse<log2_exact(N)>(i)];
#pragma unroll
  for (int i = 0; i < N; i++) v[i] = t[i];
}

/* Position of element p of a row in step 2's transpose: p ^ (p / 16 mod 16) on the low
 * four bits, so that the 16 threads of a row hit 16 distinct banks both when thread t
 * writes A[t][a] (p = t + 16 a, fixed a) and when thread a reads it (fixed t). */
__device__ __forceinline__ int swizzle(int p) { return p ^ ((p >> 4) & 15); }

template <bool INVERSE>
__device__ __forceinline__ void row_dfts(fft256_smem &s) {
  const int t = threadIdx.x & 15;
  for (int row = threadIdx.x >> 4; row < FFT_ROWS; row += FFT_THREADS / 16) {
    float2 *r = s.rows[row];
    float2 v[16];
#pragma unroll
    for (int i = 0; i < 16; i++) v[i] = r[t + 16 * i];
    dft_registers<16, INVERSE>(v, s.twiddle);
#pragma unroll
    for (int a = 0; a < 16; a++) r[swizzle(t + 16 * a)] = cmul(v[a], twiddle<INVERSE>(s.twiddle, t * a));
    __syncwarp();
#pragma unroll
    for (int i = 0; i < 16; i++) v[i] = r[swizzle(i + 16 * t)]; /* A[i][a = t] */
    __syncwarp(); /* every A of the row is read before the results overwrite them */
    dft_registers<16, INVERSE>(v, s.twiddle);
#pragma unroll
    for (int b = 0; b < 16; b++) r[t + 16 * b] = v[b];
  }
}

/* Where a launch reads and writes. in == out for the plain in-place transform. With
 * EXIT, image b K + k of `in` holds the probe of entry b, mode k (K = batch.n_modes), and
 * the transform is of its exit wave: each row is multiplied by the entry's object patch
 * as it is loaded. */
struct fft256_io {
  const float2 *in;
  float2 *out;
  pt_cuda_batch batch;  /* EXIT only */
  const float2 *object; /* EXIT only */
};

/* 3 blocks per SM (80 registers, no spills) against 2 (128): 0.185 vs 0.238 ms for 384
 * images on the H100. Copying the rows by cp.async instead of through registers made no
 * difference at 3 blocks (0.185 vs 0.184 ms); at 2 it gave 0.194. */
template <bool INVERSE, bool EXIT>
__global__ void __launch_bounds__(FFT_THREADS, 3)
    fft256_kernel(fft256_io io) {
  /* Clusters exist from sm_90 on; the build's other architectures get a stub that
   * pt_cuda_fft256_supported keeps from ever being launched. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  __trap();
#else
  extern __shared__ float4 fft256_smem_raw[];
  fft256_smem &s = *reinterpret_cast<fft256_smem *>(fft256_smem_raw);
  cg::cluster_group cluster = cg::this_cluster();
  const int c = (int)cluster.block_rank();
  const int img = blockIdx.x / FFT_CLUSTER;
  const size_t image = (size_t)img * FFT_N * FFT_N;
  const int col = threadIdx.x; /* FFT_THREADS == FFT_N */

  /* 1 */
  {
    float sn, cs;
    sincospif(-2.f * (float)col / FFT_N, &sn, &cs);
    s.twiddle[col] = make_float2(cs, sn);
  }
  if (EXIT) {
    const pt_patch p = batch_patch(io.batch, img / io.batch.n_modes);
    const float2 *patch = io.object + (size_t)p.y0 * io.batch.obj_w + p.x0 + col;
#pragma unroll 8
    for (int i = 0; i < FFT_ROWS; i++) {
      const int row = FFT_CLUSTER * i + c;
      s.rows[i][col] = cmul(io.in[image + (size_t)row * FFT_N + col],
                            __ldg(patch + (size_t)row * io.batch.obj_w));
    }
  } else {
#pragma unroll 8
    for (int i = 0; i < FFT_ROWS; i++)
      s.rows[i][col] = io.in[image + (size_t)(FFT_CLUSTER * i + c) * FFT_N + col];
  }
  __syncthreads();
  /* 2 */
  row_dfts<INVERSE>(s);
  __syncthreads();
  /* 3 */
  {
    float2 v[FFT_ROWS];
#pragma unroll
    for (int i = 0; i < FFT_ROWS; i++) v[i] = s.rows[i][col];
    dft_registers<FFT_ROWS, INVERSE>(v, s.twiddle);
#pragma unroll
    for (int k2 = 0; k2 < FFT_ROWS; k2++) s.rows[k2][col] = cmul(v[k2], twiddle<INVERSE>(s.twiddle, c * k2));
  }
  /* 4 */
  cluster.sync();
  constexpr int k2_per_block = FFT_ROWS / FFT_CLUSTER;
#pragma unroll
  for (int j = 0; j < k2_per_block; j++) {
    const int k2 = c * k2_per_block + j;
    float2 v[FFT_CLUSTER];
#pragma unroll
    for (int b = 0; b < FFT_CLUSTER; b++) v[b] = *cluster.map_shared_rank(&s.rows[k2][col], b);
    dft_registers<FFT_CLUSTER, INVERSE>(v, s.twiddle);
#pragma unroll
    for (int k1 = 0; k1 < FFT_CLUSTER; k1++)
      io.out[image + (size_t)(k2 + FFT_ROWS * k1) * FFT_N + col] = v[k1];
  }
  /* 5 */
  cluster.sync();
#endif
}

template <bool INVERSE, bool EXIT>
static cudaError_t allow_shared_memory() {
  return cudaFuncSetAttribute(fft256_kernel<INVERSE, EXIT>,
                              cudaFuncAttributeMaxDynamicSharedMemorySize,
                              (int)sizeof(fft256_smem));
}

/* A Hopper or later device, and code for it built from sm_90 or later (a build for older
 * architectures only runs on it by JIT from their PTX, which holds the stub). Once per
 * plan rather than per launch, it also lets the kernels have more than the 48 KiB of
 * shared memory a block gets without asking. */
extern "C" int pt_cuda_fft256_supported(int device) {
  int major = 0, current = -1;
  cudaFuncAttributes attributes;
  int ok = cudaGetDevice(&current) == cudaSuccess && cudaSetDevice(device) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) ==
               cudaSuccess &&
           cudaFuncGetAttributes(&attributes, fft256_kernel<false, false>) == cudaSuccess &&
           major >= 9 && attributes.ptxVersion >= 90 &&
           allow_shared_memory<false, false>() == cudaSuccess &&
           allow_shared_memory<true, false>() == cudaSuccess &&
           allow_shared_memory<false, true>() == cudaSuccess;
  if (current >= 0) (void)cudaSetDevice(current);
  (void)cudaGetLastError();
  return ok;
}

template <bool INVERSE, bool EXIT>
static cudaError_t launch(const fft256_io &io, int count, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  /* the cluster's shape at launch: __cluster_dims__ would not compile for sm_80 */
  cudaLaunchAttribute cluster;
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = FFT_CLUSTER;
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3((unsigned)count * FFT_CLUSTER);
  config.blockDim = dim3(FFT_THREADS);
  config.dynamicSmemBytes = sizeof(fft256_smem);
  config.stream = stream;
  config.attrs = &cluster;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, fft256_kernel<INVERSE, EXIT>, io);
}

extern "C" cudaError_t pt_cuda_launch_fft256(ptyc_c32 *data, int count, int inverse,
                                             cudaStream_t stream) {
  fft256_io io = {};
  io.in = io.out = reinterpret_cast<float2 *>(data);
  return inverse ? launch<true, false>(io, count, stream) : launch<false, false>(io, count, stream);
}

extern "C" cudaError_t pt_cuda_launch_fft256_exit_waves(pt_cuda_batch batch,
                                                        const ptyc_c32 *object,
                                                        const ptyc_c32 *probes, ptyc_c32 *psi,
                                                        cudaStream_t stream) {
  fft256_io io = {reinterpret_cast<const float2 *>(probes), reinterpret_cast<float2 *>(psi), batch,
                  reinterpret_cast<const float2 *>(object)};
  return launch<false, true>(io, batch.n * batch.n_modes, stream);
}
