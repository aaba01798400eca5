// Compiled CPU kernels of the nets, loaded by lightning_modules/components/kernels.py: the
// fused GRU recurrence (forward and backward through time, used by fused_gru.py), the group
// de-mean and the series decomposition (used by layers.py).
//
// GRU. PyTorch's CPU nn.GRU runs each time step as ~10 separate ops over the whole batch:
// every op streams a [N, 3H] block through memory, and its autograd backward adds a
// weight-gradient matmul and a concatenation per step. Here the stocks are cut into blocks of
// kBlock rows; each block runs all T steps while its state, gates and the weights stay in
// cache: per step small register-blocked matmuls (x_t W_ih^T, h W_hh^T; in the backward
// dg W_hh, d_gi W_ih and the weight gradients accumulated per thread), and the gate
// arithmetic in one vectorized pass. Blocks run in parallel on torch's intra-op thread pool
// (at::parallel_for).
//
// Layout (batch first, contiguous float32):
//   x_k   [N, T, K_k]  inputs, each with its projection weight W_k [3H, K_k] (gi = sum_k
//                      x_k W_k^T + b_ih, gate order r, z, n);
//   gates [N, T, 3H]   the activations (r, z, n) kept for the backward, which overwrites them
//                      with the gradients of the input-side pre-activations d_gi;
//   out   [N, T, H]    states h_1..h_T;  h0 [N, H];  ghn [N, T, H]  h_{t-1} W_hn^T + b_hn.
//   w_hh  [3H, H];  b_hh, b_ih [3H]  (PyTorch's nn.GRU parameters).
// Equations (PyTorch's):  r = s(gi_r + gh_r), z = s(gi_z + gh_z), n = tanh(gi_n + r * gh_n),
//   h = (1 - z) n + z h_prev, with gh = h_prev W_hh^T + b_hh.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

typedef float v16 __attribute__((vector_size(64)));

constexpr int64_t kBlock = 64;  // stocks per block
constexpr int64_t kTileRows = 6;  // rows per register tile (6 x 4 accumulators of 16 floats)

