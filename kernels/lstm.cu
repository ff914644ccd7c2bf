// lstm.cu: one LSTM step for R independent rows, forward and backward, each fused with the cell.
//   lstm_step_forward         fp32 register-blocked recurrent product + cell (+ dropout);  twin reference.lstm_step_forward
//   lstm_step_backward        fp32, dh from the next step's dpre + the cell's backward;    twin reference.lstm_step_backward
//   lstm_step_forward_tf32    the same on TF32 tensor cores (mma.sync m16n8k8);            twin reference.lstm_step_forward_tf32
//   lstm_step_backward_tf32   the same on TF32 tensor cores;                               twin reference.lstm_step_backward_tf32
//   tile variants: backends/cuda/kernels.py LSTM_*_TILES (compiled with -D; the first of each list is the default below)
// Check: python -m pytest tests/test_kernels_lstm.py tests/test_kernels_resources.py (CPU harness, NVRTC);
// time: python bench/lstm_tiles.py and bench/profile_batch.py (GPU).
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
// Backward: a thread owns BWD_RPT = 12 rows x BWD_UPT = 1 unit (j = tile + tx + 32u): 12
// accumulators over k in 0..4H; per k three 16-byte broadcasts and 1 conflict-free read for 12
// FMAs. A block of 4 warps covers 48 rows x 32 units, smaller than the forward's 32 x 128 (32
// units x 4 gates) because there are 4x fewer outputs (R x H, not R x 4H) to spread over the
// GPU: the time stack's step is 170 blocks, so every SM of a 132-SM GPU (H100, H200) has one.
// Both stage k in chunks (TK = 16 forward, BWD_TK = 64 backward) through shared memory and fetch
// the next chunk into registers while the current one is multiplied (one pair of barriers per
// chunk). The sums run over k in order, one fused multiply-add at a time, like the twin's float32
// dot product up to rounding (the chunk length does not change the order).
// Registers (NVRTC 13.5; tests/test_kernels_resources.py reads them from the cubins and checks
// that no kernel spills): forward 196 at sm_80 and sm_90, backward 244 at sm_80 and 251 at sm_90.
// Both are left uncapped: 2 blocks of 4 warps fit an SM, which holds a time-stack step's 250
// forward and 170 backward blocks (R 780, H 300) in one wave on 132 SMs.
// None of this has been timed on a GPU yet: bench/lstm_tiles.py times the tile shapes against
// each other, bench/profile_batch.py the kernels against the rest of a batch.
// The *_tf32 variants at the end (Model(tf32=True)) do the same steps with the recurrent
// product on TF32 tensor cores. The two numbers for a time-stack step (R 780, H 300): 0.56 GFLOP,
// 8.4 us at the fp32 peak (67 TFLOP/s), ~2 us on TF32 mma.sync; and what the tiles pull through
// L2 per step (each block reads its rows' operand and its units' W_h rows for the whole k; the
// blocks at the edges only the rows and units they have):
//   forward   fp32 (32 rows x 32 units) 250 blocks 45 MB    tf32 (64 rows x 16 units) 247 blocks 37 MB
//   backward  fp32 (48 rows x 32 units) 170 blocks 62 MB    tf32 (48 rows x 32 units) 170 blocks 62 MB
// which at an L2 bandwidth of 6-12 TB/s is 3-10 us. Larger backward tiles pull less (64 x 64:
// 37 MB) but leave SMs idle (65 blocks). No TF32 tile (rows come in 16s) pulls less than 48 x 32
// and still gives a time-stack step 132 blocks; the fp32 ones that do (58-61 MB) lose the
// 16-byte broadcasts (rows per thread not a multiple of 4) or spill unless their chunks are
// shorter than 64 k. A block that prefetches one chunk ahead also waits about one L2
// latency (~0.3 us) per chunk, so a step costs at least (chunks) x (latency) unless enough blocks
// share an SM: the fp32 backward with 16-k chunks (75 of them, 1-2 blocks per SM) would take
// over 20 us a step that way. The backward kernels therefore fetch long chunks: 64 k (19 chunks)
// fp32, 48 k (25 chunks) TF32, whose 3 warps share out multiples of 24 k evenly (72 and 96
// spill at sm_80); the forward ones, two blocks per SM over 19 chunks of 16, stay at 16.
// bench/lstm_tiles.py sweeps these trade-offs; none of it is measured yet.

