// adadelta.cu: gradient clipping per segment and the Adadelta update (MODEL_SPEC section 5).
//   segment_sq_norms   squared L2 norm of each clipping segment, in double; twin reference.segment_sq_norms
//   adadelta_update    clip + Adadelta for every parameter at once;         twin reference.adadelta_update
// Check: python -m pytest tests/test_kernels_adadelta.py (CPU harness). Time: bench/profile_batch.py (GPU).
//
// Design: all parameters live in one flat buffer (and so do their gradients, Eg and Ex), cut
// into segments: each gate block of an LSTM W or b, and out.W, out.b whole. Two launches per
// training step for every parameter together: segment_sq_norms (one block per segment, a
// fixed-order tree in double, so the norm is reproducible) and adadelta_update (one thread per
// element, finding its segment by binary search in the offsets; ~40 segments).
#include "common.cuh"

#define NORM_THREADS 256

// g (n,), offsets (n_seg + 1,) -> sq (n_seg,): squared L2 norm of each segment.
// Grid n_seg blocks of NORM_THREADS threads.
extern "C" __global__ void segment_sq_norms(const float* __restrict__ g, const int* __restrict__ offsets,
                                            double* __restrict__ sq) {
  __shared__ double sums[NORM_THREADS];
  int s = blockIdx.x;
  double acc = 0.0;
  for (int i = offsets[s] + threadIdx.x; i < offsets[s + 1]; i += NORM_THREADS) {
    double v = g[i];
    acc += v * v;
  }
  sums[threadIdx.x] = acc;
  __syncthreads();
  for (int k = NORM_THREADS / 2; k > 0; k /= 2) {
    if (threadIdx.x < k) sums[threadIdx.x] += sums[threadIdx.x + k];
    __syncthreads();
  }
  if (threadIdx.x == 0) sq[s] = sums[0];
}

// In place on w, Eg, Ex (n,): clip g by its segment's norm to max_norm, then Adadelta.
extern "C" __global__ void adadelta_update(float* __restrict__ w, const float* __restrict__ g,
                                           float* __restrict__ Eg, float* __restrict__ Ex,
                                           const int* __restrict__ offsets, const double* __restrict__ sq,
                                           int n_seg, int n, float rho, float eps, float max_norm) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int lo = 0, hi = n_seg - 1;  // the segment s with offsets[s] <= i < offsets[s + 1]
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (offsets[mid] <= i) lo = mid; else hi = mid - 1;
  }
  double norm = sqrt(sq[lo]);
  float scale = norm > 0.0 ? (float)(fmin((double)max_norm, norm) / norm) : 1.0f;
  float gi = g[i] * scale;
  float eg = rho * Eg[i] + (1.0f - rho) * gi * gi;
  float d = -sqrtf((Ex[i] + eps) / (eg + eps)) * gi;
  Eg[i] = eg;
  Ex[i] = rho * Ex[i] + (1.0f - rho) * d * d;
  w[i] += d;
}
