// Sample kernels that exercise the harness itself (tests/test_cuda_emu.py).
#define TILE 8

// Sum of x per block: shared-memory tree down to one warp, then shuffles.
extern "C" __global__ void block_sum(const float* __restrict__ x, float* __restrict__ out, int n) {
  __shared__ float partial[128];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  partial[threadIdx.x] = i < n ? x[i] : 0.0f;
  __syncthreads();
  for (int s = blockDim.x / 2; s >= 32; s /= 2) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x < 32) {
    float v = partial[threadIdx.x];
    for (int d = 16; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);
    if (threadIdx.x == 0) out[blockIdx.x] = v;
  }
}

// C (M, N) = A (M, K) @ B (K, N), square tiles, partial tiles at the edges.
extern "C" __global__ void matmul(const float* A, const float* B, float* C, int M, int N, int K) {
  __shared__ float As[TILE][TILE];
  __shared__ float Bs[TILE][TILE + 1];
  int row = blockIdx.y * TILE + threadIdx.y, col = blockIdx.x * TILE + threadIdx.x;
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += TILE) {
    As[threadIdx.y][threadIdx.x] = row < M && k0 + threadIdx.x < K ? A[row * K + k0 + threadIdx.x] : 0.0f;
    Bs[threadIdx.y][threadIdx.x] = col < N && k0 + threadIdx.y < K ? B[(k0 + threadIdx.y) * N + col] : 0.0f;
    __syncthreads();
    for (int k = 0; k < TILE; ++k) acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
    __syncthreads();
  }
  if (row < M && col < N) C[row * N + col] = acc;
}

// Reverse each block's slice through dynamic shared memory.
extern "C" __global__ void reverse_blocks(float* x, int n) {
  extern __shared__ float buf[];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) buf[threadIdx.x] = x[i];
  __syncthreads();
  int j = blockIdx.x * blockDim.x + (blockDim.x - 1 - threadIdx.x);
  if (i < n && j < n) x[i] = buf[blockDim.x - 1 - threadIdx.x];
}

// Histogram with atomics; ballot count of positive values per warp.
extern "C" __global__ void histogram(const int* v, int* bins, unsigned* positives, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int val = i < n ? v[i] : -1;
  if (i < n) atomicAdd(&bins[val], 1);
  unsigned ballot = __ballot_sync(0xffffffffu, val > 0);
  if (threadIdx.x % 32 == 0) atomicAdd(positives, (unsigned)__popc(ballot));
}

// --- broken on purpose --------------------------------------------------------------

// block_sum without the first barrier: a race.
extern "C" __global__ void racy_sum(const float* x, float* out, int n) {
  __shared__ float partial[128];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  partial[threadIdx.x] = i < n ? x[i] : 0.0f;
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

extern "C" __global__ void divergent_barrier(float* x) {
  if (threadIdx.x < 16) {
    __syncthreads();
  }
  x[threadIdx.x] = 1.0f;
}

extern "C" __global__ void write_past_end(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) x[i] = 2.0f;  // off by one
}

extern "C" __global__ void read_unwritten_shared(float* x) {
  __shared__ float s[64];
  if (threadIdx.x < 32) s[threadIdx.x] = 1.0f;
  __syncthreads();
  x[threadIdx.x] = s[threadIdx.x];
}
