// The time loops of every rnnkit cell, compiled: one call runs all T steps forward, one call all
// steps backward (DESIGN.md, "Engine").  Per step: one GEMM for h @ W_hh^T (ATen's, so MKL or
// OpenBLAS), then ONE loop over the rows of the step for all the cell's pointwise math (parallel
// over rows, SIMD over hidden units).  The input projection and the weight gradients stay single
// GEMMs over all T*B rows in Python (rnnkit/engine/compiled.py), which also assembles the
// gradients of the extra parameters (peepholes, layer-norm gains) by single reductions.
//
// Layout: packed and sorted longest first, like PackedSequence.  Step t holds rows
// [offset[t], offset[t] + size[t]) of every (N, .) buffer, and its rows are the first size[t]
// rows of step t-1, so "the previous state" of step t is a contiguous block.
//
// The equations are those of rnnkit/cells/*.py, written once more here for speed; the tests hold
// the two to each other (float64 gradcheck and parity with the Python fused engine).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

namespace {

using at::Tensor;

// ------------------------------------------------------------------------------------ math
// float: an exp that the compiler vectorises (Cephes' expf: Cody-Waite reduction and a degree-6
// polynomial, about 1 ulp), so that sigmoid and tanh run SIMD-wide without -ffast-math.
// double: the C library's functions (the double path exists for the gradient checks).

inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;                // x - n ln 2, in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
inline float tanh_(float x) { return 1.0f - 2.0f / (1.0f + exp_approx(2.0f * x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double tanh_(double x) { return std::tanh(x); }

// ------------------------------------------------------------------------------------ layout
struct Steps {
  std::vector<int64_t> size, offset;
  int64_t T = 0, B = 0, N = 0;

  explicit Steps(at::IntArrayRef batch_sizes) {
    T = static_cast<int64_t>(batch_sizes.size());
    TORCH_CHECK(T > 0, "rnnkit loops: batch_sizes is empty");
    B = batch_sizes[0];
    for (int64_t t = 0; t < T; ++t) {
      TORCH_CHECK(batch_sizes[t] > 0 && (t == 0 || batch_sizes[t] <= batch_sizes[t - 1]),
                  "rnnkit loops: batch_sizes must be positive and non-increasing");
      offset.push_back(N);
      size.push_back(batch_sizes[t]);
      N += batch_sizes[t];
    }
  }
  int64_t next(int64_t t) const { return t + 1 < T ? size[t + 1] : 0; }  // rows still running after t
};

// The state of the previous step for the rows of step t: the initial state, or step t-1's rows.
inline Tensor previous(const Tensor& all, const Tensor& initial, const Steps& s, int64_t t) {
  return t == 0 ? initial.narrow(0, 0, s.size[0]) : all.narrow(0, s.offset[t - 1], s.size[t]);
}

// (B, H): each sequence's row at its own last step.
Tensor final_rows(const Tensor& all, const Steps& s) {
  Tensor out = at::empty({s.B, all.size(1)}, all.options());
  for (int64_t t = 0; t < s.T; ++t) {
    const int64_t keep = s.next(t), ending = s.size[t] - keep;
    if (ending > 0) out.narrow(0, keep, ending).copy_(all.narrow(0, s.offset[t] + keep, ending));
  }
  return out;
}

inline Tensor masked(const Tensor& h, const c10::optional<Tensor>& mask) {
  return mask.has_value() ? h * mask->narrow(0, 0, h.size(0)) : h;
}

// Rows [0, rows) in parallel, in chunks of at least ~32k scalars of work.
template <typename F>
inline void for_rows(int64_t rows, int64_t width, const F& body) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(width, 1));
  at::parallel_for(0, rows, grain, body);
}

void check(const Tensor& t, const char* name, int64_t dim) {
  TORCH_CHECK(t.dim() == dim, "rnnkit loops: ", name, " must have ", dim, " dimensions, got ", t.sizes());
  TORCH_CHECK(t.is_contiguous(), "rnnkit loops: ", name, " must be contiguous");
}

template <typename scalar_t>
const scalar_t* ptr_or_null(const c10::optional<Tensor>& t) {
  return t.has_value() ? t->data_ptr<scalar_t>() : nullptr;
}

// ================================================================================== LSTM family
// variant 0: LSTM                gates i, f, g, o   c' = f c + i g           h' = o tanh(c')
// variant 1: peephole LSTM       i, f see c; o sees c' (diagonal weights w_ci, w_cf, w_co)
// variant 2: CIFG LSTM           gates f, g, o      c' = f c + (1 - f) g
enum LstmVariant : int64_t { kLstm = 0, kPeephole = 1, kCifg = 2 };

template <typename scalar_t, int64_t V>
void lstm_forward_loop(Tensor& gates, const Steps& s, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                       const c10::optional<Tensor>& peephole, const c10::optional<Tensor>& mask, Tensor& hs,
                       Tensor& cs) {
  const int64_t H = h0.size(1), G = (V == kCifg) ? 3 : 4, GH = G * H;
  const Tensor w_hh_t = w_hh.t();
  const scalar_t* peep = ptr_or_null<scalar_t>(peephole);
  for (int64_t t = 0; t < s.T; ++t) {
    const int64_t b = s.size[t], off = s.offset[t];
    Tensor z = gates.narrow(0, off, b);  // (b, GH): x_proj of step t
    const Tensor h_prev = previous(hs, h0, s, t), c_prev = previous(cs, c0, s, t);
    z.addmm_(masked(h_prev, mask), w_hh_t);  // z = x_proj + h_rec @ W_hh^T
    scalar_t* zp = z.data_ptr<scalar_t>();
    const scalar_t* cp = c_prev.data_ptr<scalar_t>();
    scalar_t* hp = hs.data_ptr<scalar_t>() + off * H;
    scalar_t* cn = cs.data_ptr<scalar_t>() + off * H;
    for_rows(b, GH, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        scalar_t* __restrict__ zr = zp + r * GH;
        const scalar_t* __restrict__ c_old = cp + r * H;
        scalar_t* __restrict__ h_new = hp + r * H;
        scalar_t* __restrict__ c_new = cn + r * H;
        if constexpr (V == kCifg) {
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t f = sigmoid(zr[j]), g = tanh_(zr[H + j]), o = sigmoid(zr[2 * H + j]);
            const scalar_t c = g + f * (c_old[j] - g);
            zr[j] = f, zr[H + j] = g, zr[2 * H + j] = o;
            c_new[j] = c;
            h_new[j] = o * tanh_(c);
          }
        } else {
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            scalar_t zi = zr[j], zf = zr[H + j], zo = zr[3 * H + j];
            if constexpr (V == kPeephole) zi += peep[j] * c_old[j], zf += peep[H + j] * c_old[j];
            const scalar_t i = sigmoid(zi), f = sigmoid(zf), g = tanh_(zr[2 * H + j]);
            const scalar_t c = f * c_old[j] + i * g;
            if constexpr (V == kPeephole) zo += peep[2 * H + j] * c;
            const scalar_t o = sigmoid(zo);
            zr[j] = i, zr[H + j] = f, zr[2 * H + j] = g, zr[3 * H + j] = o;
            c_new[j] = c;
            h_new[j] = o * tanh_(c);
          }
        }
      }
    });
  }
}