#include "common.cuh"

// Tile shapes: defaults below; bench/lstm_tiles.py compiles and times variants with -D options.
#define TJ 32        // units per warp: blockDim.x of both kernels
#ifndef TK
#define TK 16        // k per shared-memory chunk (fp32 kernels)
#endif
#ifndef FWD_TY
#define FWD_TY 4     // forward: blockDim.y; a thread owns FWD_RPT rows, a block FWD_ROWS x TJ units
#endif
#ifndef FWD_RPT
#define FWD_RPT 8
#endif
#ifndef BWD_TY
#define BWD_TY 4     // backward: blockDim.y; a thread owns BWD_RPT rows x BWD_UPT units
#endif
#ifndef BWD_RPT
#define BWD_RPT 12
#endif
#ifndef BWD_UPT
#define BWD_UPT 1
#endif
#ifndef BWD_TK
#define BWD_TK 64    // backward: k per chunk (its product runs over 4H; see the note on latency above)
#endif
#define FWD_ROWS (FWD_TY * FWD_RPT)
#define FWD_NT (TJ * FWD_TY)  // threads per block
#define BWD_ROWS (BWD_TY * BWD_RPT)
#define BWD_UNITS (TJ * BWD_UPT)
#define BWD_NT (TJ * BWD_TY)
// every thread fetches whole shares of each chunk
static_assert(FWD_ROWS * TK % FWD_NT == 0 && 4 * TJ * TK % FWD_NT == 0, "forward tile");
static_assert(BWD_ROWS * BWD_TK % BWD_NT == 0 && BWD_UNITS * BWD_TK % BWD_NT == 0, "backward tile");

// The row operand of both products, chunk by chunk: rows r0..r0+ROWS-1, columns k0..k0+KC-1 of
// a row-major (R, K) matrix, into registers (zeros outside), the NT threads of a block sharing
// the ROWS x KC tile: element e is (e / KC, e % KC), so consecutive threads read consecutive k.
template <int ROWS, int NT, int KC = TK>
__device__ __forceinline__ void fetch_rows(float (&regs)[ROWS * KC / NT], const float* __restrict__ src,
                                           int R, int K, int r0, int k0, int tid) {
#pragma unroll
  for (int i = 0; i < ROWS * KC / NT; ++i) {
    int e = tid + i * NT, r = r0 + e / KC, k = k0 + e % KC;
    regs[i] = r < R && k < K ? src[(size_t)r * K + k] : 0.0f;
  }
}

// What fetch_rows holds, into shared memory as (k, row): each k's rows are contiguous, so a
// thread's rows come back as 16-byte broadcast loads. The row pitch ROWS + 4 keeps these stores
// at most 2-way bank-conflicted.
template <int ROWS, int NT, int KC = TK>
__device__ __forceinline__ void stash_rows(float (*tile)[ROWS + 4], const float (&regs)[ROWS * KC / NT], int tid) {
#pragma unroll
  for (int i = 0; i < ROWS * KC / NT; ++i) {
    int e = tid + i * NT;
    tile[e % KC][e / KC] = regs[i];
  }
}

// Forward W chunk k0..k0+KC-1 into registers (zeros outside, k >= K included): rows g*H + j0..
// of W_h (4H, H) for the 4 gates of UNITS units, element e = (gate * UNITS + unit, k) as (e / KC, e % KC).
template <int UNITS, int NT, int KC = TK>
__device__ __forceinline__ void fetch_gate_rows(float (&regs)[4 * UNITS * KC / NT], const float* __restrict__ W_h,
                                                int H, int K, int j0, int k0, int tid) {
#pragma unroll
  for (int i = 0; i < 4 * UNITS * KC / NT; ++i) {
    int e = tid + i * NT, gj = e / KC, k = k0 + e % KC, j = j0 + gj % UNITS;
    regs[i] = j < H && k < K ? W_h[((size_t)(gj / UNITS) * H + j) * H + k] : 0.0f;
  }
}