inline v16 load16(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store16(float* p, v16 v) { std::memcpy(p, &v, sizeof(v)); }

// C[r, 0:16*CV] = init + sum_k A(r, k) * B[k, 0:16*CV] for r < R, where A(r, k) =
// A[r * ars + k * aks], B is row-major with row stride ldb. init (INIT): 0 = zero, 1 = the
// bias row, 2 = the current C. The accumulators stay in registers (R * CV <= 24 vectors).
template <int R, int CV, int INIT>
inline void tile(int64_t K, const float* A, int64_t ars, int64_t aks, const float* B,
                 int64_t ldb, float* C, int64_t ldc, const float* bias) {
  v16 c[R][CV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < CV; ++v) {
      if constexpr (INIT == 0) c[r][v] = v16{};
      if constexpr (INIT == 1) c[r][v] = load16(bias + 16 * v);
      if constexpr (INIT == 2) c[r][v] = load16(C + r * ldc + 16 * v);
    }
  for (int64_t k = 0; k < K; ++k) {
    v16 b[CV];
    for (int v = 0; v < CV; ++v) b[v] = load16(B + k * ldb + 16 * v);
    for (int r = 0; r < R; ++r) {
      const float a = A[r * ars + k * aks];
      for (int v = 0; v < CV; ++v) c[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < CV; ++v) store16(C + r * ldc + 16 * v, c[r][v]);
}

template <int R, int CV>
inline void tile_init(int64_t K, const float* A, int64_t ars, int64_t aks, const float* B,
                      int64_t ldb, float* C, int64_t ldc, const float* bias, bool acc) {
  if (bias)
    tile<R, CV, 1>(K, A, ars, aks, B, ldb, C, ldc, bias);
  else if (acc)
    tile<R, CV, 2>(K, A, ars, aks, B, ldb, C, ldc, bias);
  else
    tile<R, CV, 0>(K, A, ars, aks, B, ldb, C, ldc, bias);
}

template <int R>
inline void tile_row(int cv, int64_t K, const float* A, int64_t ars, int64_t aks,
                     const float* B, int64_t ldb, float* C, int64_t ldc, const float* bias,
                     bool acc) {
  switch (cv) {
    case 1: tile_init<R, 1>(K, A, ars, aks, B, ldb, C, ldc, bias, acc); break;
    case 2: tile_init<R, 2>(K, A, ars, aks, B, ldb, C, ldc, bias, acc); break;
    case 3: tile_init<R, 3>(K, A, ars, aks, B, ldb, C, ldc, bias, acc); break;
    default: tile_init<R, 4>(K, A, ars, aks, B, ldb, C, ldc, bias, acc); break;
  }
}

// C[M, NC] = (bias | C | 0) + A(M x K) @ B[K, NC]; NC a multiple of 16. Row r of C starts
// at C + r * ldc; A(r, k) = A[r * ars + k * aks]; B row-major with stride ldb.
void gemm(int64_t M, int64_t NC, int64_t K, const float* A, int64_t ars, int64_t aks,
          const float* B, int64_t ldb, float* C, int64_t ldc, const float* bias, bool acc) {
  for (int64_t m = 0; m < M; m += kTileRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kTileRows, M - m));
    const float* a = A + m * ars;
    float* c = C + m * ldc;
    for (int64_t col = 0; col < NC; col += 64) {
      const int cv = static_cast<int>(std::min<int64_t>(4, (NC - col) / 16));
      const float* bs = bias ? bias + col : nullptr;
      switch (rows) {
        case 1: tile_row<1>(cv, K, a, ars, aks, B + col, ldb, c + col, ldc, bs, acc); break;
        case 2: tile_row<2>(cv, K, a, ars, aks, B + col, ldb, c + col, ldc, bs, acc); break;
        case 3: tile_row<3>(cv, K, a, ars, aks, B + col, ldb, c + col, ldc, bs, acc); break;
        case 4: tile_row<4>(cv, K, a, ars, aks, B + col, ldb, c + col, ldc, bs, acc); break;
        case 5: tile_row<5>(cv, K, a, ars, aks, B + col, ldb, c + col, ldc, bs, acc); break;
        default: tile_row<6>(cv, K, a, ars, aks, B + col, ldb, c + col, ldc, bs, acc); break;
      }
    }
  }
}

// exp with Cephes' expf polynomial (about 1 ulp on the clamped range), written so that the
// compiler vectorizes it (no libm call inside the gate loops).
// Needs -fno-trapping-math to vectorize (the float -> int conversion); no effect on values.
inline float fexp(float x) {
  x = x > 88.3f ? 88.3f : x;
  x = x < -87.3f ? -87.3f : x;
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return e * __builtin_bit_cast(float, bits);
}

inline float fsigmoid(float x) { return 1.0f / (1.0f + fexp(-x)); }

inline float ftanh(float x) { return 2.0f / (1.0f + fexp(-2.0f * x)) - 1.0f; }

void check(const at::Tensor& t, const char* name, std::vector<int64_t> shape) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(),
              "fused_gru: ", name, " must be a contiguous float32 CPU tensor");
  TORCH_CHECK(t.sizes() == at::IntArrayRef(shape), "fused_gru: ", name, " has shape ",
              t.sizes(), ", expected ", at::IntArrayRef(shape));
}

}  // namespace