// gates (N, GH): x_proj on entry, the gate activations on return (saved for backward).
// Returns (hs (N, H), cs (N, H), h_final (B, H), c_final (B, H)).
std::tuple<Tensor, Tensor, Tensor, Tensor> lstm_forward(Tensor gates, at::IntArrayRef batch_sizes, Tensor h0,
                                                        Tensor c0, Tensor w_hh, c10::optional<Tensor> peephole,
                                                        c10::optional<Tensor> mask, int64_t variant) {
  const Steps s(batch_sizes);
  check(gates, "gates", 2), check(h0, "h0", 2), check(c0, "c0", 2), check(w_hh, "w_hh", 2);
  TORCH_CHECK(gates.size(0) == s.N, "rnnkit loops: gates has ", gates.size(0), " rows, batch_sizes sum to ", s.N);
  const int64_t H = h0.size(1);
  Tensor hs = at::empty({s.N, H}, gates.options()), cs = at::empty({s.N, H}, gates.options());
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_forward", [&] {
    if (variant == kLstm) lstm_forward_loop<scalar_t, kLstm>(gates, s, h0, c0, w_hh, peephole, mask, hs, cs);
    else if (variant == kPeephole)
      lstm_forward_loop<scalar_t, kPeephole>(gates, s, h0, c0, w_hh, peephole, mask, hs, cs);
    else lstm_forward_loop<scalar_t, kCifg>(gates, s, h0, c0, w_hh, peephole, mask, hs, cs);
  });
  return {hs, cs, final_rows(hs, s), final_rows(cs, s)};
}

template <typename scalar_t, int64_t V>
void lstm_backward_loop(const Tensor& grad_hs, Tensor& dh, Tensor& dc, const Tensor& gates, const Tensor& cs,
                        const Tensor& c0, const Steps& s, const Tensor& w_hh, const c10::optional<Tensor>& peephole,
                        const c10::optional<Tensor>& mask, Tensor& grad_gates) {
  const int64_t H = c0.size(1), G = (V == kCifg) ? 3 : 4, GH = G * H;
  const scalar_t* peep = ptr_or_null<scalar_t>(peephole);
  for (int64_t t = s.T - 1; t >= 0; --t) {
    const int64_t b = s.size[t], off = s.offset[t];
    const Tensor c_prev = previous(cs, c0, s, t);
    const scalar_t* ap = gates.data_ptr<scalar_t>() + off * GH;
    const scalar_t* cp = c_prev.data_ptr<scalar_t>();
    const scalar_t* cnp = cs.data_ptr<scalar_t>() + off * H;
    const scalar_t* gop = grad_hs.data_ptr<scalar_t>() + off * H;
    scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* dcp = dc.data_ptr<scalar_t>();
    scalar_t* dzp = grad_gates.data_ptr<scalar_t>() + off * GH;
    for_rows(b, GH, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict__ a = ap + r * GH;
        const scalar_t* __restrict__ c_old = cp + r * H;
        const scalar_t* __restrict__ c_now = cnp + r * H;
        const scalar_t* __restrict__ g_out = gop + r * H;
        const scalar_t* __restrict__ dh_r = dhp + r * H;
        scalar_t* __restrict__ dc_r = dcp + r * H;
        scalar_t* __restrict__ dz = dzp + r * GH;
        if constexpr (V == kCifg) {
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t f = a[j], g = a[H + j], o = a[2 * H + j];
            const scalar_t tc = tanh_(c_now[j]), dht = dh_r[j] + g_out[j];
            const scalar_t dct = dc_r[j] + dht * o * (1 - tc * tc);  // c' reaches h' through tanh
            dz[j] = dct * (c_old[j] - g) * f * (1 - f);               // c' = f c + (1 - f) g
            dz[H + j] = dct * (1 - f) * (1 - g * g);
            dz[2 * H + j] = dht * tc * o * (1 - o);
            dc_r[j] = dct * f;
          }
        } else {
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
            const scalar_t tc = tanh_(c_now[j]), dht = dh_r[j] + g_out[j];
            const scalar_t dzo = dht * tc * o * (1 - o);  // h' = o tanh(c')
            scalar_t dct = dc_r[j] + dht * o * (1 - tc * tc);
            if constexpr (V == kPeephole) dct += dzo * peep[2 * H + j];  // o = σ(z_o + w_co c')
            const scalar_t dzi = dct * g * i * (1 - i), dzf = dct * c_old[j] * f * (1 - f);
            dz[j] = dzi, dz[H + j] = dzf, dz[2 * H + j] = dct * i * (1 - g * g), dz[3 * H + j] = dzo;
            scalar_t dc_old = dct * f;  // c' = f c + i g
            if constexpr (V == kPeephole) dc_old += dzi * peep[j] + dzf * peep[H + j];
            dc_r[j] = dc_old;
          }
        }
      }
    });
    Tensor dh_rows = dh.narrow(0, 0, b);
    at::mm_out(dh_rows, grad_gates.narrow(0, off, b), w_hh);  // dL/dh_rec = dz @ W_hh
    if (mask.has_value()) dh_rows.mul_(mask->narrow(0, 0, b));
  }
}

