// cuda_emu.h: the CUDA built-ins for g++, so kernels/*.cu run on the CPU in CI.
//
// Model: blocks run one after another; the threads of a block are cooperative fibers
// (ucontext) that switch only at __syncthreads, warp collectives and exit. A schedule number
// picks the order in which runnable fibers go (0: lane order, 1: reverse), so a missing
// barrier shows up as different results between schedules. Shared memory comes from a
// per-block arena filled with 0xFF bytes (NaN as float) before each block, so reading what
// no thread wrote shows up too. Global memory errors are AddressSanitizer's job.
// The Python side (emu.py) rewrites `__shared__` declarations into __emu_shared() calls.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ucontext.h>

#define __CUDA_EMU__ 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __constant__ static

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef dim3 uint3;

extern dim3 threadIdx, blockIdx, blockDim, gridDim;
static const int warpSize = 32;

// ---------------------------------------------------------------- math stand-ins
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
template <typename T> inline T __ldg(const T* p) { return *p; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline void __threadfence() {}
inline void __threadfence_block() {}

// ---------------------------------------------------------------- atomics (one fiber runs at a time)
template <typename T> inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
template <typename T> inline T atomicSub(T* p, T v) { T old = *p; *p = old - v; return old; }
template <typename T> inline T atomicExch(T* p, T v) { T old = *p; *p = v; return old; }
template <typename T> inline T atomicMax(T* p, T v) { T old = *p; if (v > old) *p = v; return old; }
template <typename T> inline T atomicMin(T* p, T v) { T old = *p; if (v < old) *p = v; return old; }
template <typename T> inline T atomicCAS(T* p, T cmp, T v) { T old = *p; if (old == cmp) *p = v; return old; }

// ---------------------------------------------------------------- scheduler hooks (emu_runtime.cpp)
void __emu_syncthreads(int line);
void __emu_warp_exchange(int line, const void* value, size_t size, void* slots_out);  // 32 x 8-byte slots
void* __emu_shared(size_t bytes);
void* __emu_dyn_shared();
int __emu_lane();
#define __syncthreads() __emu_syncthreads(__LINE__)
inline void __syncwarp(unsigned = 0xffffffffu) { __emu_warp_exchange(-1, nullptr, 0, nullptr); }

template <typename T> inline T __emu_shfl(T v, int src_lane, int width) {
  static_assert(sizeof(T) <= 8, "shuffle of a type larger than 8 bytes");
  unsigned char slots[32 * 8];
  __emu_warp_exchange(-2, &v, sizeof(T), slots);
  int lane = __emu_lane();
  int base = lane - lane % width;
  int src = base + ((src_lane % width) + width) % width;
  T out;
  memcpy(&out, slots + 8 * src, sizeof(T));
  return out;
}
template <typename T> inline T __shfl_sync(unsigned, T v, int src, int width = 32) {
  return __emu_shfl(v, src, width);
}
template <typename T> inline T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
  int lane = __emu_lane();
  return __emu_shfl(v, (lane % width) ^ mask, width);
}
template <typename T> inline T __shfl_down_sync(unsigned, T v, unsigned d, int width = 32) {
  int lane = __emu_lane() % width;
  int src = lane + (int)d < width ? lane + (int)d : lane;
  return __emu_shfl(v, src, width);
}
template <typename T> inline T __shfl_up_sync(unsigned, T v, unsigned d, int width = 32) {
  int lane = __emu_lane() % width;
  int src = lane - (int)d >= 0 ? lane - (int)d : lane;
  return __emu_shfl(v, src, width);
}
inline unsigned __ballot_sync(unsigned, int pred) {
  int v = pred != 0;
  int slots[32 * 2];
  __emu_warp_exchange(-3, &v, sizeof(v), slots);
  unsigned out = 0;
  for (int l = 0; l < 32; ++l) out |= (slots[2 * l] ? 1u : 0u) << l;
  return out;
}
inline int __any_sync(unsigned m, int pred) { return __ballot_sync(m, pred) != 0; }
inline int __all_sync(unsigned m, int pred) { return __ballot_sync(m, !pred) == 0; }

// ---------------------------------------------------------------- TF32 tensor cores (common.cuh)
// cvt.rna.tf32.f32: keep 10 mantissa bits, round to nearest with ties away from zero (adding
// half of the dropped range to the magnitude bits, then truncating); NaN and Inf pass through.
inline unsigned to_tf32(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  return u;
}

// mma.sync m16n8k8 tf32: a warp collective, as on the hardware (every lane must call it). Each
// lane gathers the whole warp's fragments (layout in common.cuh), then computes its own four
// entries of D: the products of TF32 values are exact in float; they are summed over k in order
// and added to the accumulator.
inline void mma_tf32_16x8x8(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  uint32_t a01[2] = {a[0], a[1]}, a23[2] = {a[2], a[3]}, b01[2] = {b[0], b[1]};
  uint32_t s01[32 * 2], s23[32 * 2], sb[32 * 2];  // per lane: its two 4-byte values
  __emu_warp_exchange(-4, a01, 8, s01);
  __emu_warp_exchange(-4, a23, 8, s23);
  __emu_warp_exchange(-4, b01, 8, sb);
  auto f = [](uint32_t bits) { bits &= 0xffffe000u; float v; memcpy(&v, &bits, 4); return v; };
  auto A = [&](int row, int k) {  // a[i] of lane 4 * (row % 8) + k % 4, i = 2 * (k >= 4) + (row >= 8)
    int lane = 4 * (row % 8) + k % 4, i = 2 * (k >= 4) + (row >= 8);
    return f(i < 2 ? s01[2 * lane + i] : s23[2 * lane + i - 2]);
  };
  auto B = [&](int k, int col) { return f(sb[2 * (4 * col + k % 4) + (k >= 4)]); };
  int lane = __emu_lane(), g = lane / 4, q = lane % 4;
  for (int i = 0; i < 4; ++i) {
    int row = g + 8 * (i / 2), col = 2 * q + i % 2;
    float sum = 0.0f;
    for (int k = 0; k < 8; ++k) sum += A(row, k) * B(k, col);
    d[i] += sum;
  }
}
