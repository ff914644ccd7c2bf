// common.cuh: constants and scalar helpers shared by every kernel (no standard headers:
// NVRTC has none; the CPU harness gets <cmath> from cuda_emu.h).
#pragma once

#define N_NOTES 78
#define N_FEATURES 80
#define ACT_IDENTITY 0
#define ACT_TANH 1

__device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }

// The cell candidate's activation: identity (the original's) or tanh.
__device__ __forceinline__ float cell_act_f(float x, int act) { return act == ACT_TANH ? tanhf(x) : x; }

// TF32 tensor cores (sm_80+): a float rounded to TF32 (10 mantissa bits, to nearest, ties away
// from zero: cvt.rna), and D += A B for one warp's 16x8x8 tile (mma.sync m16n8k8, fp32
// accumulators). Fragments, with g = lane / 4 and q = lane % 4 (PTX ISA, "Matrix Fragments for
// mma.m16n8k8", .tf32):
//   a[0..3] = A(g, q), A(g + 8, q), A(g, q + 4), A(g + 8, q + 4)      A: 16 x 8 (rows x k)
//   b[0..1] = B(q, g), B(q + 4, g)                                     B: 8 x 8 (k x cols)
//   d[0..3] = D(g, 2q), D(g, 2q + 1), D(g + 8, 2q), D(g + 8, 2q + 1)   D: 16 x 8
// The CPU harness defines both itself (tests/cuda_emu/cuda_emu.h), the mma as a warp collective.
#if !defined(__CUDA_EMU__) && __CUDA_ARCH__ >= 800
__device__ __forceinline__ unsigned to_tf32(float x) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}

__device__ __forceinline__ void mma_tf32_16x8x8(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#elif !defined(__CUDA_EMU__)
// Before sm_80 there are no TF32 tensor cores: the *_tf32 kernels still compile (so does the rest
// of their module) but trap; the cuda backend refuses tf32 on such a GPU.
__device__ __forceinline__ unsigned to_tf32(float) {
  __trap();
  return 0;
}

__device__ __forceinline__ void mma_tf32_16x8x8(float (&)[4], const unsigned (&)[4], const unsigned (&)[2]) { __trap(); }
#endif