// Forward. inputs: x_k [N, T, K_k] with weights w_t_k = W_k^T [K_k, 3H]; the input
// projections gi = sum_k x_k W_k^T + b_ih are computed block by block in cache, right before
// each step. h0 [N, H], w_hh [3H, H], b_hh [3H], b_ih [3H].
// save (training): returns {states [N, T, H], gates [N, T, 3H] = (r, z, n) per step,
// ghn [N, T, H] = h_{t-1} W_hn^T + b_hn}, what the backward needs.
// Otherwise (inference): nothing is kept but the states, or with all_states = false only
// the last state [N, H]; returns {out}.
std::vector<at::Tensor> gru_forward(std::vector<at::Tensor> inputs, std::vector<at::Tensor> w_ts,
                                    at::Tensor h0, at::Tensor w_hh, at::Tensor b_hh,
                                    at::Tensor b_ih, bool save, bool all_states) {
  TORCH_CHECK(!inputs.empty() && inputs.size() == w_ts.size(),
              "fused_gru: one weight per input needed");
  const int64_t N = inputs[0].size(0), T = inputs[0].size(1), G = w_hh.size(0), H = G / 3;
  TORCH_CHECK(G == 3 * H && H % 16 == 0, "fused_gru: hidden size must be a multiple of 16");
  std::vector<const float*> xps, wps;
  std::vector<int64_t> ks;
  for (size_t k = 0; k < inputs.size(); ++k) {
    check(inputs[k], "input", {N, T, inputs[k].size(-1)});
    check(w_ts[k], "input weight", {inputs[k].size(-1), G});
    xps.push_back(inputs[k].data_ptr<float>());
    wps.push_back(w_ts[k].data_ptr<float>());
    ks.push_back(inputs[k].size(-1));
  }
  check(h0, "h0", {N, H});
  check(w_hh, "w_hh", {G, H});
  check(b_hh, "b_hh", {G});
  check(b_ih, "b_ih", {G});
  all_states = all_states || save;
  at::Tensor out = all_states ? at::empty({N, T, H}, h0.options())
                              : at::empty({N, H}, h0.options());
  at::Tensor gates = save ? at::empty({N, T, G}, h0.options()) : at::empty({0}, h0.options());
  at::Tensor ghn = save ? at::empty({N, T, H}, h0.options()) : at::empty({0}, h0.options());
  const at::Tensor w_t = w_hh.t().contiguous();  // [H, 3H]
  const float* h0p = h0.data_ptr<float>();
  const float* wp = w_t.data_ptr<float>();
  const float* bhp = b_hh.data_ptr<float>();
  const float* bip = b_ih.data_ptr<float>();
  float* op = out.data_ptr<float>();
  float* gp = save ? gates.data_ptr<float>() : nullptr;
  float* gnp = save ? ghn.data_ptr<float>() : nullptr;
  const int64_t n_blocks = (N + kBlock - 1) / kBlock;
  at::parallel_for(0, n_blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> gh_buf(kBlock * G), gi_buf(save ? 0 : kBlock * G), h_buf(2 * kBlock * H);
    float* gh = gh_buf.data();
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t i0 = blk * kBlock, rows = std::min(kBlock, N - i0);
      for (int64_t t = 0; t < T; ++t) {
        const float* hprev;
        int64_t hstride;
        float* hnext;
        int64_t nstride;
        if (t == 0) {
          hprev = h0p + i0 * H;
          hstride = H;
        } else if (all_states) {
          hprev = op + (i0 * T + t - 1) * H;
          hstride = T * H;
        } else {
          hprev = h_buf.data() + ((t - 1) % 2) * kBlock * H;
          hstride = H;
        }
        if (all_states) {
          hnext = op + (i0 * T + t) * H;
          nstride = T * H;
        } else if (t == T - 1) {
          hnext = op + i0 * H;
          nstride = H;
        } else {
          hnext = h_buf.data() + (t % 2) * kBlock * H;
          nstride = H;
        }
        // the block's input projections (into the saved gates' rows when training) and
        // gh = b_hh + h_prev @ W_hh^T
        float* gi = save ? gp + (i0 * T + t) * G : gi_buf.data();
        const int64_t gstride = save ? T * G : G;
        for (size_t k = 0; k < ks.size(); ++k)
          gemm(rows, G, ks[k], xps[k] + (i0 * T + t) * ks[k], T * ks[k], 1, wps[k], G, gi,
               gstride, k == 0 ? bip : nullptr, k > 0);
        gemm(rows, G, H, hprev, hstride, 1, wp, G, gh, G, bhp, false);
        for (int64_t i = 0; i < rows; ++i) {
          float* g = gi + i * gstride;
          const float* ghr = gh + i * G;
          const float* hp = hprev + i * hstride;
          float* o = hnext + i * nstride;
          if (save) {
            float* gn = gnp + ((i0 + i) * T + t) * H;
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const float r = fsigmoid(g[j] + ghr[j]);
              const float z = fsigmoid(g[H + j] + ghr[H + j]);
              const float hn = ghr[2 * H + j];
              const float n = ftanh(g[2 * H + j] + r * hn);
              o[j] = n + z * (hp[j] - n);
              g[j] = r;
              g[H + j] = z;
              g[2 * H + j] = n;
              gn[j] = hn;
            }
          } else {
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const float r = fsigmoid(g[j] + ghr[j]);
              const float z = fsigmoid(g[H + j] + ghr[H + j]);
              const float n = ftanh(g[2 * H + j] + r * ghr[2 * H + j]);
              o[j] = n + z * (hp[j] - n);
            }
          }
        }
      }
    }
  });
  if (save) return {out, gates, ghn};
  return {out};
}

