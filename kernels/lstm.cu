// lstm.cu: one LSTM step for R independent rows, forward and backward, each fused with the
// cell; twins: reference.lstm_step_forward / lstm_step_backward (+ the dropout product).
//
// Design. The input projections of all steps are one cuBLAS GEMM per layer (xproj = x W_x^T + b,
// (L, R, 4H)); only the recurrent part goes step by step, one launch per step and direction:
//   forward   pre = xproj_t + h_prev W_h^T          (R, 4H), then the cell
//   backward  dh  = dh_above + dpre_{t+1} W_h       (R, H),  then the cell's backward
// Each is a register-blocked GEMM whose epilogue is the cell, so gate pre-activations and
// recurrent gradients never go through global memory. Both take the layer's whole buffers and
// the step index t, so the host's step loop passes the same arguments every time but t: no
// per-step slicing in Python, whose cost per launch matters at ~800 launches a batch.
// Forward: a thread owns FWD_RPT = 8 rows x 1 unit x the 4 gates of that unit (rows j, H+j,
// 2H+j, 3H+j of W_h): 32 accumulators. Per k it reads 8 h values (the same for the whole warp,
// a broadcast, as two 16-byte loads) and 4 W values (32 consecutive units: no bank conflict)
// for 32 FMAs.
// Backward: a thread owns BWD_RPT = 4 rows x BWD_UPT = 2 units (j = tile + tx + 32u): 8
// accumulators over k in 0..4H; per k one 16-byte broadcast and 2 conflict-free reads for 8
// FMAs. Fewer outputs per thread than forward because there are 4x fewer outputs (R x H, not
// R x 4H) to spread over the GPU: the time stack's step is 125 blocks of 8 warps.
// Both stage k in chunks of TK through shared memory and fetch the next chunk into registers
// while the current one is multiplied (one pair of barriers per chunk). The sums run over k in
// order, one fused multiply-add at a time, like the twin's float32 dot product up to rounding.
// Registers (NVRTC 13, sm_90, ptxas -v): forward 196, backward 62, no spills. Capping the
// forward at 128 (4 blocks per SM) spilled (224 bytes, measured before t moved into the
// kernel), so it is left uncapped: 2 blocks of 4 warps per SM, which holds the time stack's
// 250 blocks (R 780, H 300) in one wave.
// None of this has been timed on a GPU yet: bench/lstm_tiles.py times the tile shapes against
// each other, bench/profile_batch.py the kernels against the rest of a batch.
// Why not a persistent kernel with W_h resident on chip: in the time stack each step is a
// 780 x 300 x 1200 GEMM (0.56 GFLOP), so launch latency (a few us) is small against the step,
// and a grid-wide barrier between steps would tie us to cooperative launch, which the CPU
// harness cannot run.
#include "common.cuh"

// Tile shapes: defaults below; bench/lstm_tiles.py compiles and times variants with -D options.
#define TJ 32        // units per warp: blockDim.x of both kernels
#define TK 16        // k per shared-memory chunk
#ifndef FWD_TY
#define FWD_TY 4     // forward: blockDim.y; a thread owns FWD_RPT rows, a block FWD_ROWS x TJ units
#endif
#ifndef FWD_RPT
#define FWD_RPT 8
#endif
#ifndef BWD_TY
#define BWD_TY 8     // backward: blockDim.y; a thread owns BWD_RPT rows x BWD_UPT units
#endif
#ifndef BWD_RPT
#define BWD_RPT 4
#endif
#ifndef BWD_UPT
#define BWD_UPT 2
#endif
#define FWD_ROWS (FWD_TY * FWD_RPT)
#define FWD_NT (TJ * FWD_TY)  // threads per block
#define BWD_ROWS (BWD_TY * BWD_RPT)
#define BWD_UNITS (TJ * BWD_UPT)
#define BWD_NT (TJ * BWD_TY)
// every thread fetches whole shares of each chunk
static_assert(FWD_ROWS * TK % FWD_NT == 0 && 4 * TJ * TK % FWD_NT == 0, "forward tile");
static_assert(BWD_ROWS * TK % BWD_NT == 0 && BWD_UNITS * TK % BWD_NT == 0, "backward tile");

