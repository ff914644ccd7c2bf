// output_loss.cu: the output layer and the loss (MODEL_SPEC section 4).
//   output_loss_forward    P = sigmoid(h W^T + b) and per-block partial sums of the loss (the host adds
//                          them); twin reference.output_loss_forward
//   output_loss_backward   the loss's gradient wrt the two logits; twin reference.output_loss_backward
// Check: python -m pytest tests/test_kernels_output_loss.py (CPU harness).
//
// Design: one thread per (row, note) element m computes both logits (a dot product of length
// Hp <= a few hundred), P = sigmoid, and its loss term in double; the block sums its terms in
// shared memory (a fixed tree, so the result does not depend on scheduling) and writes one
// partial per block. The host adds the partials with one cupy.sum: no float atomics, so the
// loss is the same run after run.
#include "common.cuh"

#define LOSS_THREADS 256
#define EPS_LOSS 1.1920928955078125e-07  // 2^-23

// h (M, Hp), W (2, Hp), b (2,), y (M, 2) in {0,1} -> P (M, 2), partial (gridDim.x,) double.
// Block LOSS_THREADS threads, grid ceil(M / LOSS_THREADS).
extern "C" __global__ void output_loss_forward(const float* __restrict__ h, const float* __restrict__ W,
                                               const float* __restrict__ b, const float* __restrict__ y,
                                               float* __restrict__ P, double* __restrict__ partial,
                                               int M, int Hp) {
  __shared__ double terms[LOSS_THREADS];
  int m = blockIdx.x * blockDim.x + threadIdx.x;
  double term = 0.0;
  if (m < M) {
    const float* hm = h + (size_t)m * Hp;
    float z0 = b[0], z1 = b[1];
    for (int k = 0; k < Hp; ++k) {
      z0 += hm[k] * W[k];
      z1 += hm[k] * W[Hp + k];
    }
    float p0 = sigmoid_f(z0), p1 = sigmoid_f(z1);
    P[2 * m] = p0;
    P[2 * m + 1] = p1;
    float y0 = y[2 * m], y1 = y[2 * m + 1];
    term = -(log((double)(2 * p0 * y0 - p0 - y0 + 1) + EPS_LOSS) +
             y0 * log((double)(2 * p1 * y1 - p1 - y1 + 1) + EPS_LOSS));
  }
  terms[threadIdx.x] = term;
  __syncthreads();
  for (int s = LOSS_THREADS / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) terms[threadIdx.x] += terms[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = terms[0];
}

// Gradient of the summed loss wrt the two logits of every element; twin:
// reference.output_loss_backward. P, y (M, 2) -> dlogits (M, 2). One thread per element.
extern "C" __global__ void output_loss_backward(const float* __restrict__ P, const float* __restrict__ y,
                                                float* __restrict__ dlogits, int M) {
  int m = blockIdx.x * blockDim.x + threadIdx.x;
  if (m >= M) return;
  float p0 = P[2 * m], p1 = P[2 * m + 1], y0 = y[2 * m], y1 = y[2 * m + 1];
  const float eps = (float)EPS_LOSS;
  float dp0 = -(2 * y0 - 1) / (2 * p0 * y0 - p0 - y0 + 1 + eps);
  float dp1 = -y0 * (2 * y1 - 1) / (2 * p1 * y1 - p1 - y1 + 1 + eps);
  dlogits[2 * m] = dp0 * p0 * (1 - p0);
  dlogits[2 * m + 1] = dp1 * p1 * (1 - p1);
}
