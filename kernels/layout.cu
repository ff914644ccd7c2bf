// layout.cu: moves between the time stack's layout and the pitch stack's.
//   pitch_inputs    last time layer's output + previous note's target -> pitch layout; twin reference.pitch_inputs
//   pitch_targets   the targets in the pitch layout;                                  twin reference.pitch_targets
//   pitch_to_time   gradient back from the pitch layout to the time layout;           twin reference.pitch_to_time
// Check: python -m pytest tests/test_kernels_layout.py (CPU harness, bit for bit).
//
// Time layout: (T-1, B*78, H), row b*78 + n. Pitch layout: (78, B*(T-1), H), row b*(T-1) + t.
// One thread per output element; these are pure copies (bandwidth-bound, tiny).
#include "common.cuh"

// time_out (L, B*78, Ht), S (B, L+1, 78, 2) uint8 -> out (78, B*L, Ht+2):
// [time output of note n at step t, target (play, artic) of note n-1 at step t+1 ([0,0] for n=0)].
extern "C" __global__ void pitch_inputs(const float* __restrict__ time_out,
                                        const unsigned char* __restrict__ S,
                                        float* __restrict__ out, int B, int L, int Ht) {
  int W = Ht + 2;
  long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;  // over (n, b, t, k)
  if (idx >= (long long)N_NOTES * B * L * W) return;
  int k = (int)(idx % W);
  int t = (int)((idx / W) % L);
  int b = (int)((idx / ((long long)W * L)) % B);
  int n = (int)(idx / ((long long)W * L * B));
  float v;
  if (k < Ht) {
    v = time_out[((size_t)t * B * N_NOTES + (size_t)b * N_NOTES + n) * Ht + k];
  } else {
    v = n == 0 ? 0.0f : (float)S[(((size_t)b * (L + 1) + t + 1) * N_NOTES + n - 1) * 2 + (k - Ht)];
  }
  out[idx] = v;
}

// S (B, L+1, 78, 2) uint8 -> y (78, B*L, 2) float: the targets in the pitch layout.
extern "C" __global__ void pitch_targets(const unsigned char* __restrict__ S, float* __restrict__ y,
                                         int B, int L) {
  long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;  // over (n, b, t, k)
  if (idx >= (long long)N_NOTES * B * L * 2) return;
  int k = (int)(idx % 2);
  int t = (int)((idx / 2) % L);
  int b = (int)((idx / (2LL * L)) % B);
  int n = (int)(idx / (2LL * L * B));
  y[idx] = (float)S[(((size_t)b * (L + 1) + t + 1) * N_NOTES + n) * 2 + k];
}

// d (78, B*L, Hw) (the pitch stack's input gradient; its first Ht columns) -> out (L, B*78, Ht).
extern "C" __global__ void pitch_to_time(const float* __restrict__ d, float* __restrict__ out,
                                         int B, int L, int Ht, int Hw) {
  long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;  // over (t, b, n, k) of out
  if (idx >= (long long)L * B * N_NOTES * Ht) return;
  int k = (int)(idx % Ht);
  int n = (int)((idx / Ht) % N_NOTES);
  int b = (int)((idx / ((long long)Ht * N_NOTES)) % B);
  int t = (int)(idx / ((long long)Ht * N_NOTES * B));
  out[idx] = d[((size_t)n * B * L + (size_t)b * L + t) * Hw + k];
}