// Returns (grad_gates (N, GH): dL/d(pre-activations), grad_h0 (B, H), grad_c0 (B, H)).
std::tuple<Tensor, Tensor, Tensor> lstm_backward(Tensor grad_hs, Tensor grad_h_final, Tensor grad_c_final,
                                                 Tensor gates, Tensor cs, Tensor c0, at::IntArrayRef batch_sizes,
                                                 Tensor w_hh, c10::optional<Tensor> peephole,
                                                 c10::optional<Tensor> mask, int64_t variant) {
  const Steps s(batch_sizes);
  check(grad_hs, "grad_hs", 2), check(gates, "gates", 2), check(cs, "cs", 2), check(w_hh, "w_hh", 2);
  // running gradients of (h, c): a sequence's final-state gradient waits in its row until its last step
  Tensor dh = grad_h_final.contiguous().clone(), dc = grad_c_final.contiguous().clone();
  Tensor grad_gates = at::empty_like(gates);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_backward", [&] {
    if (variant == kLstm)
      lstm_backward_loop<scalar_t, kLstm>(grad_hs, dh, dc, gates, cs, c0, s, w_hh, peephole, mask, grad_gates);
    else if (variant == kPeephole)
      lstm_backward_loop<scalar_t, kPeephole>(grad_hs, dh, dc, gates, cs, c0, s, w_hh, peephole, mask, grad_gates);
    else lstm_backward_loop<scalar_t, kCifg>(grad_hs, dh, dc, gates, cs, c0, s, w_hh, peephole, mask, grad_gates);
  });
  return {grad_gates, dh, dc};
}

// ================================================================================== plain RNN
// h' = act(x_proj + h_rec W_hh^T), act tanh or ReLU.  Backward reads act' from h' alone.

template <typename scalar_t, bool Relu>
void rnn_forward_loop(Tensor& z_all, const Steps& s, const Tensor& h0, const Tensor& w_hh,
                      const c10::optional<Tensor>& mask, Tensor& hs) {
  const int64_t H = h0.size(1);
  const Tensor w_hh_t = w_hh.t();
  for (int64_t t = 0; t < s.T; ++t) {
    const int64_t b = s.size[t], off = s.offset[t];
    Tensor z = z_all.narrow(0, off, b);
    z.addmm_(masked(previous(hs, h0, s, t), mask), w_hh_t);
    const scalar_t* zp = z.data_ptr<scalar_t>();
    scalar_t* hp = hs.data_ptr<scalar_t>() + off * H;
    for_rows(b, H, [&](int64_t r0, int64_t r1) {
      const scalar_t* __restrict__ zr = zp + r0 * H;
      scalar_t* __restrict__ h = hp + r0 * H;
#pragma omp simd
      for (int64_t j = 0; j < (r1 - r0) * H; ++j) {
        if constexpr (Relu) h[j] = zr[j] > 0 ? zr[j] : scalar_t(0);
        else h[j] = tanh_(zr[j]);
      }
    });
  }
}

// z_all (N, H): x_proj, used as scratch.  Returns (hs (N, H), h_final (B, H)).
std::tuple<Tensor, Tensor> rnn_forward(Tensor z_all, at::IntArrayRef batch_sizes, Tensor h0, Tensor w_hh,
                                       c10::optional<Tensor> mask, bool relu) {
  const Steps s(batch_sizes);
  check(z_all, "x_proj", 2), check(h0, "h0", 2), check(w_hh, "w_hh", 2);
  Tensor hs = at::empty({s.N, h0.size(1)}, z_all.options());
  AT_DISPATCH_FLOATING_TYPES(z_all.scalar_type(), "rnn_forward", [&] {
    if (relu) rnn_forward_loop<scalar_t, true>(z_all, s, h0, w_hh, mask, hs);
    else rnn_forward_loop<scalar_t, false>(z_all, s, h0, w_hh, mask, hs);
  });
  return {hs, final_rows(hs, s)};
}

template <typename scalar_t, bool Relu>
void rnn_backward_loop(const Tensor& grad_hs, Tensor& dh, const Tensor& hs, const Steps& s, const Tensor& w_hh,
                       const c10::optional<Tensor>& mask, Tensor& grad_z) {
  const int64_t H = hs.size(1);
  for (int64_t t = s.T - 1; t >= 0; --t) {
    const int64_t b = s.size[t], off = s.offset[t];
    const scalar_t* hp = hs.data_ptr<scalar_t>() + off * H;
    const scalar_t* gop = grad_hs.data_ptr<scalar_t>() + off * H;
    const scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* dzp = grad_z.data_ptr<scalar_t>() + off * H;
    for_rows(b, H, [&](int64_t r0, int64_t r1) {
      const scalar_t* __restrict__ h = hp + r0 * H;
      const scalar_t* __restrict__ g_out = gop + r0 * H;
      const scalar_t* __restrict__ dh_r = dhp + r0 * H;
      scalar_t* __restrict__ dz = dzp + r0 * H;
#pragma omp simd
      for (int64_t j = 0; j < (r1 - r0) * H; ++j) {
        const scalar_t dht = dh_r[j] + g_out[j];
        if constexpr (Relu) dz[j] = h[j] > 0 ? dht : scalar_t(0);
        else dz[j] = dht * (1 - h[j] * h[j]);
      }
    });
    Tensor dh_rows = dh.narrow(0, 0, b);
    at::mm_out(dh_rows, grad_z.narrow(0, off, b), w_hh);
    if (mask.has_value()) dh_rows.mul_(mask->narrow(0, 0, b));
  }
}