// The row operand of both products, chunk by chunk: rows r0..r0+ROWS-1, columns k0..k0+TK-1 of
// a row-major (R, K) matrix, into registers (zeros outside), the NT threads of a block sharing
// the ROWS x TK tile: element e is (e / TK, e % TK), so consecutive threads read consecutive k.
template <int ROWS, int NT>
__device__ __forceinline__ void fetch_rows(float (&regs)[ROWS * TK / NT], const float* __restrict__ src,
                                           int R, int K, int r0, int k0, int tid) {
#pragma unroll
  for (int i = 0; i < ROWS * TK / NT; ++i) {
    int e = tid + i * NT, r = r0 + e / TK, k = k0 + e % TK;
    regs[i] = r < R && k < K ? src[(size_t)r * K + k] : 0.0f;
  }
}

// What fetch_rows holds, into shared memory as (k, row): each k's rows are contiguous, so a
// thread's rows come back as 16-byte broadcast loads. The row pitch ROWS + 4 keeps these stores
// at most 2-way bank-conflicted.
template <int ROWS, int NT>
__device__ __forceinline__ void stash_rows(float (*tile)[ROWS + 4], const float (&regs)[ROWS * TK / NT], int tid) {
#pragma unroll
  for (int i = 0; i < ROWS * TK / NT; ++i) {
    int e = tid + i * NT;
    tile[e % TK][e / TK] = regs[i];
  }
}

// Forward W chunk k0..k0+TK-1 into registers (zeros outside, k >= K included): rows g*H + j0..
// of W_h (4H, H) for the 4 gates of TJ units, element e = (gate * TJ + unit, k) as (e / TK, e % TK).
__device__ __forceinline__ void fetch_gate_rows(float (&regs)[4 * TJ * TK / FWD_NT], const float* __restrict__ W_h,
                                                int H, int K, int j0, int k0, int tid) {
#pragma unroll
  for (int i = 0; i < 4 * TJ * TK / FWD_NT; ++i) {
    int e = tid + i * FWD_NT, gj = e / TK, k = k0 + e % TK, j = j0 + gj % TJ;
    regs[i] = j < H && k < K ? W_h[((size_t)(gj / TJ) * H + j) * H + k] : 0.0f;
  }
}