// Backward. gates [N, T, 3H] = the forward's saved (r, z, n), overwritten with the gradients
// of the input-side pre-activations d_gi = (dr, dz, dn); ghn, out [N, T, H]; h0 [N, H];
// grad_out [N, T, H] (gradient of every state; an empty tensor if none) and grad_last [N, H]
// (gradient of the last state given separately; empty if none); inputs: the tensors x_k
// [N, T, K_k] whose projections made gi (gi = sum_k x_k W_k^T), for their weights' gradients.
// dx_weights: W_j [3H, K_j] (K_j a multiple of 16) of inputs whose gradient d_gi W_j is wanted.
// Returns dh0 [N, H], dw_hh [3H, H], db_hh [3H], db_ih [3H], then per input dW_k^T [K_k, 3H]
// (= x_k^T d_gi, accumulated per thread while each block's rows are in cache), then per
// dx weight dx_j [N, T, K_j] (computed step by step in cache too).
std::vector<at::Tensor> gru_backward(at::Tensor grad_out, at::Tensor grad_last,
                                     at::Tensor gates, at::Tensor ghn, at::Tensor out,
                                     at::Tensor h0, at::Tensor w_hh,
                                     std::vector<at::Tensor> inputs,
                                     std::vector<at::Tensor> dx_weights) {
  const int64_t N = gates.size(0), T = gates.size(1), G = gates.size(2), H = G / 3;
  check(gates, "gates", {N, T, G});
  check(ghn, "ghn", {N, T, H});
  check(out, "out", {N, T, H});
  check(h0, "h0", {N, H});
  check(w_hh, "w_hh", {G, H});
  const bool has_out = grad_out.numel() > 0, has_last = grad_last.numel() > 0;
  if (has_out) check(grad_out, "grad_out", {N, T, H});
  if (has_last) check(grad_last, "grad_last", {N, H});
  for (const auto& x : inputs) check(x, "input", {N, T, x.size(-1)});
  at::Tensor dh0 = at::empty({N, H}, gates.options());
  const int n_threads = at::get_num_threads();
  at::Tensor dw_parts = at::zeros({n_threads, G, H}, gates.options());
  at::Tensor db_parts = at::zeros({n_threads, 2, G}, gates.options());  // hidden, input side
  std::vector<at::Tensor> dwx_parts;  // per thread dW_k^T of each input
  std::vector<const float*> xps;
  std::vector<float*> dwxps;
  std::vector<int64_t> ks;
  for (const auto& x : inputs) {
    dwx_parts.push_back(at::zeros({n_threads, x.size(-1), G}, gates.options()));
    xps.push_back(x.data_ptr<float>());
    dwxps.push_back(dwx_parts.back().data_ptr<float>());
    ks.push_back(x.size(-1));
  }
  std::vector<at::Tensor> dxs;
  std::vector<const float*> dxw;
  std::vector<float*> dxo;
  std::vector<int64_t> dks;
  for (const auto& w : dx_weights) {
    check(w, "dx weight", {G, w.size(-1)});
    TORCH_CHECK(w.size(-1) % 16 == 0, "fused_gru: dx weight width must be a multiple of 16");
    dxs.push_back(at::empty({N, T, w.size(-1)}, gates.options()));
    dxw.push_back(w.data_ptr<float>());
    dxo.push_back(dxs.back().data_ptr<float>());
    dks.push_back(w.size(-1));
  }
  float* gp = gates.data_ptr<float>();
  const float* gnp = ghn.data_ptr<float>();
  const float* op = out.data_ptr<float>();
  const float* h0p = h0.data_ptr<float>();
  const float* wp = w_hh.data_ptr<float>();
  const float* dop = has_out ? grad_out.data_ptr<float>() : nullptr;
  const float* dlp = has_last ? grad_last.data_ptr<float>() : nullptr;
  float* dh0p = dh0.data_ptr<float>();
  float* dwp = dw_parts.data_ptr<float>();
  float* dbp = db_parts.data_ptr<float>();
  const int64_t n_blocks = (N + kBlock - 1) / kBlock;
  at::parallel_for(0, n_blocks, 1, [&](int64_t b0, int64_t b1) {
    const int tid = at::get_thread_num();
    TORCH_CHECK(tid < n_threads, "fused_gru: thread id beyond the pool size");
    float* dw = dwp + tid * G * H;
    float* db = dbp + tid * 2 * G;  // hidden-side bias gradient
    float* dbi = db + G;            // input-side bias gradient
    std::vector<float> dh_buf(kBlock * H), dg_buf(kBlock * G), zeros(H, 0.0f);
    float* dh = dh_buf.data();
    float* dg = dg_buf.data();  // gradient of the hidden-side pre-activations gh
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t i0 = blk * kBlock, rows = std::min(kBlock, N - i0);
      for (int64_t i = 0; i < rows; ++i) {
        float* d = dh + i * H;
        const float* go = has_out ? dop + ((i0 + i) * T + T - 1) * H : zeros.data();
        const float* gl = has_last ? dlp + (i0 + i) * H : zeros.data();
        for (int64_t j = 0; j < H; ++j) d[j] = go[j] + gl[j];
      }
      for (int64_t t = T - 1; t >= 0; --t) {
        const float* hprev = t == 0 ? h0p + i0 * H : op + (i0 * T + t - 1) * H;
        const int64_t hstride = t == 0 ? H : T * H;
        for (int64_t i = 0; i < rows; ++i) {
          const int64_t row = (i0 + i) * T + t;
          float* g = gp + row * G;
          const float* hn = gnp + row * H;
          const float* hp = hprev + i * hstride;
          float* d = dh + i * H;
          float* dgr = dg + i * G;
          const float* next = t > 0 && has_out ? dop + (row - 1) * H : zeros.data();
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            const float r = g[j], z = g[H + j], n = g[2 * H + j], dj = d[j];
            const float dn = dj * (1.0f - z) * (1.0f - n * n);
            const float dz = dj * (hp[j] - n) * z * (1.0f - z);
            const float dr = dn * hn[j] * r * (1.0f - r);
            g[j] = dr;
            g[H + j] = dz;
            g[2 * H + j] = dn;
            dgr[j] = dr;
            dgr[H + j] = dz;
            dgr[2 * H + j] = dn * r;
            d[j] = dj * z + next[j];
          }
#pragma omp simd
          for (int64_t j = 0; j < G; ++j) {
            db[j] += dgr[j];
            dbi[j] += g[j];
          }
        }
        // dh_prev += dg @ W_hh;  dW_hh += dg^T @ h_prev;  dW_k^T += x_k^T @ d_gi
        gemm(rows, H, G, dg, G, 1, wp, H, dh, H, nullptr, true);
        gemm(G, H, rows, dg, 1, G, hprev, hstride, dw, H, nullptr, true);
        for (size_t k = 0; k < ks.size(); ++k) {
          const int64_t K = ks[k];
          gemm(K, G, rows, xps[k] + (i0 * T + t) * K, 1, T * K, gp + (i0 * T + t) * G, T * G,
               dwxps[k] + tid * K * G, G, nullptr, true);
        }
        // dx_j = d_gi @ W_j
        for (size_t k = 0; k < dks.size(); ++k) {
          const int64_t K = dks[k];
          gemm(rows, K, G, gp + (i0 * T + t) * G, T * G, 1, dxw[k], K,
               dxo[k] + (i0 * T + t) * K, T * K, nullptr, false);
        }
      }
      for (int64_t i = 0; i < rows; ++i)
        std::memcpy(dh0p + (i0 + i) * H, dh + i * H, H * sizeof(float));
    }
  });
  at::Tensor db = db_parts.sum(0);
  std::vector<at::Tensor> result = {dh0, dw_parts.sum(0), db[0], db[1]};
  for (auto& part : dwx_parts) result.push_back(part.sum(0));
  for (auto& dx : dxs) result.push_back(dx);
  return result;
}