// The cell of row r, unit j at step t (forward): pre[g] = xproj_t + the recurrent product of
// gate g. gt: row r of the step's gates (xproj_t on entry, the activated gates on exit).
__device__ __forceinline__ void cell_forward(float* gt, float* __restrict__ h, float* __restrict__ c,
                                             const float* __restrict__ mask, float* __restrict__ h_out,
                                             size_t RH, int r, int j, int H, int t, const float (&pre)[4], int act,
                                             int use_mask) {
  float i_g = sigmoid_f(gt[j] + pre[0]);
  float f_g = sigmoid_f(gt[H + j] + pre[1]);
  float g_g = cell_act_f(gt[2 * H + j] + pre[2], act);
  float o_g = sigmoid_f(gt[3 * H + j] + pre[3]);
  size_t rj = (size_t)r * H + j, trj = t * RH + rj;
  float c_new = f_g * (t > 0 ? c[trj - RH] : 0.0f) + i_g * g_g;
  float h_new = o_g * tanhf(c_new);
  c[trj] = c_new;
  h[trj] = h_new;
  gt[j] = i_g;
  gt[H + j] = f_g;
  gt[2 * H + j] = g_g;
  gt[3 * H + j] = o_g;
  if (use_mask) h_out[trj] = h_new * mask[rj];
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
  int K = t > 0 ? H : 0;  // length of the recurrent product
  float h_next[FWD_ROWS * TK / FWD_NT], w_next[4 * TJ * TK / FWD_NT];  // the next chunk, in registers
  float acc[FWD_RPT][4];
  for (int m = 0; m < FWD_RPT; ++m)
    for (int g = 0; g < 4; ++g) acc[m][g] = 0.0f;
  fetch_rows<FWD_ROWS, FWD_NT>(h_next, h_prev, R, K, r0, 0, tid);
  fetch_gate_rows<TJ, FWD_NT>(w_next, W_h, H, K, j0, 0, tid);
  for (int k0 = 0; k0 < K; k0 += TK) {
    stash_rows<FWD_ROWS, FWD_NT>(h_s, h_next, tid);
#pragma unroll
    for (int i = 0; i < 4 * TJ * TK / FWD_NT; ++i) {
      int e = tid + i * FWD_NT;
      w_s[e % TK][e / TK] = w_next[i];
    }
    __syncthreads();
    fetch_rows<FWD_ROWS, FWD_NT>(h_next, h_prev, R, K, r0, k0 + TK, tid);  // overlaps the products
    fetch_gate_rows<TJ, FWD_NT>(w_next, W_h, H, K, j0, k0 + TK, tid);
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
    if (r < R && j < H)  // a guard, not a break: the loop unrolls and acc stays in registers
      cell_forward(gates + (t * (size_t)R + r) * 4 * H, h, c, mask, h_out, RH, r, j, H, t, acc[m], act, use_mask);
  }
}

// Backward W chunk k0..k0+KC-1 (of the 4H dimension) into registers (zeros outside): rows k0..
// of W_h, units j0..j0+UNITS-1, element e = (k, unit) as (e / UNITS, e % UNITS).
template <int UNITS, int NT, int KC = TK>
__device__ __forceinline__ void fetch_unit_cols(float (&regs)[UNITS * KC / NT], const float* __restrict__ W_h,
                                                int H, int K, int j0, int k0, int tid) {
#pragma unroll
  for (int i = 0; i < UNITS * KC / NT; ++i) {
    int e = tid + i * NT, k = k0 + e / UNITS, j = j0 + e % UNITS;
    regs[i] = j < H && k < K ? W_h[(size_t)k * H + j] : 0.0f;
  }
}