// Forward of step t of a layer, on the layer's whole buffers (so the host passes the same
// arguments at every step but t): gates (L, R, 4H) holds xproj_t in slice t on entry and the
// activated gates [i, f, g, o] on exit (in place: thread (r, j) alone reads and writes the
// entries j, H+j, 2H+j, 3H+j of row r, which saves the (L, R, 4H) projection buffer); h, c
// (L, R, H): slice t written from slice t-1 (zeros at t = 0, where the product is skipped);
// W_h (4H, H); h_out (L, R, H) = h * mask (R, H), written only when use_mask (the next layer
// reads h itself otherwise; mask and h_out are then not touched).
// Block (TJ, FWD_TY); grid (ceil(H / TJ), ceil(R / FWD_ROWS)).
extern "C" __global__ void lstm_step_forward(float* gates, float* __restrict__ h, float* __restrict__ c,
                                             const float* __restrict__ W_h, const float* __restrict__ mask,
                                             float* __restrict__ h_out, int R, int H, int act, int use_mask,
                                             int t) {
  __shared__ __align__(16) float h_s[TK][FWD_ROWS + 4];  // (k, row), see stash_rows
  __shared__ float w_s[TK][4 * TJ + 2];    // (k, gate * TJ + unit): +2 makes the stores conflict-free
  int tx = threadIdx.x, ty = threadIdx.y, tid = ty * TJ + tx;
  int j0 = blockIdx.x * TJ, r0 = blockIdx.y * FWD_ROWS;
  size_t RH = (size_t)R * H;
  const float* h_prev = t > 0 ? h + (t - 1) * RH : h;  // (R, H); not read at t = 0 (K = 0)
  const float* c_prev = t > 0 ? c + (t - 1) * RH : c;
  int K = t > 0 ? H : 0;  // length of the recurrent product
  float h_next[FWD_ROWS * TK / FWD_NT], w_next[4 * TJ * TK / FWD_NT];  // the next chunk, in registers
  float acc[FWD_RPT][4];
  for (int m = 0; m < FWD_RPT; ++m)
    for (int g = 0; g < 4; ++g) acc[m][g] = 0.0f;
  fetch_rows<FWD_ROWS, FWD_NT>(h_next, h_prev, R, K, r0, 0, tid);
  fetch_gate_rows(w_next, W_h, H, K, j0, 0, tid);
  for (int k0 = 0; k0 < K; k0 += TK) {
    stash_rows<FWD_ROWS, FWD_NT>(h_s, h_next, tid);
#pragma unroll
    for (int i = 0; i < 4 * TJ * TK / FWD_NT; ++i) {
      int e = tid + i * FWD_NT;
      w_s[e % TK][e / TK] = w_next[i];
    }
    __syncthreads();
    fetch_rows<FWD_ROWS, FWD_NT>(h_next, h_prev, R, K, r0, k0 + TK, tid);  // overlaps the products
    fetch_gate_rows(w_next, W_h, H, K, j0, k0 + TK, tid);
#pragma unroll
    for (int k = 0; k < TK; ++k) {
      float w[4];
#pragma unroll
      for (int g = 0; g < 4; ++g) w[g] = w_s[k][g * TJ + tx];
#pragma unroll
      for (int m = 0; m < FWD_RPT; ++m) {
        float hv = h_s[k][ty * FWD_RPT + m];
#pragma unroll
        for (int g = 0; g < 4; ++g) acc[m][g] += hv * w[g];
      }
    }
    __syncthreads();
  }
  int j = j0 + tx;
#pragma unroll
  for (int m = 0; m < FWD_RPT; ++m) {
    int r = r0 + ty * FWD_RPT + m;
    if (r < R && j < H) {  // a guard, not a break: the loop unrolls and acc stays in registers
      float* gt = gates + (t * (size_t)R + r) * 4 * H;  // xproj_t on entry, the gates on exit
      float i_g = sigmoid_f(gt[j] + acc[m][0]);
      float f_g = sigmoid_f(gt[H + j] + acc[m][1]);
      float g_g = cell_act_f(gt[2 * H + j] + acc[m][2], act);
      float o_g = sigmoid_f(gt[3 * H + j] + acc[m][3]);
      size_t rj = (size_t)r * H + j, trj = t * RH + rj;
      float c_new = f_g * (t > 0 ? c_prev[rj] : 0.0f) + i_g * g_g;
      float h_new = o_g * tanhf(c_new);
      c[trj] = c_new;
      h[trj] = h_new;
      gt[j] = i_g;
      gt[H + j] = f_g;
      gt[2 * H + j] = g_g;
      gt[3 * H + j] = o_g;
      if (use_mask) h_out[trj] = h_new * mask[rj];
    }
  }
}

// Backward W chunk k0..k0+TK-1 (of the 4H dimension) into registers (zeros outside): rows k0..
// of W_h, units j0..j0+BWD_UNITS-1, element e = (k, unit) as (e / BWD_UNITS, e % BWD_UNITS).
__device__ __forceinline__ void fetch_unit_cols(float (&regs)[BWD_UNITS * TK / BWD_NT], const float* __restrict__ W_h,
                                                int H, int K, int j0, int k0, int tid) {
#pragma unroll
  for (int i = 0; i < BWD_UNITS * TK / BWD_NT; ++i) {
    int e = tid + i * BWD_NT, k = k0 + e / BWD_UNITS, j = j0 + e % BWD_UNITS;
    regs[i] = j < H && k < K ? W_h[(size_t)k * H + j] : 0.0f;
  }
}