// Returns (grad_z (N, H), grad_h0 (B, H)).
std::tuple<Tensor, Tensor> rnn_backward(Tensor grad_hs, Tensor grad_h_final, Tensor hs, at::IntArrayRef batch_sizes,
                                        Tensor w_hh, c10::optional<Tensor> mask, bool relu) {
  const Steps s(batch_sizes);
  check(grad_hs, "grad_hs", 2), check(hs, "hs", 2), check(w_hh, "w_hh", 2);
  Tensor dh = grad_h_final.contiguous().clone(), grad_z = at::empty_like(hs);
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "rnn_backward", [&] {
    if (relu) rnn_backward_loop<scalar_t, true>(grad_hs, dh, hs, s, w_hh, mask, grad_z);
    else rnn_backward_loop<scalar_t, false>(grad_hs, dh, hs, s, w_hh, mask, grad_z);
  });
  return {grad_z, dh};
}

// ================================================================================== GRU, reset after
// r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r h_n), h' = (1 - z) n + z h,
// with (h_r, h_z, h_n) = h_rec W_hh^T + b_hh (torch.nn.GRU's form).

template <typename scalar_t>
void gru_forward_loop(Tensor& gates, const Steps& s, const Tensor& h0, const Tensor& w_hh,
                      const c10::optional<Tensor>& b_hh, const c10::optional<Tensor>& mask, Tensor& hs,
                      Tensor& hn_all) {
  const int64_t H = h0.size(1), GH = 3 * H;
  const Tensor w_hh_t = w_hh.t();
  Tensor hp_buf = at::empty({s.B, GH}, gates.options());
  for (int64_t t = 0; t < s.T; ++t) {
    const int64_t b = s.size[t], off = s.offset[t];
    const Tensor h_prev = previous(hs, h0, s, t);
    Tensor hp = hp_buf.narrow(0, 0, b);
    if (b_hh.has_value()) at::addmm_out(hp, *b_hh, masked(h_prev, mask), w_hh_t);
    else at::mm_out(hp, masked(h_prev, mask), w_hh_t);
    scalar_t* xp = gates.data_ptr<scalar_t>() + off * GH;
    const scalar_t* hpp = hp.data_ptr<scalar_t>();
    const scalar_t* h_oldp = h_prev.data_ptr<scalar_t>();
    scalar_t* h_newp = hs.data_ptr<scalar_t>() + off * H;
    scalar_t* hnp = hn_all.data_ptr<scalar_t>() + off * H;
    for_rows(b, GH, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        scalar_t* __restrict__ x = xp + r * GH;
        const scalar_t* __restrict__ rec = hpp + r * GH;
        const scalar_t* __restrict__ h_old = h_oldp + r * H;
        scalar_t* __restrict__ h_new = h_newp + r * H;
        scalar_t* __restrict__ hn = hnp + r * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t rg = sigmoid(x[j] + rec[j]), zg = sigmoid(x[H + j] + rec[H + j]);
          const scalar_t n = tanh_(x[2 * H + j] + rg * rec[2 * H + j]);
          x[j] = rg, x[H + j] = zg, x[2 * H + j] = n;
          hn[j] = rec[2 * H + j];
          h_new[j] = (1 - zg) * n + zg * h_old[j];
        }
      }
    });
  }
}

// gates (N, 3H): x_proj (with b_ih only) on entry, the activations r, z, n on return.
// Returns (hs (N, H), hn (N, H) = W_hn h_rec + b_hn, h_final (B, H)).
std::tuple<Tensor, Tensor, Tensor> gru_forward(Tensor gates, at::IntArrayRef batch_sizes, Tensor h0, Tensor w_hh,
                                               c10::optional<Tensor> b_hh, c10::optional<Tensor> mask) {
  const Steps s(batch_sizes);
  check(gates, "gates", 2), check(h0, "h0", 2), check(w_hh, "w_hh", 2);
  const int64_t H = h0.size(1);
  Tensor hs = at::empty({s.N, H}, gates.options()), hn = at::empty({s.N, H}, gates.options());
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_forward",
                             [&] { gru_forward_loop<scalar_t>(gates, s, h0, w_hh, b_hh, mask, hs, hn); });
  return {hs, hn, final_rows(hs, s)};
}