// The cell's backward for row r, unit j at step t: dh_rec is the recurrent part of dh
// (dpre_{t+1} W_h, column j); gt: row r of the step's gates, overwritten by its dpre.
__device__ __forceinline__ void cell_backward(float* gt, const float* __restrict__ dh_above,
                                              const float* __restrict__ c, const float* __restrict__ mask,
                                              const float* __restrict__ dc_next, float* __restrict__ dc_prev,
                                              size_t RH, int r, int j, int H, int t, float dh_rec, int act,
                                              int use_mask) {
  size_t rj = (size_t)r * H + j, trj = t * RH + rj;
  float i_g = gt[j], f_g = gt[H + j], g_g = gt[2 * H + j], o_g = gt[3 * H + j];
  float tanh_c = tanhf(c[trj]);
  float c_prev = t > 0 ? c[trj - RH] : 0.0f;
  float dh = (use_mask ? dh_above[trj] * mask[rj] : dh_above[trj]) + dh_rec;
  float dc = dc_next[rj] + dh * o_g * (1.0f - tanh_c * tanh_c);
  gt[j] = dc * g_g * i_g * (1.0f - i_g);
  gt[H + j] = dc * c_prev * f_g * (1.0f - f_g);
  gt[2 * H + j] = dc * i_g * (act == ACT_TANH ? 1.0f - g_g * g_g : 1.0f);
  gt[3 * H + j] = dh * tanh_c * o_g * (1.0f - o_g);
  dc_prev[rj] = dc * f_g;
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
  __shared__ __align__(16) float d_s[BWD_TK][BWD_ROWS + 4];  // (k, row) of dpre_next
  __shared__ float w_s[BWD_TK][BWD_UNITS];     // (k, unit) of W_h: stored along units, no conflict
  int tx = threadIdx.x, ty = threadIdx.y, tid = ty * TJ + tx;
  int j0 = blockIdx.x * BWD_UNITS, r0 = blockIdx.y * BWD_ROWS;
  size_t RH = (size_t)R * H;
  int K = t + 1 < L ? 4 * H : 0;  // length of the recurrent product; 0 at the last step
  const float* dpre_next = gates + (t + 1) * 4 * RH;  // (R, 4H); read only when K > 0
  float d_next[BWD_ROWS * BWD_TK / BWD_NT], w_next[BWD_UNITS * BWD_TK / BWD_NT];
  float acc[BWD_RPT][BWD_UPT];
  for (int m = 0; m < BWD_RPT; ++m)
    for (int u = 0; u < BWD_UPT; ++u) acc[m][u] = 0.0f;
  if (K) {
    fetch_rows<BWD_ROWS, BWD_NT, BWD_TK>(d_next, dpre_next, R, K, r0, 0, tid);
    fetch_unit_cols<BWD_UNITS, BWD_NT, BWD_TK>(w_next, W_h, H, K, j0, 0, tid);
  }
  for (int k0 = 0; k0 < K; k0 += BWD_TK) {
    stash_rows<BWD_ROWS, BWD_NT, BWD_TK>(d_s, d_next, tid);
#pragma unroll
    for (int i = 0; i < BWD_UNITS * BWD_TK / BWD_NT; ++i) {
      int e = tid + i * BWD_NT;
      w_s[e / BWD_UNITS][e % BWD_UNITS] = w_next[i];
    }
    __syncthreads();
    fetch_rows<BWD_ROWS, BWD_NT, BWD_TK>(d_next, dpre_next, R, K, r0, k0 + BWD_TK, tid);  // overlaps the products
    fetch_unit_cols<BWD_UNITS, BWD_NT, BWD_TK>(w_next, W_h, H, K, j0, k0 + BWD_TK, tid);
#pragma unroll
    for (int k = 0; k < BWD_TK; ++k) {
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
      if (r < R && j < H)  // a guard, not a break: the loops unroll and acc stays in registers
        cell_backward(gates + (t * (size_t)R + r) * 4 * H, dh_above, c, mask, dc_next, dc_prev, RH, r, j, H, t,
                      acc[m][u], act, use_mask);
    }
  }
}