// Group de-mean (DecompGRU's size-group de-mean without a mask): out[i] = h[i] - mean of
// h over the rows of i's group; h [N, D], groups [N] (int64, 0 <= id < n_groups). Two passes
// over h instead of torch's five (index_add, index_select, subtract). The operator is
// symmetric (every row of a group has the same weight), so its backward is the same call
// on the gradient. inplace: the result overwrites h (each row is read before it is written).
at::Tensor group_demean(at::Tensor h, at::Tensor groups, int64_t n_groups, bool inplace) {
  TORCH_CHECK(h.dim() == 2, "group_demean: h must be [N, D]");
  const int64_t N = h.size(0), D = h.size(1);
  check(h, "h", {N, D});
  TORCH_CHECK(groups.scalar_type() == at::kLong && groups.is_contiguous() &&
                  groups.dim() == 1 && groups.size(0) == N,
              "group_demean: groups must be a contiguous int64 [N] tensor");
  const int64_t* gp = groups.data_ptr<int64_t>();
  std::vector<float> counts(n_groups, 0.0f);
  for (int64_t i = 0; i < N; ++i) {
    TORCH_CHECK(gp[i] >= 0 && gp[i] < n_groups, "group_demean: group id out of range");
    counts[gp[i]] += 1.0f;
  }
  at::Tensor means = at::zeros({n_groups, D}, h.options());
  at::Tensor out = inplace ? h : at::empty({N, D}, h.options());
  const float* hp = h.data_ptr<float>();
  float* mp = means.data_ptr<float>();
  float* op = out.data_ptr<float>();
  // sums by column ranges (each thread owns its columns: no races), then / count
  at::parallel_for(0, D, 256, [&](int64_t c0, int64_t c1) {
    for (int64_t i = 0; i < N; ++i) {
      const float* row = hp + i * D;
      float* m = mp + gp[i] * D;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) m[c] += row[c];
    }
    for (int64_t g = 0; g < n_groups; ++g) {
      const float count = std::max(counts[g], 1.0f);
      float* m = mp + g * D;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) m[c] /= count;
    }
  });
  at::parallel_for(0, N, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* row = hp + i * D;
      const float* m = mp + gp[i] * D;
      float* o = op + i * D;
#pragma omp simd
      for (int64_t c = 0; c < D; ++c) o[c] = row[c] - m[c];
    }
  });
  return out;
}