template <typename scalar_t>
void gru_backward_loop(const Tensor& grad_hs, Tensor& dh, const Tensor& gates, const Tensor& hs, const Tensor& hn,
                       const Tensor& h0, const Steps& s, const Tensor& w_hh, const c10::optional<Tensor>& mask,
                       Tensor& grad_x, Tensor& grad_hp) {
  const int64_t H = h0.size(1), GH = 3 * H;
  for (int64_t t = s.T - 1; t >= 0; --t) {
    const int64_t b = s.size[t], off = s.offset[t];
    const Tensor h_prev = previous(hs, h0, s, t);
    const scalar_t* ap = gates.data_ptr<scalar_t>() + off * GH;
    const scalar_t* h_oldp = h_prev.data_ptr<scalar_t>();
    const scalar_t* hnp = hn.data_ptr<scalar_t>() + off * H;
    const scalar_t* gop = grad_hs.data_ptr<scalar_t>() + off * H;
    scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* dxp = grad_x.data_ptr<scalar_t>() + off * GH;
    scalar_t* dhpp = grad_hp.data_ptr<scalar_t>() + off * GH;
    for_rows(b, GH, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict__ a = ap + r * GH;
        const scalar_t* __restrict__ h_old = h_oldp + r * H;
        const scalar_t* __restrict__ h_n = hnp + r * H;
        const scalar_t* __restrict__ g_out = gop + r * H;
        scalar_t* __restrict__ dh_r = dhp + r * H;
        scalar_t* __restrict__ dx = dxp + r * GH;
        scalar_t* __restrict__ dhproj = dhpp + r * GH;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t rg = a[j], zg = a[H + j], n = a[2 * H + j];
          const scalar_t dht = dh_r[j] + g_out[j];
          const scalar_t dn_pre = dht * (1 - zg) * (1 - n * n);  // h' = (1 - z) n + z h;  n = tanh(.)
          const scalar_t dr_pre = dn_pre * h_n[j] * rg * (1 - rg);
          const scalar_t dz_pre = dht * (h_old[j] - n) * zg * (1 - zg);
          dx[j] = dr_pre, dx[H + j] = dz_pre, dx[2 * H + j] = dn_pre;
          dhproj[j] = dr_pre, dhproj[H + j] = dz_pre, dhproj[2 * H + j] = dn_pre * rg;
          dh_r[j] = dht * zg;  // the direct path z h; the path through W_hh is added below
        }
      }
    });
    Tensor dh_rows = dh.narrow(0, 0, b);
    const Tensor through = grad_hp.narrow(0, off, b);
    if (mask.has_value()) dh_rows.add_(at::mm(through, w_hh).mul_(mask->narrow(0, 0, b)));
    else dh_rows.addmm_(through, w_hh);
  }
}

// Returns (grad_x_proj (N, 3H), grad_h_proj (N, 3H), grad_h0 (B, H)).
std::tuple<Tensor, Tensor, Tensor> gru_backward(Tensor grad_hs, Tensor grad_h_final, Tensor gates, Tensor hs,
                                                Tensor hn, Tensor h0, at::IntArrayRef batch_sizes, Tensor w_hh,
                                                c10::optional<Tensor> mask) {
  const Steps s(batch_sizes);
  check(grad_hs, "grad_hs", 2), check(gates, "gates", 2), check(hs, "hs", 2), check(hn, "hn", 2);
  Tensor dh = grad_h_final.contiguous().clone();
  Tensor grad_x = at::empty_like(gates), grad_hp = at::empty_like(gates);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_backward", [&] {
    gru_backward_loop<scalar_t>(grad_hs, dh, gates, hs, hn, h0, s, w_hh, mask, grad_x, grad_hp);
  });
  return {grad_x, grad_hp, dh};
}

// ================================================================================== GRU, reset before
// r, z = σ(x_rz + h_rec W_rz^T), n = tanh(x_n + (r h_rec) W_n^T), h' = (1 - z) n + z h (Cho et al. 2014).

template <typename scalar_t>
void gru_v1_forward_loop(Tensor& gates, const Steps& s, const Tensor& h0, const Tensor& w_hh,
                         const c10::optional<Tensor>& mask, Tensor& hs, Tensor& reset_h) {
  const int64_t H = h0.size(1), GH = 3 * H;
  const Tensor w_rz_t = w_hh.narrow(0, 0, 2 * H).t(), w_n_t = w_hh.narrow(0, 2 * H, H).t();
  Tensor rz_buf = at::empty({s.B, 2 * H}, gates.options()), n_buf = at::empty({s.B, H}, gates.options());
  for (int64_t t = 0; t < s.T; ++t) {
    const int64_t b = s.size[t], off = s.offset[t];
    const Tensor h_prev = previous(hs, h0, s, t), h_rec = masked(h_prev, mask).contiguous();
    Tensor rz = rz_buf.narrow(0, 0, b), nn = n_buf.narrow(0, 0, b), rh = reset_h.narrow(0, off, b);
    at::mm_out(rz, h_rec, w_rz_t);
    scalar_t* xp = gates.data_ptr<scalar_t>() + off * GH;
    const scalar_t* rzp = rz.data_ptr<scalar_t>();
    const scalar_t* hrp = h_rec.data_ptr<scalar_t>();
    scalar_t* rhp = rh.data_ptr<scalar_t>();
    for_rows(b, GH, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        scalar_t* __restrict__ x = xp + r * GH;
        const scalar_t* __restrict__ rec = rzp + r * 2 * H;
        const scalar_t* __restrict__ hr = hrp + r * H;
        scalar_t* __restrict__ reset = rhp + r * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t rg = sigmoid(x[j] + rec[j]), zg = sigmoid(x[H + j] + rec[H + j]);
          x[j] = rg, x[H + j] = zg;
          reset[j] = rg * hr[j];
        }
      }
    });
    at::mm_out(nn, rh, w_n_t);
    const scalar_t* np = nn.data_ptr<scalar_t>();
    const scalar_t* h_oldp = h_prev.data_ptr<scalar_t>();
    scalar_t* h_newp = hs.data_ptr<scalar_t>() + off * H;
    for_rows(b, GH, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        scalar_t* __restrict__ x = xp + r * GH;
        const scalar_t* __restrict__ rec = np + r * H;
        const scalar_t* __restrict__ h_old = h_oldp + r * H;
        scalar_t* __restrict__ h_new = h_newp + r * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t n = tanh_(x[2 * H + j] + rec[j]), zg = x[H + j];
          x[2 * H + j] = n;
          h_new[j] = (1 - zg) * n + zg * h_old[j];
        }
      }
    });
  }
}

