// features.cu: the 80 note input features on the device (MODEL_SPEC section 2).
//   note_inputs      a training batch's features in the time stack's layout; twin reference.note_inputs
//   note_inputs_at   K states, each at its own bar position (generation);      twin reference.note_inputs_at
// Check: python -m pytest tests/test_kernels_features.py (CPU harness, bit for bit).
//
// Design: one thread per (step, piece, note) writes that note's 80 features straight into the
// time stack's layout (T-1, B*78, 80), so no transpose follows. The beat inputs read each step's
// bar position from P: the step index in the segment as the original (meters "original"), the
// steps since the bar line with meters "all" (MODEL_SPEC section 2 and biaxial_cu/midi.py). The 12 pitch-class counts are
// recomputed per thread from the 78 play bits of its step (78 byte loads, cached): cheaper
// than a second pass, and the whole kernel is a few microseconds against a training batch.
#include "common.cuh"

// The 80 features of note n of one state (78, 2) at bar position t (MODEL_SPEC section 2).
__device__ void note_features(const unsigned char* state, int n, int t, float* x) {
  int pc = n % 12;
  x[0] = (float)n;
  for (int k = 0; k < 12; ++k) x[1 + k] = k == pc ? 1.0f : 0.0f;
  for (int i = -12; i <= 12; ++i) {
    int m = n + i;
    bool inside = m >= 0 && m < N_NOTES;
    x[13 + 2 * (i + 12)] = inside ? (float)state[2 * m] : 0.0f;
    x[14 + 2 * (i + 12)] = inside ? (float)state[2 * m + 1] : 0.0f;
  }
  float counts[12];
  for (int k = 0; k < 12; ++k) counts[k] = 0.0f;
  for (int m = 0; m < N_NOTES; ++m) counts[m % 12] += (float)state[2 * m];
  for (int k = 0; k < 12; ++k) x[63 + k] = counts[(pc + k) % 12];
  for (int k = 0; k < 4; ++k) x[75 + k] = ((t >> k) & 1) ? 1.0f : -1.0f;
  x[79] = 0.0f;
}

// S (B, T, 78, 2) uint8, P (B, T) int32 bar positions -> X (T-1, B*78, 80) float: features of
// steps 0..T-2 of each piece.
extern "C" __global__ void note_inputs(const unsigned char* __restrict__ S, const int* __restrict__ P,
                                       float* __restrict__ X, int B, int T) {
  int idx = blockIdx.x * blockDim.x + threadIdx.x;  // over (t, b, n)
  if (idx >= (T - 1) * B * N_NOTES) return;
  int n = idx % N_NOTES;
  int b = (idx / N_NOTES) % B;
  int t = idx / (N_NOTES * B);
  size_t step = (size_t)b * T + t;
  note_features(S + step * N_NOTES * 2, n, P[step], X + (size_t)idx * N_FEATURES);
}

// states (K, 78, 2) uint8, P (K,) int32 each piece's bar position -> X (K*78, 80): generation's
// features.
extern "C" __global__ void note_inputs_at(const unsigned char* __restrict__ states, const int* __restrict__ P,
                                          float* __restrict__ X, int K) {
  int idx = blockIdx.x * blockDim.x + threadIdx.x;  // over (k, n)
  if (idx >= K * N_NOTES) return;
  int k = idx / N_NOTES;
  note_features(states + (size_t)k * N_NOTES * 2, idx % N_NOTES, P[k], X + (size_t)idx * N_FEATURES);
}