// ------------------------------------------------------------------ TF32 tensor cores
// lstm_step_forward_tf32 / lstm_step_backward_tf32: the same steps, same arguments and buffers,
// with the recurrent product on the tensor cores (mma.sync m16n8k8, common.cuh): both operands
// rounded to TF32 (10 mantissa bits, as cuDNN's LSTMs do by default), fp32 accumulators, the cell
// in fp32 as above. Twin: the fp32 twins on round_tf32(h_prev), round_tf32(W_h) (reference.py).
// A block is TC_FW (forward) / TC_BW (backward) warps stacked along rows, each warp TC_FM / TC_BM
// m-tiles of 16 rows; operands go through shared memory as TF32 bit patterns in chunks of TC_FK /
// TC_BK k, fetched into registers one chunk ahead (as the fp32 kernels do). The backward chunk is
// long because a step's L2 round trips are its limit: with one or two blocks per SM (the time
// stack's backward has 170 blocks of 3 warps), each chunk costs about one L2 latency, so the
// bytes a block has in flight set the bandwidth; the forward's 247 blocks, two per SM, get there
// with 16. Shared rows are padded to make the fragment loads conflict-free: the 32 lanes of a
// load read rows g = 0..7 at k = q = 0..3. (row, k) tiles have a pitch p = KC + 4 words, p = 4 mod 8, so the
// banks p g + q are distinct; the backward W tile (k, unit) has p = TC_BU + 8 = 8 mod 16 (TC_BU a
// multiple of 16), so the banks p q + g are.
// Forward: a block covers TC_FU units x 4 gates, so each thread holds all four gates of its
// entries (n-tile gate * TC_FU / 8 + u) and the cell runs on its accumulators directly.
// Backward: a block covers TC_BU units; n-tile u holds units 8u..8u+7.
#ifndef TC_FW
#define TC_FW 4   // forward: warps per block
#endif
#ifndef TC_FM
#define TC_FM 1   // forward: 16-row m-tiles per warp
#endif
#ifndef TC_FU
#define TC_FU 16  // forward: units per block (x 4 gates)
#endif
#ifndef TC_FK
#define TC_FK 16  // forward: k per chunk
#endif
#ifndef TC_BW
#define TC_BW 3   // backward: warps per block
#endif
#ifndef TC_BM
#define TC_BM 1   // backward: 16-row m-tiles per warp
#endif
#ifndef TC_BU
#define TC_BU 32  // backward: units per block
#endif
#ifndef TC_BK
#define TC_BK 48  // backward: k per chunk
#endif
#define TC_FNT (32 * TC_FW)           // forward threads per block
#define TC_FROWS (16 * TC_FM * TC_FW)  // forward rows per block
#define TC_FN (4 * TC_FU / 8)         // forward n-tiles per warp
#define TC_BNT (32 * TC_BW)
#define TC_BROWS (16 * TC_BM * TC_BW)
#define TC_BN (TC_BU / 8)
static_assert(TC_FU % 8 == 0 && TC_BU % 16 == 0 && TC_FK % 8 == 0 && TC_BK % 8 == 0,
              "tensor-core tiles: n-tiles of 8 units, k-steps of 8, conflict-free backward W pitch");
static_assert(TC_FROWS * TC_FK % TC_FNT == 0 && 4 * TC_FU * TC_FK % TC_FNT == 0, "tensor-core forward tile");
static_assert(TC_BROWS * TC_BK % TC_BNT == 0 && TC_BU * TC_BK % TC_BNT == 0, "tensor-core backward tile");

// A chunk fetched into registers (NT threads, element e = tid + i * NT) into shared memory as TF32
// bits, element e at (e / COLS, e % COLS) of a tile whose rows are PITCH words apart.
template <int COLS, int NT, int PITCH, int N>
__device__ __forceinline__ void stash_tf32(unsigned (*tile)[PITCH], const float (&regs)[N], int tid) {
#pragma unroll
  for (int i = 0; i < N; ++i) {
    int e = tid + i * NT;
    tile[e / COLS][e % COLS] = to_tf32(regs[i]);
  }
}