// Causal series decomposition (DecompGRU's step 1) in one pass over x [N, T, F]:
// trend[t] = (x[t-k+1] + ... + x[t]) / k with x[<0] = x[0] (the same additions in the same
// order as layers.CausalMovingAverage, hence bit-identical), residual = x - trend.
std::vector<at::Tensor> decompose(at::Tensor x, int64_t kernel) {
  TORCH_CHECK(x.dim() == 3, "decompose: x must be [N, T, F]");
  const int64_t N = x.size(0), T = x.size(1), F = x.size(2);
  check(x, "x", {N, T, F});
  TORCH_CHECK(kernel >= 1, "decompose: kernel must be >= 1");
  at::Tensor trend = at::empty({N, T, F}, x.options());
  at::Tensor residual = at::empty({N, T, F}, x.options());
  const float* xp = x.data_ptr<float>();
  float* tp = trend.data_ptr<float>();
  float* rp = residual.data_ptr<float>();
  const float k = static_cast<float>(kernel);
  at::parallel_for(0, N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* xs = xp + n * T * F;
      float* ts = tp + n * T * F;
      float* rs = rp + n * T * F;
      const int64_t head = std::min<int64_t>(kernel - 1, T);  // days whose window is padded
      for (int64_t t = 0; t < head; ++t) {
        for (int64_t f = 0; f < F; ++f) {
          // padded[t + lag] for lag = 0..k-1 is x[max(t + lag - (k - 1), 0)]
          float sum = xs[std::max<int64_t>(t - (kernel - 1), 0) * F + f];
          for (int64_t lag = 1; lag < kernel; ++lag)
            sum += xs[std::max<int64_t>(t + lag - (kernel - 1), 0) * F + f];
          ts[t * F + f] = sum / k;
          rs[t * F + f] = xs[t * F + f] - ts[t * F + f];
        }
      }
      // the rest: day t's window is x[t-k+1 .. t], a shift of whole days = of F values
      const int64_t back = (kernel - 1) * F;
      for (int64_t j = head * F; j < T * F; ++j) ts[j] = xs[j - back];
      for (int64_t lag = 1; lag < kernel; ++lag) {
        const int64_t off = lag * F - back;  // <= 0: an earlier day
#pragma omp simd
        for (int64_t j = head * F; j < T * F; ++j) ts[j] += xs[j + off];
      }
#pragma omp simd
      for (int64_t j = head * F; j < T * F; ++j) {
        ts[j] = ts[j] / k;
        rs[j] = xs[j] - ts[j];
      }
    }
  });
  return {trend, residual};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("gru_forward", &gru_forward, "fused GRU recurrence, forward");
  m.def("gru_backward", &gru_backward, "fused GRU recurrence, backward through time");
  m.def("group_demean", &group_demean, "h minus its group's mean, row by row");
  m.def("decompose", &decompose, "causal moving-average trend and residual");
}
