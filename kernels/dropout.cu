// dropout.cu: every dropout mask of a training batch from one 64-bit seed.
//   dropout_mask_hash   one thread per mask element, a counter-based hash; twin reference.dropout_mask_hash
// Check: python -m pytest tests/test_kernels_dropout.py (CPU harness, bit for bit).
//
// Design: element i of the flat mask buffer (all layers' masks back to back) is kept when
// u_i >= p, where u_i is the top 24 bits of splitmix64(seed + (i + 1) * golden), as a float in
// [0, 1). A counter-based hash needs no generator state: any element can be drawn by any
// thread in any order, and the NumPy twin reproduces it bit for bit. The seed comes from the
// model's generator, so a resumed run draws the same masks.
#include "common.cuh"

__device__ __forceinline__ unsigned long long splitmix64(unsigned long long z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// seed -> masks (n,): 0 or scale (= 1 / (1 - p), computed by the host in float32).
extern "C" __global__ void dropout_mask_hash(unsigned long long seed, float* __restrict__ masks, int n, float p,
                                             float scale) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned long long h = splitmix64(seed + (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL);
  float u = (float)(h >> 40) * (1.0f / 16777216.0f);
  masks[i] = u >= p ? scale : 0.0f;
}
