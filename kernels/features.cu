// features.cu: note_inputs on the device (MODEL_SPEC section 2), twin: features.note_inputs
// followed by reference.time_inputs.
//
// Design: one thread per (step, piece, note) writes that note's 80 features straight into the
// time stack's layout (T-1, B*78, 80), so no transpose follows. The 12 pitch-class counts are
// recomputed per thread from the 78 play bits of its step (78 byte loads, cached): cheaper
// than a second pass, and the whole kernel is a few microseconds against a training batch.
#include "common.cuh"

// S (B, T, 78, 2) uint8 -> X (T-1, B*78, 80) float: features of steps 0..T-2 of each piece,
// step index counted from 0 at the start of the segment.
extern "C" __global__ void note_inputs(const unsigned char* __restrict__ S, float* __restrict__ X,
                                       int B, int T) {
  int idx = blockIdx.x * blockDim.x + threadIdx.x;  // over (t, b, n)
  int L = T - 1;
  if (idx >= L * B * N_NOTES) return;
  int n = idx % N_NOTES;
  int b = (idx / N_NOTES) % B;
  int t = idx / (N_NOTES * B);
  const unsigned char* state = S + ((size_t)b * T + t) * N_NOTES * 2;  // (78, 2)
  float* x = X + (size_t)idx * N_FEATURES;                            // (80,)
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
