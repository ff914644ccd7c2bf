// sample.cu: generation on the device, the pitch stack over the 78 notes of one step with sampling.
//   pitch_sweep   one block per piece: every pitch layer, the output layer and the sampling of all
//                 78 notes, then the adaptive conservativity; twin backends/pitch_sweep.pitch_sweep
// Check: python -m pytest tests/test_kernels_sample.py (harness, bit for bit against the twin);
// time: python bench/generate.py (GPU). The step's features come from features.cu (note_inputs_at).
//
// Design. Generation is 1280 steps x 78 dependent note decisions: launch latency, not
// arithmetic, decides its speed. Per time step the host issues a handful of launches (features,
// the time layers' GEMM + step kernel, one GEMM for the time part of pitch layer 0) and then ONE
// launch of pitch_sweep, in which one block per piece runs all 78 notes x all pitch layers x
// the sampling, with the hidden states in shared memory and __syncthreads between phases: no
// launch and no host round trip per note. The weights (a few hundred KB) stay in L2 across notes;
// they are more than L1 holds (the original sizes: 284 KB a step), so each note's dot products
// wait on L2: see dot_add for how the loads are kept in flight.
// Exactness: every dot product adds its terms in the same order as the CPU sweep (input
// columns in order, then recurrent columns in order), the module is compiled with --fmad=false,
// and the sampling rule is evaluated in double exactly as on the CPU:
//   play = U1 < pow((double)P0, cons), artic = play && U2 < (double)P1,
// so on the CPU harness the choices are bit-identical to numba's; on a GPU, expf/tanhf differ
// from glibc's by an ulp or two, which can flip a choice only when U lies within ~1e-7 of its
// threshold (see tests/test_cuda_backend.py for how often that happens).
#include "common.cuh"

#define MAX_PITCH_LAYERS 4
#define MAX_PITCH_H 256

// acc + sum over m < n of w[m * stride] * x[m], added one term at a time in m's order (the CPU
// sweep's order; the module has no fused multiply-adds). The weights come from L2 (more than L1
// holds), so they are loaded DOT_CHUNK at a time before any of their adds: a warp has DOT_CHUNK
// loads in flight, also in the last, partial chunk (a plain unrolled loop leaves its remainder
// to a one-load-at-a-time loop).
#define DOT_CHUNK 16
__device__ __forceinline__ float dot_add(float acc, const float* __restrict__ w, int stride, const float* x, int n) {
  for (int m0 = 0; m0 < n; m0 += DOT_CHUNK) {
    float wv[DOT_CHUNK];
#pragma unroll
    for (int i = 0; i < DOT_CHUNK; ++i) wv[i] = m0 + i < n ? w[(size_t)(m0 + i) * stride] : 0.0f;
#pragma unroll
    for (int i = 0; i < DOT_CHUNK; ++i)
      if (m0 + i < n) acc += wv[i] * x[m0 + i];
  }
  return acc;
}

__device__ double threshold_d(double p0, double cons) {
  if (p0 == 0.0) return cons > 0.0 ? 0.0 : (cons == 0.0 ? 1.0 : 1.0 / 0.0);
  return pow(p0, cons);
}

// pitch0_in (K, 78, 4H0): time part of pitch layer 0's projection + its bias.
// prev_wT (2, 4H0); sizes (L,); wxT/whT/biases flat with offsets wx_at/wh_at/b_at (L,) as in
// params.HostWeights; out_wT (H_last, 2); out_b (2,); uniforms (K, 78, 2) double;
// cons (K,) double, updated in place when adaptive (MODEL_SPEC 7).
// -> choices (K, 78, 2) uint8, probabilities (K, 78, 2).
// Grid K blocks; block >= 4 * max(H) threads (a multiple of 32).
extern "C" __global__ void pitch_sweep(const float* __restrict__ pitch0_in, const float* __restrict__ prev_wT,
                                       const long long* __restrict__ sizes, const float* __restrict__ wxT,
                                       const long long* __restrict__ wx_at, const float* __restrict__ whT,
                                       const long long* __restrict__ wh_at, const float* __restrict__ biases,
                                       const long long* __restrict__ b_at, const float* __restrict__ out_wT,
                                       const float* __restrict__ out_b, const double* __restrict__ uniforms,
                                       double* __restrict__ cons, unsigned char* __restrict__ choices,
                                       float* __restrict__ probabilities, int n_layers, int act, int adaptive) {
  __shared__ float hidden[MAX_PITCH_LAYERS][MAX_PITCH_H];
  __shared__ float cells[MAX_PITCH_LAYERS][MAX_PITCH_H];
  __shared__ float gates[4 * MAX_PITCH_H];
  __shared__ float prev[2];
  int k = blockIdx.x, j = threadIdx.x;
  for (int l = 0; l < n_layers; ++l) {
    for (int m = j; m < MAX_PITCH_H; m += blockDim.x) {
      hidden[l][m] = 0.0f;
      cells[l][m] = 0.0f;
    }
  }
  if (j < 2) prev[j] = 0.0f;
  __syncthreads();
  const int last = n_layers - 1;
  for (int n = 0; n < N_NOTES; ++n) {
    for (int l = 0; l < n_layers; ++l) {
      int H = (int)sizes[l], G = 4 * H;
      if (j < G) {
        float acc;
        if (l == 0) {
          acc = pitch0_in[((size_t)k * N_NOTES + n) * G + j];
          for (int m = 0; m < 2; ++m) acc += prev_wT[m * G + j] * prev[m];
        } else {
          acc = biases[b_at[l] + j];
          int n_in = (int)sizes[l - 1];
          acc = dot_add(acc, wxT + wx_at[l] + j, G, hidden[l - 1], n_in);
        }
        gates[j] = dot_add(acc, whT + wh_at[l] + j, G, hidden[l], H);
      }
      __syncthreads();
      if (j < H) {
        float i_g = sigmoid_f(gates[j]);
        float f_g = sigmoid_f(gates[H + j]);
        float g_g = cell_act_f(gates[2 * H + j], act);
        float o_g = sigmoid_f(gates[3 * H + j]);
        float c = f_g * cells[l][j] + i_g * g_g;
        cells[l][j] = c;
        hidden[l][j] = o_g * tanhf(c);
      }
      __syncthreads();
    }
    if (j == 0) {
      int H = (int)sizes[last];
      float z0 = dot_add(out_b[0], out_wT, 2, hidden[last], H);
      float z1 = dot_add(out_b[1], out_wT + 1, 2, hidden[last], H);
      float p0 = sigmoid_f(z0), p1 = sigmoid_f(z1);
      size_t at = ((size_t)k * N_NOTES + n) * 2;
      probabilities[at] = p0;
      probabilities[at + 1] = p1;
      bool play = uniforms[at] < threshold_d((double)p0, cons[k]);
      bool artic = play && uniforms[at + 1] < (double)p1;
      choices[at] = play ? 1 : 0;
      choices[at + 1] = artic ? 1 : 0;
      prev[0] = play ? 1.0f : 0.0f;
      prev[1] = artic ? 1.0f : 0.0f;
    }
    __syncthreads();
  }
  if (j == 0 && adaptive) {  // MODEL_SPEC 7, in double as generate.next_conservativity
    int playing = 0;
    for (int n = 0; n < N_NOTES; ++n) playing += choices[((size_t)k * N_NOTES + n) * 2];
    double c = cons[k];
    cons[k] = playing < 2 ? (c > 1.0 ? 1.0 : c) - 0.02 : c + (1.0 - c) * 0.3;
  }
}