// Backward of step t of a layer, on the layer's whole buffers (the host passes the same
// arguments at every step but t and the dc pair). dh_above (L, R, H): gradient reaching each
// step's output from above (before the dropout mask: multiplied by mask (R, H) when use_mask);
// gates (L, R, 4H): slices after t already hold their dpre, and step t+1's (when t + 1 < L)
// reaches h_t through the recurrence (dpre_{t+1} W_h, W_h (4H, H)); slice t holds this step's
// activated gates and is overwritten by its dpre [i, f, g, o] (in place, as in the forward
// kernel, so the backward pass needs no second (L, R, 4H) buffer). c (L, R, H): the cells
// (zeros before step 0). dc_next (R, H): from step t+1's cell -> dc_prev (R, H).
// Block (TJ, BWD_TY); grid (ceil(H / BWD_UNITS), ceil(R / BWD_ROWS)).
extern "C" __global__ void lstm_step_backward(const float* __restrict__ dh_above, float* gates,
                                              const float* __restrict__ W_h, const float* __restrict__ c,
                                              const float* __restrict__ mask, int R, int H, int act,
                                              int use_mask, int L, const float* __restrict__ dc_next,
                                              float* __restrict__ dc_prev, int t) {
  __shared__ __align__(16) float d_s[TK][BWD_ROWS + 4];  // (k, row) of dpre_next
  __shared__ float w_s[TK][BWD_UNITS];     // (k, unit) of W_h: stored along units, no conflict
  int tx = threadIdx.x, ty = threadIdx.y, tid = ty * TJ + tx;
  int j0 = blockIdx.x * BWD_UNITS, r0 = blockIdx.y * BWD_ROWS;
  size_t RH = (size_t)R * H;
  int K = t + 1 < L ? 4 * H : 0;  // length of the recurrent product; 0 at the last step
  const float* dpre_next = gates + (t + 1) * 4 * RH;  // (R, 4H); read only when K > 0
  float d_next[BWD_ROWS * TK / BWD_NT], w_next[BWD_UNITS * TK / BWD_NT];
  float acc[BWD_RPT][BWD_UPT];
  for (int m = 0; m < BWD_RPT; ++m)
    for (int u = 0; u < BWD_UPT; ++u) acc[m][u] = 0.0f;
  if (K) {
    fetch_rows<BWD_ROWS, BWD_NT>(d_next, dpre_next, R, K, r0, 0, tid);
    fetch_unit_cols(w_next, W_h, H, K, j0, 0, tid);
  }
  for (int k0 = 0; k0 < K; k0 += TK) {
    stash_rows<BWD_ROWS, BWD_NT>(d_s, d_next, tid);
#pragma unroll
    for (int i = 0; i < BWD_UNITS * TK / BWD_NT; ++i) {
      int e = tid + i * BWD_NT;
      w_s[e / BWD_UNITS][e % BWD_UNITS] = w_next[i];
    }
    __syncthreads();
    fetch_rows<BWD_ROWS, BWD_NT>(d_next, dpre_next, R, K, r0, k0 + TK, tid);  // overlaps the products
    fetch_unit_cols(w_next, W_h, H, K, j0, k0 + TK, tid);
#pragma unroll
    for (int k = 0; k < TK; ++k) {
      float w[BWD_UPT];
#pragma unroll
      for (int u = 0; u < BWD_UPT; ++u) w[u] = w_s[k][u * TJ + tx];
#pragma unroll
      for (int m = 0; m < BWD_RPT; ++m) {
        float dv = d_s[k][ty * BWD_RPT + m];
#pragma unroll
        for (int u = 0; u < BWD_UPT; ++u) acc[m][u] += dv * w[u];
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int u = 0; u < BWD_UPT; ++u) {
    int j = j0 + u * TJ + tx;
#pragma unroll
    for (int m = 0; m < BWD_RPT; ++m) {
      int r = r0 + ty * BWD_RPT + m;
      if (r < R && j < H) {  // a guard, not a break: the loops unroll and acc stays in registers
        size_t rj = (size_t)r * H + j, trj = t * RH + rj;
        float* gt = gates + (t * (size_t)R + r) * 4 * H;  // this step's gates, then its dpre
        float i_g = gt[j], f_g = gt[H + j], g_g = gt[2 * H + j], o_g = gt[3 * H + j];
        float tanh_c = tanhf(c[trj]);
        float c_prev = t > 0 ? c[trj - RH] : 0.0f;
        float dh = (use_mask ? dh_above[trj] * mask[rj] : dh_above[trj]) + acc[m][u];
        float dc = dc_next[rj] + dh * o_g * (1.0f - tanh_c * tanh_c);
        float* dp = gt;
        dp[j] = dc * g_g * i_g * (1.0f - i_g);
        dp[H + j] = dc * c_prev * f_g * (1.0f - f_g);
        dp[2 * H + j] = dc * i_g * (act == ACT_TANH ? 1.0f - g_g * g_g : 1.0f);
        dp[3 * H + j] = dh * tanh_c * o_g * (1.0f - o_g);
        dc_prev[rj] = dc * f_g;
      }
    }
  }
}