// Returns (hs (N, H), reset_h (N, H) = r h_rec, h_final (B, H)); gates becomes r, z, n.
std::tuple<Tensor, Tensor, Tensor> gru_v1_forward(Tensor gates, at::IntArrayRef batch_sizes, Tensor h0, Tensor w_hh,
                                                  c10::optional<Tensor> mask) {
  const Steps s(batch_sizes);
  check(gates, "gates", 2), check(h0, "h0", 2), check(w_hh, "w_hh", 2);
  const int64_t H = h0.size(1);
  Tensor hs = at::empty({s.N, H}, gates.options()), reset_h = at::empty({s.N, H}, gates.options());
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_v1_forward",
                             [&] { gru_v1_forward_loop<scalar_t>(gates, s, h0, w_hh, mask, hs, reset_h); });
  return {hs, reset_h, final_rows(hs, s)};
}

template <typename scalar_t>
void gru_v1_backward_loop(const Tensor& grad_hs, Tensor& dh, const Tensor& gates, const Tensor& hs, const Tensor& h0,
                          const Steps& s, const Tensor& w_hh, const c10::optional<Tensor>& mask, Tensor& grad_x) {
  const int64_t H = h0.size(1), GH = 3 * H;
  const Tensor w_rz = w_hh.narrow(0, 0, 2 * H), w_n = w_hh.narrow(0, 2 * H, H);
  Tensor d_reset_buf = at::empty({s.B, H}, gates.options());
  for (int64_t t = s.T - 1; t >= 0; --t) {
    const int64_t b = s.size[t], off = s.offset[t];
    const Tensor h_prev = previous(hs, h0, s, t), h_rec = masked(h_prev, mask).contiguous();
    const scalar_t* ap = gates.data_ptr<scalar_t>() + off * GH;
    const scalar_t* h_oldp = h_prev.data_ptr<scalar_t>();
    const scalar_t* gop = grad_hs.data_ptr<scalar_t>() + off * H;
    scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* dxp = grad_x.data_ptr<scalar_t>() + off * GH;
    for_rows(b, GH, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict__ a = ap + r * GH;
        const scalar_t* __restrict__ h_old = h_oldp + r * H;
        const scalar_t* __restrict__ g_out = gop + r * H;
        scalar_t* __restrict__ dh_r = dhp + r * H;
        scalar_t* __restrict__ dx = dxp + r * GH;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t zg = a[H + j], n = a[2 * H + j], dht = dh_r[j] + g_out[j];
          dx[2 * H + j] = dht * (1 - zg) * (1 - n * n);           // n = tanh(x_n + (r h_rec) W_n^T)
          dx[H + j] = dht * (h_old[j] - n) * zg * (1 - zg);         // z = σ(.)
          dh_r[j] = dht * zg;                                     // the direct path z h
        }
      }
    });
    Tensor d_reset = d_reset_buf.narrow(0, 0, b);
    at::mm_out(d_reset, grad_x.narrow(0, off, b).narrow(1, 2 * H, H), w_n);  // dL/d(r h_rec)
    scalar_t* drp = d_reset.data_ptr<scalar_t>();
    const scalar_t* hrp = h_rec.data_ptr<scalar_t>();
    for_rows(b, GH, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict__ a = ap + r * GH;
        const scalar_t* __restrict__ hr = hrp + r * H;
        scalar_t* __restrict__ d_rh = drp + r * H;
        scalar_t* __restrict__ dx = dxp + r * GH;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t rg = a[j];
          dx[j] = d_rh[j] * hr[j] * rg * (1 - rg);  // r = σ(.), its product with h_rec
          d_rh[j] *= rg;                            // now dL/dh_rec through r h_rec
        }
      }
    });
    d_reset.addmm_(grad_x.narrow(0, off, b).narrow(1, 0, 2 * H), w_rz);  // + through W_rz
    if (mask.has_value()) d_reset.mul_(mask->narrow(0, 0, b));
    dh.narrow(0, 0, b).add_(d_reset);
  }
}

// Returns (grad_x_proj (N, 3H), grad_h0 (B, H)).
std::tuple<Tensor, Tensor> gru_v1_backward(Tensor grad_hs, Tensor grad_h_final, Tensor gates, Tensor hs, Tensor h0,
                                           at::IntArrayRef batch_sizes, Tensor w_hh, c10::optional<Tensor> mask) {
  const Steps s(batch_sizes);
  check(grad_hs, "grad_hs", 2), check(gates, "gates", 2), check(hs, "hs", 2);
  Tensor dh = grad_h_final.contiguous().clone(), grad_x = at::empty_like(gates);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_v1_backward",
                             [&] { gru_v1_backward_loop<scalar_t>(grad_hs, dh, gates, hs, h0, s, w_hh, mask, grad_x); });
  return {grad_x, dh};
}

// ================================================================================== layer-norm LSTM
// a = x_proj + h_rec W_hh^T; per gate k: â_k = (a_k - mean) / sqrt(var + eps), z_k = γ_k â_k + β_k;
// i, f, o = σ(z), g = tanh(z); c' = f c + i g; y = γ_c LN(c') + β_c; h' = o tanh(y).
// Saved: â (N, 4H) in place of a, the gates' inverse std (N, 4), c' and its mean and inverse std.

template <typename scalar_t>
inline void normalise(scalar_t* __restrict__ v, int64_t H, double eps, scalar_t& mean_out, scalar_t& inv_std_out) {
  scalar_t sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < H; ++j) sum += v[j];
  const scalar_t mean = sum / H;
  scalar_t sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t j = 0; j < H; ++j) sq += (v[j] - mean) * (v[j] - mean);
  const scalar_t inv_std = scalar_t(1) / std::sqrt(sq / H + scalar_t(eps));
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) v[j] = (v[j] - mean) * inv_std;
  mean_out = mean, inv_std_out = inv_std;
}