// One KC chunk of A (rows of the warp's m-tiles, k along a_s's rows) times B for every n-tile:
// b_at(n, k) is the TF32 bits of B(k, column 8n + g)'s shared entry for this lane.
template <int MT, int NTILES, int KC, typename BAt>
__device__ __forceinline__ void mma_chunk(float (&acc)[MT][NTILES][4], const unsigned (*a_s)[KC + 4], int warp,
                                          int g, int q, BAt b_at) {
#pragma unroll
  for (int kk = 0; kk < KC; kk += 8) {
    unsigned a[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      int rb = (warp * MT + mt) * 16;
      a[mt][0] = a_s[rb + g][kk + q];
      a[mt][1] = a_s[rb + g + 8][kk + q];
      a[mt][2] = a_s[rb + g][kk + q + 4];
      a[mt][3] = a_s[rb + g + 8][kk + q + 4];
    }
#pragma unroll
    for (int n = 0; n < NTILES; ++n) {
      unsigned b[2] = {b_at(n, kk + q), b_at(n, kk + q + 4)};
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) mma_tf32_16x8x8(acc[mt][n], a[mt], b);
    }
  }
}

// Forward of step t on the tensor cores: arguments and buffers as lstm_step_forward.
// Block TC_FNT threads; grid (ceil(H / TC_FU), ceil(R / TC_FROWS)).
extern "C" __global__ void lstm_step_forward_tf32(float* gates, float* __restrict__ h, float* __restrict__ c,
                                                  const float* __restrict__ W_h, const float* __restrict__ mask,
                                                  float* __restrict__ h_out, int R, int H, int act, int use_mask,
                                                  int t) {
  __shared__ unsigned a_s[TC_FROWS][TC_FK + 4];   // (row, k) of h_prev, TF32
  __shared__ unsigned b_s[4 * TC_FU][TC_FK + 4];  // (gate * TC_FU + unit, k) of W_h, TF32
  int tid = threadIdx.x, warp = tid / 32, g = tid % 32 / 4, q = tid % 4;
  int j0 = blockIdx.x * TC_FU, r0 = blockIdx.y * TC_FROWS;
  size_t RH = (size_t)R * H;
  const float* h_prev = t > 0 ? h + (t - 1) * RH : h;  // (R, H); not read at t = 0 (K = 0)
  int K = t > 0 ? H : 0;
  float a_next[TC_FROWS * TC_FK / TC_FNT], b_next[4 * TC_FU * TC_FK / TC_FNT];
  float acc[TC_FM][TC_FN][4];
  for (int mt = 0; mt < TC_FM; ++mt)
    for (int n = 0; n < TC_FN; ++n)
      for (int i = 0; i < 4; ++i) acc[mt][n][i] = 0.0f;
  fetch_rows<TC_FROWS, TC_FNT, TC_FK>(a_next, h_prev, R, K, r0, 0, tid);
  fetch_gate_rows<TC_FU, TC_FNT, TC_FK>(b_next, W_h, H, K, j0, 0, tid);
  for (int k0 = 0; k0 < K; k0 += TC_FK) {
    stash_tf32<TC_FK, TC_FNT>(a_s, a_next, tid);
    stash_tf32<TC_FK, TC_FNT>(b_s, b_next, tid);
    __syncthreads();
    fetch_rows<TC_FROWS, TC_FNT, TC_FK>(a_next, h_prev, R, K, r0, k0 + TC_FK, tid);  // overlaps the products
    fetch_gate_rows<TC_FU, TC_FNT, TC_FK>(b_next, W_h, H, K, j0, k0 + TC_FK, tid);
    mma_chunk<TC_FM, TC_FN, TC_FK>(acc, a_s, warp, g, q, [&](int n, int k) { return b_s[8 * n + g][k]; });
    __syncthreads();
  }
#pragma unroll
  for (int mt = 0; mt < TC_FM; ++mt)
#pragma unroll
    for (int i = 0; i < 4; ++i)  // accumulator entry i: row g + 8 (i / 2), unit 2q + i % 2 of each n-tile
#pragma unroll
      for (int u = 0; u < TC_FU / 8; ++u) {
        int r = r0 + (warp * TC_FM + mt) * 16 + g + 8 * (i / 2), j = j0 + 8 * u + 2 * q + i % 2;
        float pre[4];
#pragma unroll
        for (int gate = 0; gate < 4; ++gate) pre[gate] = acc[mt][gate * (TC_FU / 8) + u][i];
        if (r < R && j < H)
          cell_forward(gates + (t * (size_t)R + r) * 4 * H, h, c, mask, h_out, RH, r, j, H, t, pre, act, use_mask);
      }
}

