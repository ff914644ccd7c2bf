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