// dL/dv for v -> v̂ = (v - mean) inv_std, given dL/dv̂ in d (overwritten with the result).
template <typename scalar_t>
inline void normalise_backward(scalar_t* __restrict__ d, const scalar_t* __restrict__ v_hat, int64_t H,
                               scalar_t inv_std) {
  scalar_t sum_d = 0, sum_dv = 0;
#pragma omp simd reduction(+ : sum_d, sum_dv)
  for (int64_t j = 0; j < H; ++j) sum_d += d[j], sum_dv += d[j] * v_hat[j];
  const scalar_t mean_d = sum_d / H, mean_dv = sum_dv / H;
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) d[j] = inv_std * (d[j] - mean_d - v_hat[j] * mean_dv);
}

template <typename scalar_t>
void layernorm_forward_loop(Tensor& a_all, const Steps& s, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                            const Tensor& ln_g, const Tensor& ln_b, const Tensor& ln_cg, const Tensor& ln_cb,
                            const c10::optional<Tensor>& mask, double eps, Tensor& hs, Tensor& cs, Tensor& gate_stats,
                            Tensor& cell_stats) {
  const int64_t H = h0.size(1), GH = 4 * H;
  const Tensor w_hh_t = w_hh.t();
  const scalar_t *gain = ln_g.data_ptr<scalar_t>(), *bias = ln_b.data_ptr<scalar_t>();
  const scalar_t *cgain = ln_cg.data_ptr<scalar_t>(), *cbias = ln_cb.data_ptr<scalar_t>();
  for (int64_t t = 0; t < s.T; ++t) {
    const int64_t b = s.size[t], off = s.offset[t];
    Tensor a = a_all.narrow(0, off, b);
    const Tensor h_prev = previous(hs, h0, s, t), c_prev = previous(cs, c0, s, t);
    a.addmm_(masked(h_prev, mask), w_hh_t);
    scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* cp = c_prev.data_ptr<scalar_t>();
    scalar_t* hp = hs.data_ptr<scalar_t>() + off * H;
    scalar_t* cn = cs.data_ptr<scalar_t>() + off * H;
    scalar_t* gsp = gate_stats.data_ptr<scalar_t>() + off * 4;
    scalar_t* csp = cell_stats.data_ptr<scalar_t>() + off * 2;
    for_rows(b, GH, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        scalar_t* __restrict__ ar = ap + r * GH;
        const scalar_t* __restrict__ c_old = cp + r * H;
        scalar_t* __restrict__ h_new = hp + r * H;
        scalar_t* __restrict__ c_new = cn + r * H;
        scalar_t mean;
        for (int64_t k = 0; k < 4; ++k) normalise(ar + k * H, H, eps, mean, gsp[r * 4 + k]);  // a -> â
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t i = sigmoid(gain[j] * ar[j] + bias[j]);
          const scalar_t f = sigmoid(gain[H + j] * ar[H + j] + bias[H + j]);
          const scalar_t g = tanh_(gain[2 * H + j] * ar[2 * H + j] + bias[2 * H + j]);
          c_new[j] = f * c_old[j] + i * g;
          h_new[j] = c_new[j];  // scratch: normalised below
        }
        normalise(h_new, H, eps, csp[r * 2], csp[r * 2 + 1]);  // ĉ, in h_new for now
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t o = sigmoid(gain[3 * H + j] * ar[3 * H + j] + bias[3 * H + j]);
          h_new[j] = o * tanh_(cgain[j] * h_new[j] + cbias[j]);
        }
      }
    });
  }
}

// a (N, 4H): x_proj (no biases) on entry, the normalised pre-activations â on return.
// Returns (hs, cs, gate_stats (N, 4) = inverse std per gate, cell_stats (N, 2) = mean and inverse std of c',
//          h_final, c_final).
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> layernorm_lstm_forward(
    Tensor a, at::IntArrayRef batch_sizes, Tensor h0, Tensor c0, Tensor w_hh, Tensor ln_gates_weight,
    Tensor ln_gates_bias, Tensor ln_cell_weight, Tensor ln_cell_bias, c10::optional<Tensor> mask, double eps) {
  const Steps s(batch_sizes);
  check(a, "x_proj", 2), check(h0, "h0", 2), check(c0, "c0", 2), check(w_hh, "w_hh", 2);
  const int64_t H = h0.size(1);
  Tensor hs = at::empty({s.N, H}, a.options()), cs = at::empty({s.N, H}, a.options());
  Tensor gate_stats = at::empty({s.N, 4}, a.options()), cell_stats = at::empty({s.N, 2}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "layernorm_lstm_forward", [&] {
    layernorm_forward_loop<scalar_t>(a, s, h0, c0, w_hh, ln_gates_weight, ln_gates_bias, ln_cell_weight,
                                     ln_cell_bias, mask, eps, hs, cs, gate_stats, cell_stats);
  });
  return {hs, cs, gate_stats, cell_stats, final_rows(hs, s), final_rows(cs, s)};
}