// Backward of step t on the tensor cores: arguments and buffers as lstm_step_backward.
// Block TC_BNT threads; grid (ceil(H / TC_BU), ceil(R / TC_BROWS)).
extern "C" __global__ void lstm_step_backward_tf32(const float* __restrict__ dh_above, float* gates,
                                                   const float* __restrict__ W_h, const float* __restrict__ c,
                                                   const float* __restrict__ mask, int R, int H, int act,
                                                   int use_mask, int L, const float* __restrict__ dc_next,
                                                   float* __restrict__ dc_prev, int t) {
  __shared__ unsigned a_s[TC_BROWS][TC_BK + 4];  // (row, k) of dpre_next, TF32
  __shared__ unsigned b_s[TC_BK][TC_BU + 8];    // (k, unit) of W_h, TF32
  int tid = threadIdx.x, warp = tid / 32, g = tid % 32 / 4, q = tid % 4;
  int j0 = blockIdx.x * TC_BU, r0 = blockIdx.y * TC_BROWS;
  size_t RH = (size_t)R * H;
  int K = t + 1 < L ? 4 * H : 0;  // 0 at the last step
  const float* dpre_next = gates + (t + 1) * 4 * RH;  // (R, 4H); read only when K > 0
  float a_next[TC_BROWS * TC_BK / TC_BNT], b_next[TC_BU * TC_BK / TC_BNT];
  float acc[TC_BM][TC_BN][4];
  for (int mt = 0; mt < TC_BM; ++mt)
    for (int n = 0; n < TC_BN; ++n)
      for (int i = 0; i < 4; ++i) acc[mt][n][i] = 0.0f;
  if (K) {
    fetch_rows<TC_BROWS, TC_BNT, TC_BK>(a_next, dpre_next, R, K, r0, 0, tid);
    fetch_unit_cols<TC_BU, TC_BNT, TC_BK>(b_next, W_h, H, K, j0, 0, tid);
  }
  for (int k0 = 0; k0 < K; k0 += TC_BK) {
    stash_tf32<TC_BK, TC_BNT>(a_s, a_next, tid);
    stash_tf32<TC_BU, TC_BNT>(b_s, b_next, tid);
    __syncthreads();
    fetch_rows<TC_BROWS, TC_BNT, TC_BK>(a_next, dpre_next, R, K, r0, k0 + TC_BK, tid);  // overlaps the products
    fetch_unit_cols<TC_BU, TC_BNT, TC_BK>(b_next, W_h, H, K, j0, k0 + TC_BK, tid);
    mma_chunk<TC_BM, TC_BN, TC_BK>(acc, a_s, warp, g, q, [&](int n, int k) { return b_s[k][8 * n + g]; });
    __syncthreads();
  }
#pragma unroll
  for (int mt = 0; mt < TC_BM; ++mt)
#pragma unroll
    for (int n = 0; n < TC_BN; ++n)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        int r = r0 + (warp * TC_BM + mt) * 16 + g + 8 * (i / 2), j = j0 + 8 * n + 2 * q + i % 2;
        if (r < R && j < H)
          cell_backward(gates + (t * (size_t)R + r) * 4 * H, dh_above, c, mask, dc_next, dc_prev, RH, r, j, H, t,
                        acc[mt][n][i], act, use_mask);
      }
}
