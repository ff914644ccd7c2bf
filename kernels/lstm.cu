// lstm.cu: one LSTM step for R independent rows, fused with the cell; twin:
// reference.lstm_step_forward (+ the dropout product of Model._forward).
//
// Design. The input projections of all steps are one cuBLAS GEMM per layer (xproj = x W_x^T + b,
// (L, R, 4H)); only the recurrent part is step by step. One launch per step computes
//   pre = xproj_t + h_prev W_h^T   (R, 4H)
// as a tiled GEMM in which each thread owns one (row r, unit j) and accumulates the four gate
// dot products of that unit (rows j, H+j, 2H+j, 3H+j of W_h), so the cell update follows in
// registers with no second pass over pre: i, f, o = sigmoid, g = act; c = f c_prev + i g;
// h = o tanh(c). It writes h and c (the recurrence), the activated gates (for backward) and
// h_out = h * mask[r, j] (inverted dropout on the way up; written only when use_mask, the
// next layer reads h itself otherwise).
// Why not a persistent kernel with W_h resident on chip: in the time stack each step is a
// 780 x 300 x 1200 GEMM (0.56 GFLOP), so launch latency (a few us) is small against the step,
// and a grid-wide barrier between steps would tie us to cooperative launch, which the CPU
// harness cannot run. The pitch stack (78 short steps, R = B*(T-1)) is the latency-bound part:
// a persistent variant is the next step once measured on a GPU.
// Tiles: TR rows x TJ units per block, k in chunks of TK through shared memory; W_h chunk for
// the 4 gates of TJ units: 4 x TJ x TK floats.
#include "common.cuh"

#define TR 16
#define TJ 16
#define TK 16

// xproj_t (R, 4H), h_prev (R, H), c_prev (R, H), W_h (4H, H), mask (R, H) (read when use_mask)
// -> h (R, H), c (R, H), gates (R, 4H) [i, f, g, o activated], h_out (R, H) (when use_mask).
// gates may be xproj_t itself (in place: thread (r, j) alone reads and writes the entries j,
// H+j, 2H+j, 3H+j of row r), which saves the (L, R, 4H) projection buffer.
// Block (TJ, TR) threads; grid (ceil(H/TJ), ceil(R/TR)).
extern "C" __global__ void lstm_step_forward(const float* xproj_t,
                                             const float* __restrict__ h_prev,
                                             const float* __restrict__ c_prev,
                                             const float* __restrict__ W_h,
                                             const float* __restrict__ mask,
                                             float* __restrict__ h, float* __restrict__ c,
                                             float* gates, float* __restrict__ h_out,
                                             int R, int H, int act, int use_mask) {
  __shared__ float h_tile[TR][TK + 1];
  __shared__ float w_tile[4][TJ][TK + 1];
  int tx = threadIdx.x, ty = threadIdx.y;
  int j = blockIdx.x * TJ + tx;  // hidden unit
  int r = blockIdx.y * TR + ty;  // row
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int k0 = 0; k0 < H; k0 += TK) {
    int hr = blockIdx.y * TR + ty, hk = k0 + tx;
    h_tile[ty][tx] = hr < R && hk < H ? h_prev[(size_t)hr * H + hk] : 0.0f;
    for (int g = 0; g < 4; ++g) {
      int wj = blockIdx.x * TJ + ty, wk = k0 + tx;  // rows of W_h read along k by tx
      w_tile[g][ty][tx] = wj < H && wk < H ? W_h[((size_t)g * H + wj) * H + wk] : 0.0f;
    }
    __syncthreads();
    for (int k = 0; k < TK; ++k) {
      float hv = h_tile[ty][k];
      for (int g = 0; g < 4; ++g) acc[g] += hv * w_tile[g][tx][k];
    }
    __syncthreads();
  }
  if (r >= R || j >= H) return;
  const float* xp = xproj_t + (size_t)r * 4 * H;
  float i_g = sigmoid_f(xp[j] + acc[0]);
  float f_g = sigmoid_f(xp[H + j] + acc[1]);
  float g_g = cell_act_f(xp[2 * H + j] + acc[2], act);
  float o_g = sigmoid_f(xp[3 * H + j] + acc[3]);
  size_t rj = (size_t)r * H + j;
  float c_new = f_g * c_prev[rj] + i_g * g_g;
  float h_new = o_g * tanhf(c_new);
  c[rj] = c_new;
  h[rj] = h_new;
  float* gt = gates + (size_t)r * 4 * H;
  gt[j] = i_g;
  gt[H + j] = f_g;
  gt[2 * H + j] = g_g;
  gt[3 * H + j] = o_g;
  if (use_mask) h_out[rj] = h_new * mask[rj];
}

// Backward of one step, elementwise over (r, j); twin: reference.lstm_step_backward (whose
// dh_prev = dpre W_h the host computes with one cuBLAS GEMM per step).
// dh_above (R, H): gradient reaching this step's output from above (before the dropout
// mask: the kernel multiplies by mask[r, j] when use_mask); dh_rec (R, H): from the next step
// (dpre_{t+1} W_h); dc_next (R, H): from the next step's cell.
// -> dpre (R, 4H) for gates i, f, g, o; dc_prev (R, H). dpre may be gates itself (in place,
// as in the forward kernel), so the backward pass needs no second (L, R, 4H) buffer.
extern "C" __global__ void lstm_step_backward(const float* __restrict__ dh_above,
                                              const float* __restrict__ dh_rec,
                                              const float* __restrict__ dc_next,
                                              const float* gates,
                                              const float* __restrict__ c,
                                              const float* __restrict__ c_prev,
                                              const float* __restrict__ mask,
                                              float* dpre, float* __restrict__ dc_prev,
                                              int R, int H, int act, int use_mask) {
  int idx = blockIdx.x * blockDim.x + threadIdx.x;  // over (r, j)
  if (idx >= R * H) return;
  int r = idx / H, j = idx % H;
  const float* gt = gates + (size_t)r * 4 * H;
  float i_g = gt[j], f_g = gt[H + j], g_g = gt[2 * H + j], o_g = gt[3 * H + j];
  float tanh_c = tanhf(c[idx]);
  float dh = (use_mask ? dh_above[idx] * mask[idx] : dh_above[idx]) + dh_rec[idx];
  float dc = dc_next[idx] + dh * o_g * (1.0f - tanh_c * tanh_c);
  float* dp = dpre + (size_t)r * 4 * H;
  dp[j] = dc * g_g * i_g * (1.0f - i_g);
  dp[H + j] = dc * c_prev[idx] * f_g * (1.0f - f_g);
  dp[2 * H + j] = dc * i_g * (act == ACT_TANH ? 1.0f - g_g * g_g : 1.0f);
  dp[3 * H + j] = dh * tanh_c * o_g * (1.0f - o_g);
  dc_prev[idx] = dc * f_g;
}