template <typename scalar_t>
void layernorm_backward_loop(const Tensor& grad_hs, Tensor& dh, Tensor& dc, const Tensor& a_hat, const Tensor& cs,
                             const Tensor& c0, const Tensor& gate_stats, const Tensor& cell_stats, const Steps& s,
                             const Tensor& w_hh, const Tensor& ln_g, const Tensor& ln_b, const Tensor& ln_cg,
                             const Tensor& ln_cb, const c10::optional<Tensor>& mask, Tensor& grad_z, Tensor& grad_a,
                             Tensor& grad_y) {
  const int64_t H = c0.size(1), GH = 4 * H;
  const scalar_t *gain = ln_g.data_ptr<scalar_t>(), *bias = ln_b.data_ptr<scalar_t>();
  const scalar_t *cgain = ln_cg.data_ptr<scalar_t>(), *cbias = ln_cb.data_ptr<scalar_t>();
  for (int64_t t = s.T - 1; t >= 0; --t) {
    const int64_t b = s.size[t], off = s.offset[t];
    const Tensor c_prev = previous(cs, c0, s, t);
    const scalar_t* ap = a_hat.data_ptr<scalar_t>() + off * GH;
    const scalar_t* cp = c_prev.data_ptr<scalar_t>();
    const scalar_t* cnp = cs.data_ptr<scalar_t>() + off * H;
    const scalar_t* gsp = gate_stats.data_ptr<scalar_t>() + off * 4;
    const scalar_t* csp = cell_stats.data_ptr<scalar_t>() + off * 2;
    const scalar_t* gop = grad_hs.data_ptr<scalar_t>() + off * H;
    const scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* dcp = dc.data_ptr<scalar_t>();
    scalar_t* dzp = grad_z.data_ptr<scalar_t>() + off * GH;
    scalar_t* dap = grad_a.data_ptr<scalar_t>() + off * GH;
    scalar_t* dyp = grad_y.data_ptr<scalar_t>() + off * H;
    for_rows(b, GH, [&](int64_t r0, int64_t r1) {
      std::vector<scalar_t> c_hat_buf(H), d_chat_buf(H);
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict__ ah = ap + r * GH;
        const scalar_t* __restrict__ c_old = cp + r * H;
        const scalar_t* __restrict__ c_now = cnp + r * H;
        const scalar_t* __restrict__ g_out = gop + r * H;
        const scalar_t* __restrict__ dh_r = dhp + r * H;
        scalar_t* __restrict__ dc_r = dcp + r * H;
        scalar_t* __restrict__ dz = dzp + r * GH;
        scalar_t* __restrict__ da = dap + r * GH;
        scalar_t* __restrict__ dy = dyp + r * H;
        scalar_t* __restrict__ c_hat = c_hat_buf.data();
        scalar_t* __restrict__ d_chat = d_chat_buf.data();
        const scalar_t c_mean = csp[r * 2], c_inv = csp[r * 2 + 1];
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {  // h' = o tanh(y), y = γ_c ĉ + β_c
          c_hat[j] = (c_now[j] - c_mean) * c_inv;
          const scalar_t o = sigmoid(gain[3 * H + j] * ah[3 * H + j] + bias[3 * H + j]);
          const scalar_t ty = tanh_(cgain[j] * c_hat[j] + cbias[j]), dht = dh_r[j] + g_out[j];
          dz[3 * H + j] = dht * ty * o * (1 - o);
          dy[j] = dht * o * (1 - ty * ty);
          d_chat[j] = dy[j] * cgain[j];
        }
        normalise_backward(d_chat, c_hat, H, c_inv);  // now dL/dc' through LN(c')
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {  // c' = f c + i g
          const scalar_t i = sigmoid(gain[j] * ah[j] + bias[j]);
          const scalar_t f = sigmoid(gain[H + j] * ah[H + j] + bias[H + j]);
          const scalar_t g = tanh_(gain[2 * H + j] * ah[2 * H + j] + bias[2 * H + j]);
          const scalar_t dct = dc_r[j] + d_chat[j];
          dz[j] = dct * g * i * (1 - i);
          dz[H + j] = dct * c_old[j] * f * (1 - f);
          dz[2 * H + j] = dct * i * (1 - g * g);
          dc_r[j] = dct * f;
        }
#pragma omp simd
        for (int64_t j = 0; j < GH; ++j) da[j] = dz[j] * gain[j];  // z = γ â + β
        for (int64_t k = 0; k < 4; ++k) normalise_backward(da + k * H, ah + k * H, H, gsp[r * 4 + k]);
      }
    });
    Tensor dh_rows = dh.narrow(0, 0, b);
    at::mm_out(dh_rows, grad_a.narrow(0, off, b), w_hh);
    if (mask.has_value()) dh_rows.mul_(mask->narrow(0, 0, b));
  }
}

// Returns (grad_z (N, 4H) = dL/d(γ â + β), grad_a (N, 4H) = dL/da, grad_y (N, H) = dL/d(γ_c ĉ + β_c),
//          grad_h0, grad_c0).
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> layernorm_lstm_backward(
    Tensor grad_hs, Tensor grad_h_final, Tensor grad_c_final, Tensor a_hat, Tensor cs, Tensor c0, Tensor gate_stats,
    Tensor cell_stats, at::IntArrayRef batch_sizes, Tensor w_hh, Tensor ln_gates_weight, Tensor ln_gates_bias,
    Tensor ln_cell_weight, Tensor ln_cell_bias, c10::optional<Tensor> mask) {
  const Steps s(batch_sizes);
  check(grad_hs, "grad_hs", 2), check(a_hat, "a_hat", 2), check(cs, "cs", 2);
  Tensor dh = grad_h_final.contiguous().clone(), dc = grad_c_final.contiguous().clone();
  Tensor grad_z = at::empty_like(a_hat), grad_a = at::empty_like(a_hat), grad_y = at::empty_like(cs);
  AT_DISPATCH_FLOATING_TYPES(a_hat.scalar_type(), "layernorm_lstm_backward", [&] {
    layernorm_backward_loop<scalar_t>(grad_hs, dh, dc, a_hat, cs, c0, gate_stats, cell_stats, s, w_hh,
                                      ln_gates_weight, ln_gates_bias, ln_cell_weight, ln_cell_bias, mask, grad_z,
                                      grad_a, grad_y);
  });
  return {grad_z, grad_a, grad_y, dh, dc};
}

}  // namespace

TORCH_LIBRARY(rnnkit_loops, m) {
  m.def("lstm_forward", &lstm_forward);
  m.def("lstm_backward", &lstm_backward);
  m.def("rnn_forward", &rnn_forward);
  m.def("rnn_backward", &rnn_backward);
  m.def("gru_forward", &gru_forward);
  m.def("gru_backward", &gru_backward);
  m.def("gru_v1_forward", &gru_v1_forward);
  m.def("gru_v1_backward", &gru_v1_backward);
  m.def("layernorm_lstm_forward", &layernorm_lstm_forward);
  m.def("layernorm_lstm_backward", &layernorm_lstm_backward);
}
