// The time loops of every rnnkit cell, compiled: one call runs all T steps forward, one call all
// steps backward (DESIGN.md, "Engine").  Per step: one GEMM for h @ W_hh^T, then ONE loop over the
// rows of the step for all the cell's pointwise math (SIMD over hidden units).
//
// Parallel over sequences, not per step: each thread takes a block of whole sequences through all
// the steps (for_sequences), since a sequence's step needs nothing from the others; its per-step
// GEMM covers only its own rows and runs single-threaded, on oneDNN's brgemm micro-kernel for
// float32 (gemm_rows) or the BLAS inside libtorch (MKL's sgemm_/dgemm_) on raw pointers, which
// saves the few microseconds of ATen dispatch and tensor set-up per call that dominate small
// sizes; where that BLAS is not found, ATen's addmm runs instead.  One parallel region per call
// instead of one or two per step, and no multi-threaded GEMM on 16 rows, took the LSTM's loops at
// the small benchmark size from 1.5 to 0.8 ms forward and 1.4 to 0.7 ms backward (2 threads).
// The input projection and the weight gradients stay single GEMMs over all T*B rows in Python
// (rnnkit/engine/compiled.py); the gradients of the small extra parameters (peepholes, layer-norm
// gains) are summed here, per thread, inside the backward loop.
//
// Layout: packed and sorted longest first, like PackedSequence.  Step t holds rows
// [offset[t], offset[t] + size[t]) of every (N, .) buffer, and its rows are the first size[t]
// rows of step t-1, so "the previous state" of step t is a contiguous block.
//
// The equations are those of rnnkit/cells/*.py, written once more here for speed; the tests hold
// the two to each other (float64 gradcheck and parity with the Python fused engine).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <dlfcn.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
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

// ------------------------------------------------------------------------------------ BLAS
using sgemm_fn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                          const int*, const float*, const int*, const float*, float*, const int*);
using dgemm_fn = void (*)(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
                          const int*, const double*, const int*, const double*, double*, const int*);
struct Blas {
  sgemm_fn s = nullptr;
  dgemm_fn d = nullptr;
};

// The Fortran BLAS that libtorch carries (MKL in the x86 wheels), found once; null members if absent.
const Blas& blas() {
  static const Blas found = [] {
    Blas b;
    if (std::getenv("RNNKIT_LOOPS_ATEN_GEMM") != nullptr) return b;  // tests hold the ATen path to the same numbers
    void* lib = dlopen("libtorch_cpu.so", RTLD_LAZY | RTLD_NOLOAD);
    void* where = lib != nullptr ? lib : RTLD_DEFAULT;
    b.s = reinterpret_cast<sgemm_fn>(dlsym(where, "sgemm_"));
    b.d = reinterpret_cast<dgemm_fn>(dlsym(where, "dgemm_"));
    return b;
  }();
  return found;
}

bool direct_blas() { return blas().s != nullptr && blas().d != nullptr; }

// oneDNN's matmul, through torch's op mkldnn::_linear_pointwise (rnnkit/gemm.py says why and when):
// for float32 products of at least onednn_min_macs multiply-adds, once Python has switched it on
// (use_onednn, called where the loops are loaded, after checking the op against mm).
bool onednn_enabled = false;
int64_t onednn_min_macs = 0;

bool use_onednn(bool enable, int64_t min_macs) {
  onednn_enabled = enable && c10::Dispatcher::singleton().findSchema({"mkldnn::_linear_pointwise", ""}).has_value();
  onednn_min_macs = min_macs;
  return onednn_enabled;
}

// a (rows x k) @ weight^T for weight (cols x k), any strides.
Tensor onednn_product(const Tensor& a, const Tensor& weight) {
  static const c10::OperatorHandle op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_linear_pointwise", "");
  c10::List<std::optional<at::Scalar>> scalars;
  scalars.push_back(std::nullopt);
  std::vector<c10::IValue> stack{a, weight, c10::IValue(), c10::IValue(std::string("none")), c10::IValue(scalars),
                                 c10::IValue()};
  op.callBoxed(&stack);
  return stack[0].toTensor();
}

// C (rows x cols) = beta C + A (rows x k) op(B), row-major with leading dimensions lda, ldb, ldc;
// B is given as (cols x k) and transposed when b_transposed, else given as (k x cols).
template <typename scalar_t>
void gemm(int64_t rows, int64_t cols, int64_t k, const scalar_t* a, int64_t lda, const scalar_t* b, int64_t ldb,
          bool b_transposed, scalar_t beta, scalar_t* c, int64_t ldc) {
  if (rows == 0 || cols == 0) return;
  if constexpr (std::is_same_v<scalar_t, float>) {
    if (onednn_enabled && rows * cols * k >= onednn_min_macs) {
      const auto options = at::TensorOptions().dtype(at::kFloat);
      const Tensor A = at::from_blob(const_cast<float*>(a), {rows, k}, {lda, 1}, options);
      const Tensor W = b_transposed ? at::from_blob(const_cast<float*>(b), {cols, k}, {ldb, 1}, options)
                                    : at::from_blob(const_cast<float*>(b), {k, cols}, {ldb, 1}, options).t();
      Tensor C = at::from_blob(c, {rows, cols}, {ldc, 1}, options);
      const Tensor product = onednn_product(A, W);
      if (beta == 0) C.copy_(product);
      else if (beta == 1) C.add_(product);
      else C.mul_(beta).add_(product);
      return;
    }
  }
  // row-major C = A op(B) is column-major C^T = op(B)^T A^T
  const char ta = b_transposed ? 'T' : 'N', tb = 'N';
  const int m = static_cast<int>(cols), n = static_cast<int>(rows), kk = static_cast<int>(k);
  const int la = static_cast<int>(ldb), lb = static_cast<int>(lda), lc = static_cast<int>(ldc);
  const scalar_t one = 1;
  if constexpr (std::is_same_v<scalar_t, float>) {
    if (blas().s != nullptr) return blas().s(&ta, &tb, &m, &n, &kk, &one, b, &la, a, &lb, &beta, c, &lc);
  } else {
    if (blas().d != nullptr) return blas().d(&ta, &tb, &m, &n, &kk, &one, b, &la, a, &lb, &beta, c, &lc);
  }
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value);
  const Tensor A = at::from_blob(const_cast<scalar_t*>(a), {rows, k}, {lda, 1}, options);
  const Tensor B = b_transposed ? at::from_blob(const_cast<scalar_t*>(b), {cols, k}, {ldb, 1}, options).t()
                                : at::from_blob(const_cast<scalar_t*>(b), {k, cols}, {ldb, 1}, options);
  Tensor C = at::from_blob(c, {rows, cols}, {ldc, 1}, options);
  if (beta == 0) C.copy_(at::mm(A, B));
  else C.addmm_(A, B, beta, 1);
}

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
  // The steps that sequence r runs, [0, length(r)): those with more than r rows.
  int64_t length(int64_t r) const {
    return std::partition_point(size.begin(), size.end(), [r](int64_t rows) { return rows > r; }) - size.begin();
  }

  // The previous state of step t's rows: the initial state, or the first rows of step t-1.
  template <typename scalar_t>
  const scalar_t* previous(const scalar_t* all, const scalar_t* initial, int64_t t, int64_t width) const {
    return t == 0 ? initial : all + offset[t - 1] * width;
  }
};

// (B, H): each sequence's row at its own last step.
Tensor final_rows(const Tensor& all, const Steps& s) {
  Tensor out = at::empty({s.B, all.size(1)}, all.options());
  for (int64_t t = 0; t < s.T; ++t) {
    const int64_t keep = s.next(t), ending = s.size[t] - keep;
    if (ending > 0) out.narrow(0, keep, ending).copy_(all.narrow(0, s.offset[t] + keep, ending));
  }
  return out;
}

// Rows [r0, r1) of h_rec = h_prev ⊙ mask (variational recurrent dropout), written into the same rows of scratch;
// without a mask, h_prev's own rows.  Returns the address of row r0.
template <typename scalar_t>
const scalar_t* recurrent_input(const scalar_t* h_prev, const scalar_t* mask, int64_t r0, int64_t r1, int64_t H,
                                scalar_t* scratch) {
  if (mask == nullptr) return h_prev + r0 * H;
  for (int64_t i = r0 * H; i < r1 * H; ++i) scratch[i] = h_prev[i] * mask[i];
  return scratch + r0 * H;
}

// Rows [r0, r1) of d times the mask.
template <typename scalar_t>
void apply_mask(scalar_t* d, const scalar_t* mask, int64_t r0, int64_t r1, int64_t H) {
  if (mask == nullptr) return;
  for (int64_t i = r0 * H; i < r1 * H; ++i) d[i] *= mask[i];
}

// The batch's sequences [0, B) in contiguous blocks, in parallel, each block through all its steps: body(r0, r1).
// A sequence's step needs only its own previous step (its row of h W_hh^T is its row of h times W_hh^T), so
// one parallel region runs the whole loop, without a synchronisation per step, and each thread runs the
// per-step products of its own rows single-threaded (gemm_rows).  In the packed layout a block's rows of step
// t are rows [r0, min(r1, size[t])) of that step: contiguous; the block runs the steps of its first (longest)
// sequence, [0, s.length(r0)).  The blocks get equal shares of the N rows (the longest sequences come first,
// so with unequal lengths the first blocks hold fewer sequences).  cost: one row's work per step
// (multiply-adds); a block gets at least ~32k of it per step.
std::vector<int64_t> sequence_blocks(const Steps& s, int64_t cost) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(cost, 1));
  const int64_t blocks = std::min<int64_t>(at::get_num_threads(), (s.B + grain - 1) / grain);
  if (blocks <= 1 || at::in_parallel_region()) return {0, s.B};
  std::vector<int64_t> bound(blocks + 1, s.B);
  bound[0] = 0;
  int64_t rows_before = 0, next = 1;
  for (int64_t r = 0; r < s.B && next < blocks; ++r) {
    rows_before += s.length(r);
    while (next < blocks && rows_before * blocks >= next * s.N) bound[next++] = r + 1;
  }
  return bound;
}

template <typename F>
inline void for_sequences(const Steps& s, int64_t cost, const F& body) {
  const std::vector<int64_t> bound = sequence_blocks(s, cost);
  const int64_t blocks = static_cast<int64_t>(bound.size()) - 1;
  if (blocks == 1) return body(0, s.B);
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t k = b0; k < b1; ++k)
      if (bound[k] < bound[k + 1]) body(bound[k], bound[k + 1]);
  });
}

// for_sequences' block boundaries [0, r1, r2, ..., B] for these batch sizes and cost (for the tests).
std::vector<int64_t> sequence_blocks_of(at::IntArrayRef batch_sizes, int64_t cost) {
  return sequence_blocks(Steps(batch_sizes), cost);
}

// Whether float32 per-step products run on oneDNN's brgemm micro-kernel (ATen's cpublas::brgemm, in torch
// since 2.5; JIT-compiled for each shape once per thread and cached there).  For the small products of one
// block's rows it measured 30-40% faster than MKL's sgemm on one thread (16 x 64 x 256: 4.9 against 7.3 µs).
// RNNKIT_LOOPS_BLAS=1 (or RNNKIT_LOOPS_ATEN_GEMM=1) turns it off; torch falls back to its BLAS by itself
// on a CPU without AVX2.
bool brgemm_enabled() {
#ifdef CPUBLAS_BRGEMM_F32F32F32
  static const bool enabled =
      std::getenv("RNNKIT_LOOPS_BLAS") == nullptr && std::getenv("RNNKIT_LOOPS_ATEN_GEMM") == nullptr;
  return enabled;
#else
  return false;
#endif
}

// C (rows x cols) = A (rows x k) @ B (k x cols), plus C where accumulate; row-major, B not transposed.
// Called by one thread for its block's rows.
template <typename scalar_t>
void gemm_rows(int64_t rows, int64_t cols, int64_t k, const scalar_t* a, int64_t lda, const scalar_t* b, int64_t ldb,
               bool accumulate, scalar_t* c, int64_t ldc) {
  if (rows <= 0) return;
#ifdef CPUBLAS_BRGEMM_F32F32F32
  if constexpr (std::is_same_v<scalar_t, float>) {
    if (brgemm_enabled()) return at::native::cpublas::brgemm(rows, cols, k, lda, ldb, ldc, accumulate, a, b, c, false);
  }
#endif
  gemm<scalar_t>(rows, cols, k, a, lda, b, ldb, false, accumulate ? 1 : 0, c, ldc);
}

// The right-hand side of the forward products h_rec W_hh^T.  brgemm reads it as (H, G*H) row-major, so a call
// of at least kCopySteps steps takes a transposed copy of W_hh once (1 MB at the medium benchmark size, read by
// 100 steps' products); a call of fewer steps (a generation step) reads W_hh as it is, transposed by the BLAS:
// there a copy per call cost more than the products (batch 1: 340 against 1,200 characters a second).
constexpr int64_t kCopySteps = 4;

template <typename scalar_t>
struct RecurrentWeight {
  const scalar_t* data;
  int64_t ld;
  bool transposed;  // data is W_hh itself, (G*H, H): the BLAS reads it transposed
  RecurrentWeight columns(int64_t j) const {  // columns j.. of W_hh^T
    return transposed ? RecurrentWeight{data + j * ld, ld, true} : RecurrentWeight{data + j, ld, false};
  }
};

Tensor recurrent_weight_tensor(const Tensor& w_hh, const Steps& s) {
  const bool brgemm = brgemm_enabled() && w_hh.scalar_type() == at::kFloat;  // float64 runs the BLAS, reading W_hh
  return brgemm && s.T >= kCopySteps ? w_hh.t().contiguous() : w_hh;
}

template <typename scalar_t>
RecurrentWeight<scalar_t> recurrent_weight(const Tensor& rhs, const Tensor& w_hh) {
  const bool copied = !rhs.is_same(w_hh);
  return {rhs.data_ptr<scalar_t>(), copied ? w_hh.size(0) : w_hh.size(1), !copied};
}

template <typename scalar_t>
void gemm_rows(int64_t rows, int64_t cols, int64_t k, const scalar_t* a, int64_t lda, RecurrentWeight<scalar_t> w,
               bool accumulate, scalar_t* c, int64_t ldc) {
  if (!w.transposed) return gemm_rows<scalar_t>(rows, cols, k, a, lda, w.data, w.ld, accumulate, c, ldc);
  if (rows > 0) gemm<scalar_t>(rows, cols, k, a, lda, w.data, w.ld, true, accumulate ? 1 : 0, c, ldc);
}

// Per-thread sums of a parameter gradient over rows, added up at the end (no atomics, no (N, .) buffer).
template <typename scalar_t>
struct Partials {
  int64_t width;
  std::vector<scalar_t> data;
  explicit Partials(int64_t width) : width(width), data(width * std::max(at::get_num_threads(), 1), 0) {}
  scalar_t* mine() { return data.data() + at::get_thread_num() * width; }
  Tensor total(const at::TensorOptions& options) const {
    Tensor out = at::zeros({width}, options);
    scalar_t* o = out.data_ptr<scalar_t>();
    for (size_t i = 0; i < data.size(); ++i) o[i % width] += data[i];
    return out;
  }
};

void check(const Tensor& t, const char* name, int64_t dim) {
  TORCH_CHECK(t.dim() == dim, "rnnkit loops: ", name, " must have ", dim, " dimensions, got ", t.sizes());
  TORCH_CHECK(t.is_contiguous(), "rnnkit loops: ", name, " must be contiguous");
  TORCH_CHECK(t.device().is_cpu(), "rnnkit loops: ", name, " must be on the CPU");
}

template <typename scalar_t>
const scalar_t* ptr_or_null(const c10::optional<Tensor>& t) {
  return t.has_value() ? t->data_ptr<scalar_t>() : nullptr;
}

template <typename scalar_t>
const scalar_t* cptr(const Tensor& t) {
  return t.data_ptr<scalar_t>();
}

// The bias the pointwise loops add to each row's input projection (zeros for a cell without one).
Tensor bias_or_zeros(const c10::optional<Tensor>& bias, int64_t width, const at::TensorOptions& options) {
  if (!bias.has_value()) return at::zeros({width}, options);
  TORCH_CHECK(bias->dim() == 1 && bias->size(0) == width, "rnnkit loops: bias must have shape (", width, ")");
  return bias->contiguous();
}

// An (N, width) gradient buffer: the one Python hands over (a reused workspace buffer, see
// rnnkit/engine/workspace.py) or a new one.
Tensor buffer_like(const c10::optional<Tensor>& given, const Tensor& like) {
  if (!given.has_value()) return at::empty_like(like);
  TORCH_CHECK(given->sizes() == like.sizes() && given->is_contiguous() && given->scalar_type() == like.scalar_type(),
              "rnnkit loops: the gradient buffer must be contiguous, of shape ", like.sizes());
  return *given;
}

// ================================================================================== LSTM family
// variant 0: LSTM                gates i, f, g, o   c' = f c + i g           h' = o tanh(c')
// variant 1: peephole LSTM       i, f see c; o sees c' (diagonal weights w_ci, w_cf, w_co)
// variant 2: CIFG LSTM           gates f, g, o      c' = f c + (1 - f) g
enum LstmVariant : int64_t { kLstm = 0, kPeephole = 1, kCifg = 2 };

template <typename scalar_t, int64_t V>
void lstm_forward_loop(scalar_t* gates, const scalar_t* bias, const Steps& s, const scalar_t* h0, const scalar_t* c0,
                       RecurrentWeight<scalar_t> w_t, const scalar_t* peep, const scalar_t* mask, scalar_t* hs,
                       scalar_t* cs,
                       int64_t H, scalar_t* scratch) {
  const int64_t GH = ((V == kCifg) ? 3 : 4) * H;
  for_sequences(s, GH * H, [&](int64_t r0, int64_t r_end) {
    for (int64_t t = 0, steps = s.length(r0); t < steps; ++t) {
      const int64_t off = s.offset[t], r1 = std::min(s.size[t], r_end);
      scalar_t* zp = gates + off * GH;  // (b, GH): x_proj of step t
      const scalar_t* h_prev = s.previous(hs, h0, t, H);
      const scalar_t* cp = s.previous(cs, c0, t, H);
      gemm_rows<scalar_t>(r1 - r0, GH, H, recurrent_input(h_prev, mask, r0, r1, H, scratch), H, w_t, true,
                          zp + r0 * GH, GH);
      scalar_t* hp = hs + off * H;
      scalar_t* cn = cs + off * H;
      for (int64_t r = r0; r < r1; ++r) {
        scalar_t* __restrict__ zr = zp + r * GH;
        const scalar_t* __restrict__ c_old = cp + r * H;
        scalar_t* __restrict__ h_new = hp + r * H;
        scalar_t* __restrict__ c_new = cn + r * H;
        if constexpr (V == kCifg) {
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t f = sigmoid(zr[j] + bias[j]), g = tanh_(zr[H + j] + bias[H + j]);
            const scalar_t o = sigmoid(zr[2 * H + j] + bias[2 * H + j]);
            const scalar_t c = g + f * (c_old[j] - g);
            zr[j] = f, zr[H + j] = g, zr[2 * H + j] = o;
            c_new[j] = c;
            h_new[j] = o * tanh_(c);
          }
        } else {
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            scalar_t zi = zr[j] + bias[j], zf = zr[H + j] + bias[H + j], zo = zr[3 * H + j] + bias[3 * H + j];
            if constexpr (V == kPeephole) zi += peep[j] * c_old[j], zf += peep[H + j] * c_old[j];
            const scalar_t i = sigmoid(zi), f = sigmoid(zf), g = tanh_(zr[2 * H + j] + bias[2 * H + j]);
            const scalar_t c = f * c_old[j] + i * g;
            if constexpr (V == kPeephole) zo += peep[2 * H + j] * c;
            const scalar_t o = sigmoid(zo);
            zr[j] = i, zr[H + j] = f, zr[2 * H + j] = g, zr[3 * H + j] = o;
            c_new[j] = c;
            h_new[j] = o * tanh_(c);
          }
        }
      }
    }
  });
}

// gates (N, GH): x W_ih^T on entry (the bias, b_ih + b_hh, is added in the loop: no (N, GH) broadcast), the gate
// activations on return (saved for backward).  Returns (hs (N, H), cs (N, H), h_final (B, H), c_final (B, H)).
std::tuple<Tensor, Tensor, Tensor, Tensor> lstm_forward(Tensor gates, c10::optional<Tensor> bias,
                                                        at::IntArrayRef batch_sizes, Tensor h0,
                                                        Tensor c0, Tensor w_hh, c10::optional<Tensor> peephole,
                                                        c10::optional<Tensor> mask, int64_t variant) {
  const Steps s(batch_sizes);
  check(gates, "gates", 2), check(h0, "h0", 2), check(c0, "c0", 2), check(w_hh, "w_hh", 2);
  TORCH_CHECK(gates.size(0) == s.N, "rnnkit loops: gates has ", gates.size(0), " rows, batch_sizes sum to ", s.N);
  const int64_t H = h0.size(1);
  Tensor hs = at::empty({s.N, H}, gates.options()), cs = at::empty({s.N, H}, gates.options());
  Tensor scratch = at::empty({mask.has_value() ? s.B : 0, H}, gates.options());
  const Tensor b = bias_or_zeros(bias, gates.size(1), gates.options());
  const Tensor w_rhs = recurrent_weight_tensor(w_hh, s);  // W_hh^T for the forward products
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_forward", [&] {
    auto run = [&](auto variant_tag) {
      constexpr int64_t V = decltype(variant_tag)::value;
      lstm_forward_loop<scalar_t, V>(gates.data_ptr<scalar_t>(), cptr<scalar_t>(b), s, cptr<scalar_t>(h0),
                                     cptr<scalar_t>(c0),
                                     recurrent_weight<scalar_t>(w_rhs, w_hh), ptr_or_null<scalar_t>(peephole),
                                     ptr_or_null<scalar_t>(mask), hs.data_ptr<scalar_t>(), cs.data_ptr<scalar_t>(),
                                     H, scratch.data_ptr<scalar_t>());
    };
    if (variant == kLstm) run(std::integral_constant<int64_t, kLstm>{});
    else if (variant == kPeephole) run(std::integral_constant<int64_t, kPeephole>{});
    else run(std::integral_constant<int64_t, kCifg>{});
  });
  return {hs, cs, final_rows(hs, s), final_rows(cs, s)};
}

template <typename scalar_t, int64_t V>
void lstm_backward_loop(const scalar_t* grad_hs, scalar_t* dh, scalar_t* dc, const scalar_t* gates,
                        const scalar_t* cs, const scalar_t* c0, const Steps& s, const scalar_t* w_hh,
                        const scalar_t* peep, const scalar_t* mask, scalar_t* grad_gates, int64_t H,
                        Partials<scalar_t>& peep_grad) {
  const int64_t GH = ((V == kCifg) ? 3 : 4) * H;
  for_sequences(s, GH * H, [&](int64_t r0, int64_t r_end) {
    scalar_t* __restrict__ acc = (V == kPeephole) ? peep_grad.mine() : nullptr;
    for (int64_t t = s.length(r0) - 1; t >= 0; --t) {
      const int64_t off = s.offset[t], r1 = std::min(s.size[t], r_end);
      const scalar_t* ap = gates + off * GH;
      const scalar_t* cp = s.previous(cs, c0, t, H);
      const scalar_t* cnp = cs + off * H;
      const scalar_t* gop = grad_hs + off * H;
      scalar_t* dzp = grad_gates + off * GH;
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict__ a = ap + r * GH;
        const scalar_t* __restrict__ c_old = cp + r * H;
        const scalar_t* __restrict__ c_now = cnp + r * H;
        const scalar_t* __restrict__ g_out = gop + r * H;
        const scalar_t* __restrict__ dh_r = dh + r * H;
        scalar_t* __restrict__ dc_r = dc + r * H;
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
            if constexpr (V == kPeephole) {
              dc_old += dzi * peep[j] + dzf * peep[H + j];
              acc[j] += dzi * c_old[j], acc[H + j] += dzf * c_old[j], acc[2 * H + j] += dzo * c_now[j];
            }
            dc_r[j] = dc_old;
          }
        }
      }
      gemm_rows<scalar_t>(r1 - r0, H, GH, dzp + r0 * GH, GH, w_hh, H, false, dh + r0 * H, H);  // dL/dh_rec = dz W_hh
      apply_mask(dh, mask, r0, r1, H);
    }
  });
}

// Returns (grad_gates (N, GH): dL/d(pre-activations), grad_peephole (3H, or empty), grad_h0 (B, H), grad_c0 (B, H)).
std::tuple<Tensor, Tensor, Tensor, Tensor> lstm_backward(Tensor grad_hs, Tensor grad_h_final, Tensor grad_c_final,
                                                         Tensor gates, Tensor cs, Tensor c0,
                                                         at::IntArrayRef batch_sizes, Tensor w_hh,
                                                         c10::optional<Tensor> peephole, c10::optional<Tensor> mask,
                                                         int64_t variant, c10::optional<Tensor> grad_buffer) {
  const Steps s(batch_sizes);
  check(grad_hs, "grad_hs", 2), check(gates, "gates", 2), check(cs, "cs", 2), check(w_hh, "w_hh", 2);
  const int64_t H = c0.size(1);
  // running gradients of (h, c): a sequence's final-state gradient waits in its row until its last step
  Tensor dh = grad_h_final.contiguous().clone(), dc = grad_c_final.contiguous().clone();
  Tensor grad_gates = buffer_like(grad_buffer, gates), grad_peephole;
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_backward", [&] {
    Partials<scalar_t> peep_grad(variant == kPeephole ? 3 * H : 0);
    auto run = [&](auto variant_tag) {
      constexpr int64_t V = decltype(variant_tag)::value;
      lstm_backward_loop<scalar_t, V>(cptr<scalar_t>(grad_hs), dh.data_ptr<scalar_t>(), dc.data_ptr<scalar_t>(),
                                      cptr<scalar_t>(gates), cptr<scalar_t>(cs), cptr<scalar_t>(c0), s,
                                      cptr<scalar_t>(w_hh), ptr_or_null<scalar_t>(peephole),
                                      ptr_or_null<scalar_t>(mask), grad_gates.data_ptr<scalar_t>(), H, peep_grad);
    };
    if (variant == kLstm) run(std::integral_constant<int64_t, kLstm>{});
    else if (variant == kPeephole) run(std::integral_constant<int64_t, kPeephole>{});
    else run(std::integral_constant<int64_t, kCifg>{});
    grad_peephole = peep_grad.total(gates.options());
  });
  return {grad_gates, grad_peephole, dh, dc};
}

// ================================================================================== plain RNN
// h' = act(x_proj + h_rec W_hh^T), act tanh or ReLU.  Backward reads act' from h' alone.

template <typename scalar_t, bool Relu>
void rnn_forward_loop(scalar_t* z_all, const scalar_t* bias, const Steps& s, const scalar_t* h0,
                      RecurrentWeight<scalar_t> w_t,
                      const scalar_t* mask, scalar_t* hs, int64_t H, scalar_t* scratch) {
  for_sequences(s, H * H, [&](int64_t r0, int64_t r_end) {
    for (int64_t t = 0, steps = s.length(r0); t < steps; ++t) {
      const int64_t off = s.offset[t], r1 = std::min(s.size[t], r_end);
      scalar_t* zp = z_all + off * H;
      gemm_rows<scalar_t>(r1 - r0, H, H, recurrent_input(s.previous(hs, h0, t, H), mask, r0, r1, H, scratch), H, w_t,
                          true, zp + r0 * H, H);
      scalar_t* hp = hs + off * H;
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict__ zr = zp + r * H;
        scalar_t* __restrict__ h = hp + r * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t z = zr[j] + bias[j];
          if constexpr (Relu) h[j] = z > 0 ? z : scalar_t(0);
          else h[j] = tanh_(z);
        }
      }
    }
  });
}

// z_all (N, H): x_proj, used as scratch.  Returns (hs (N, H), h_final (B, H)).
std::tuple<Tensor, Tensor> rnn_forward(Tensor z_all, c10::optional<Tensor> bias, at::IntArrayRef batch_sizes, Tensor h0,
                                       Tensor w_hh, c10::optional<Tensor> mask, bool relu) {
  const Steps s(batch_sizes);
  check(z_all, "x_proj", 2), check(h0, "h0", 2), check(w_hh, "w_hh", 2);
  const int64_t H = h0.size(1);
  Tensor hs = at::empty({s.N, H}, z_all.options());
  Tensor scratch = at::empty({mask.has_value() ? s.B : 0, H}, z_all.options());
  const Tensor b = bias_or_zeros(bias, H, z_all.options());
  const Tensor w_rhs = recurrent_weight_tensor(w_hh, s);  // W_hh^T for the forward products
  AT_DISPATCH_FLOATING_TYPES(z_all.scalar_type(), "rnn_forward", [&] {
    auto run = [&](auto relu_tag) {
      rnn_forward_loop<scalar_t, decltype(relu_tag)::value>(z_all.data_ptr<scalar_t>(), cptr<scalar_t>(b), s,
                                                            cptr<scalar_t>(h0),
                                                            recurrent_weight<scalar_t>(w_rhs, w_hh),
                                                            ptr_or_null<scalar_t>(mask),
                                                            hs.data_ptr<scalar_t>(), H, scratch.data_ptr<scalar_t>());
    };
    if (relu) run(std::true_type{});
    else run(std::false_type{});
  });
  return {hs, final_rows(hs, s)};
}

template <typename scalar_t, bool Relu>
void rnn_backward_loop(const scalar_t* grad_hs, scalar_t* dh, const scalar_t* hs, const Steps& s,
                       const scalar_t* w_hh, const scalar_t* mask, scalar_t* grad_z, int64_t H) {
  for_sequences(s, H * H, [&](int64_t r0, int64_t r_end) {
    for (int64_t t = s.length(r0) - 1; t >= 0; --t) {
      const int64_t off = s.offset[t], r1 = std::min(s.size[t], r_end);
      const scalar_t* __restrict__ h = hs + (off + r0) * H;
      const scalar_t* __restrict__ g_out = grad_hs + (off + r0) * H;
      const scalar_t* __restrict__ dh_r = dh + r0 * H;
      scalar_t* __restrict__ dz = grad_z + (off + r0) * H;
#pragma omp simd
      for (int64_t j = 0; j < (r1 - r0) * H; ++j) {
        const scalar_t dht = dh_r[j] + g_out[j];
        if constexpr (Relu) dz[j] = h[j] > 0 ? dht : scalar_t(0);
        else dz[j] = dht * (1 - h[j] * h[j]);
      }
      gemm_rows<scalar_t>(r1 - r0, H, H, dz, H, w_hh, H, false, dh + r0 * H, H);
      apply_mask(dh, mask, r0, r1, H);
    }
  });
}

// Returns (grad_z (N, H), grad_h0 (B, H)).
std::tuple<Tensor, Tensor> rnn_backward(Tensor grad_hs, Tensor grad_h_final, Tensor hs, at::IntArrayRef batch_sizes,
                                        Tensor w_hh, c10::optional<Tensor> mask, bool relu) {
  const Steps s(batch_sizes);
  check(grad_hs, "grad_hs", 2), check(hs, "hs", 2), check(w_hh, "w_hh", 2);
  Tensor dh = grad_h_final.contiguous().clone(), grad_z = at::empty_like(hs);
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "rnn_backward", [&] {
    auto run = [&](auto relu_tag) {
      rnn_backward_loop<scalar_t, decltype(relu_tag)::value>(cptr<scalar_t>(grad_hs), dh.data_ptr<scalar_t>(),
                                                             cptr<scalar_t>(hs), s, cptr<scalar_t>(w_hh),
                                                             ptr_or_null<scalar_t>(mask), grad_z.data_ptr<scalar_t>(),
                                                             hs.size(1));
    };
    if (relu) run(std::true_type{});
    else run(std::false_type{});
  });
  return {grad_z, dh};
}

// ================================================================================== GRU, reset after
// r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r h_n), h' = (1 - z) n + z h,
// with (h_r, h_z, h_n) = h_rec W_hh^T + b_hh (torch.nn.GRU's form).

template <typename scalar_t>
void gru_forward_loop(scalar_t* gates, const scalar_t* b_ih, const Steps& s, const scalar_t* h0,
                      RecurrentWeight<scalar_t> w_t,
                      const scalar_t* b_hh,
                      const scalar_t* mask, scalar_t* hs, scalar_t* hn_all, int64_t H, scalar_t* hp_buf,
                      scalar_t* scratch) {
  const int64_t GH = 3 * H;
  for_sequences(s, GH * H, [&](int64_t r0, int64_t r_end) {
    for (int64_t t = 0, steps = s.length(r0); t < steps; ++t) {
      const int64_t off = s.offset[t], r1 = std::min(s.size[t], r_end);
      const scalar_t* h_prev = s.previous(hs, h0, t, H);
      for (int64_t r = r0; r < r1; ++r)  // h_proj = b_hh + h_rec W_hh^T
        for (int64_t j = 0; j < GH; ++j) hp_buf[r * GH + j] = b_hh != nullptr ? b_hh[j] : scalar_t(0);
      gemm_rows<scalar_t>(r1 - r0, GH, H, recurrent_input(h_prev, mask, r0, r1, H, scratch), H, w_t, true,
                          hp_buf + r0 * GH, GH);
      scalar_t* xp = gates + off * GH;
      scalar_t* h_newp = hs + off * H;
      scalar_t* hnp = hn_all + off * H;
      for (int64_t r = r0; r < r1; ++r) {
        scalar_t* __restrict__ x = xp + r * GH;
        const scalar_t* __restrict__ rec = hp_buf + r * GH;
        const scalar_t* __restrict__ h_old = h_prev + r * H;
        scalar_t* __restrict__ h_new = h_newp + r * H;
        scalar_t* __restrict__ hn = hnp + r * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t rg = sigmoid(x[j] + b_ih[j] + rec[j]), zg = sigmoid(x[H + j] + b_ih[H + j] + rec[H + j]);
          const scalar_t n = tanh_(x[2 * H + j] + b_ih[2 * H + j] + rg * rec[2 * H + j]);
          x[j] = rg, x[H + j] = zg, x[2 * H + j] = n;
          hn[j] = rec[2 * H + j];
          h_new[j] = (1 - zg) * n + zg * h_old[j];
        }
      }
    }
  });
}

// gates (N, 3H): x W_ih^T on entry (b_ih added in the loop), the activations r, z, n on return.
// Returns (hs (N, H), hn (N, H) = W_hn h_rec + b_hn, h_final (B, H)).
std::tuple<Tensor, Tensor, Tensor> gru_forward(Tensor gates, c10::optional<Tensor> b_ih, at::IntArrayRef batch_sizes,
                                               Tensor h0, Tensor w_hh, c10::optional<Tensor> b_hh,
                                               c10::optional<Tensor> mask) {
  const Steps s(batch_sizes);
  check(gates, "gates", 2), check(h0, "h0", 2), check(w_hh, "w_hh", 2);
  const int64_t H = h0.size(1);
  Tensor hs = at::empty({s.N, H}, gates.options()), hn = at::empty({s.N, H}, gates.options());
  Tensor hp_buf = at::empty({s.B, 3 * H}, gates.options());
  Tensor scratch = at::empty({mask.has_value() ? s.B : 0, H}, gates.options());
  const Tensor b = bias_or_zeros(b_ih, 3 * H, gates.options());
  const Tensor w_rhs = recurrent_weight_tensor(w_hh, s);  // W_hh^T for the forward products
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_forward", [&] {
    gru_forward_loop<scalar_t>(gates.data_ptr<scalar_t>(), cptr<scalar_t>(b), s, cptr<scalar_t>(h0),
                               recurrent_weight<scalar_t>(w_rhs, w_hh),
                               ptr_or_null<scalar_t>(b_hh), ptr_or_null<scalar_t>(mask), hs.data_ptr<scalar_t>(),
                               hn.data_ptr<scalar_t>(), H, hp_buf.data_ptr<scalar_t>(), scratch.data_ptr<scalar_t>());
  });
  return {hs, hn, final_rows(hs, s)};
}

template <typename scalar_t>
void gru_backward_loop(const scalar_t* grad_hs, scalar_t* dh, const scalar_t* gates, const scalar_t* hs,
                       const scalar_t* hn, const scalar_t* h0, const Steps& s, const scalar_t* w_hh,
                       const scalar_t* mask, scalar_t* grad_x, scalar_t* grad_hp, int64_t H, scalar_t* scratch) {
  const int64_t GH = 3 * H;
  for_sequences(s, GH * H, [&](int64_t r0, int64_t r_end) {
    for (int64_t t = s.length(r0) - 1; t >= 0; --t) {
      const int64_t off = s.offset[t], r1 = std::min(s.size[t], r_end);
      const scalar_t* h_prev = s.previous(hs, h0, t, H);
      const scalar_t* ap = gates + off * GH;
      const scalar_t* hnp = hn + off * H;
      const scalar_t* gop = grad_hs + off * H;
      scalar_t* dxp = grad_x + off * GH;
      scalar_t* dhpp = grad_hp + off * GH;
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict__ a = ap + r * GH;
        const scalar_t* __restrict__ h_old = h_prev + r * H;
        const scalar_t* __restrict__ h_n = hnp + r * H;
        const scalar_t* __restrict__ g_out = gop + r * H;
        scalar_t* __restrict__ dh_r = dh + r * H;
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
      if (mask == nullptr) {
        gemm_rows<scalar_t>(r1 - r0, H, GH, dhpp + r0 * GH, GH, w_hh, H, true, dh + r0 * H, H);
      } else {
        gemm_rows<scalar_t>(r1 - r0, H, GH, dhpp + r0 * GH, GH, w_hh, H, false, scratch + r0 * H, H);
        for (int64_t i = r0 * H; i < r1 * H; ++i) dh[i] += scratch[i] * mask[i];
      }
    }
  });
}

// Returns (grad_x_proj (N, 3H), grad_h_proj (N, 3H), grad_h0 (B, H)).
std::tuple<Tensor, Tensor, Tensor> gru_backward(Tensor grad_hs, Tensor grad_h_final, Tensor gates, Tensor hs,
                                                Tensor hn, Tensor h0, at::IntArrayRef batch_sizes, Tensor w_hh,
                                                c10::optional<Tensor> mask, c10::optional<Tensor> grad_buffer,
                                                c10::optional<Tensor> grad_h_proj_buffer) {
  const Steps s(batch_sizes);
  check(grad_hs, "grad_hs", 2), check(gates, "gates", 2), check(hs, "hs", 2), check(hn, "hn", 2);
  const int64_t H = h0.size(1);
  Tensor dh = grad_h_final.contiguous().clone();
  Tensor grad_x = buffer_like(grad_buffer, gates), grad_hp = buffer_like(grad_h_proj_buffer, gates);
  Tensor scratch = at::empty({mask.has_value() ? s.B : 0, H}, gates.options());
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_backward", [&] {
    gru_backward_loop<scalar_t>(cptr<scalar_t>(grad_hs), dh.data_ptr<scalar_t>(), cptr<scalar_t>(gates),
                                cptr<scalar_t>(hs), cptr<scalar_t>(hn), cptr<scalar_t>(h0), s, cptr<scalar_t>(w_hh),
                                ptr_or_null<scalar_t>(mask), grad_x.data_ptr<scalar_t>(),
                                grad_hp.data_ptr<scalar_t>(), H, scratch.data_ptr<scalar_t>());
  });
  return {grad_x, grad_hp, dh};
}

// ================================================================================== GRU, reset before
// r, z = σ(x_rz + h_rec W_rz^T), n = tanh(x_n + (r h_rec) W_n^T), h' = (1 - z) n + z h (Cho et al. 2014).

template <typename scalar_t>
void gru_v1_forward_loop(scalar_t* gates, const scalar_t* bias, const Steps& s, const scalar_t* h0,
                         RecurrentWeight<scalar_t> w_t,
                         const scalar_t* mask, scalar_t* hs, scalar_t* reset_h, int64_t H, scalar_t* rz_buf,
                         scalar_t* n_buf, scalar_t* scratch) {
  const int64_t GH = 3 * H;
  const RecurrentWeight<scalar_t> w_n_t = w_t.columns(2 * H);  // columns 2H..3H of W_hh^T (H, 3H)
  for_sequences(s, GH * H, [&](int64_t r0, int64_t r_end) {
    for (int64_t t = 0, steps = s.length(r0); t < steps; ++t) {
      const int64_t off = s.offset[t], r1 = std::min(s.size[t], r_end);
      const scalar_t* h_prev = s.previous(hs, h0, t, H);
      const scalar_t* h_rec = recurrent_input(h_prev, mask, r0, r1, H, scratch) - r0 * H;  // indexed by row
      gemm_rows<scalar_t>(r1 - r0, 2 * H, H, h_rec + r0 * H, H, w_t, false, rz_buf + r0 * 2 * H, 2 * H);
      scalar_t* xp = gates + off * GH;
      scalar_t* rhp = reset_h + off * H;
      for (int64_t r = r0; r < r1; ++r) {
        scalar_t* __restrict__ x = xp + r * GH;
        const scalar_t* __restrict__ rec = rz_buf + r * 2 * H;
        const scalar_t* __restrict__ hr = h_rec + r * H;
        scalar_t* __restrict__ reset = rhp + r * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t rg = sigmoid(x[j] + bias[j] + rec[j]), zg = sigmoid(x[H + j] + bias[H + j] + rec[H + j]);
          x[j] = rg, x[H + j] = zg;
          reset[j] = rg * hr[j];
        }
      }
      gemm_rows<scalar_t>(r1 - r0, H, H, rhp + r0 * H, H, w_n_t, false, n_buf + r0 * H, H);
      scalar_t* h_newp = hs + off * H;
      for (int64_t r = r0; r < r1; ++r) {
        scalar_t* __restrict__ x = xp + r * GH;
        const scalar_t* __restrict__ rec = n_buf + r * H;
        const scalar_t* __restrict__ h_old = h_prev + r * H;
        scalar_t* __restrict__ h_new = h_newp + r * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t n = tanh_(x[2 * H + j] + bias[2 * H + j] + rec[j]), zg = x[H + j];
          x[2 * H + j] = n;
          h_new[j] = (1 - zg) * n + zg * h_old[j];
        }
      }
    }
  });
}

// Returns (hs (N, H), reset_h (N, H) = r h_rec, h_final (B, H)); gates becomes r, z, n.
std::tuple<Tensor, Tensor, Tensor> gru_v1_forward(Tensor gates, c10::optional<Tensor> bias,
                                                  at::IntArrayRef batch_sizes, Tensor h0, Tensor w_hh,
                                                  c10::optional<Tensor> mask) {
  const Steps s(batch_sizes);
  check(gates, "gates", 2), check(h0, "h0", 2), check(w_hh, "w_hh", 2);
  const int64_t H = h0.size(1);
  Tensor hs = at::empty({s.N, H}, gates.options()), reset_h = at::empty({s.N, H}, gates.options());
  Tensor rz = at::empty({s.B, 2 * H}, gates.options()), n = at::empty({s.B, H}, gates.options());
  Tensor scratch = at::empty({mask.has_value() ? s.B : 0, H}, gates.options());
  const Tensor b = bias_or_zeros(bias, 3 * H, gates.options());
  const Tensor w_rhs = recurrent_weight_tensor(w_hh, s);  // W_hh^T for the forward products
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_v1_forward", [&] {
    gru_v1_forward_loop<scalar_t>(gates.data_ptr<scalar_t>(), cptr<scalar_t>(b), s, cptr<scalar_t>(h0),
                                  recurrent_weight<scalar_t>(w_rhs, w_hh),
                                  ptr_or_null<scalar_t>(mask), hs.data_ptr<scalar_t>(), reset_h.data_ptr<scalar_t>(),
                                  H, rz.data_ptr<scalar_t>(), n.data_ptr<scalar_t>(), scratch.data_ptr<scalar_t>());
  });
  return {hs, reset_h, final_rows(hs, s)};
}

template <typename scalar_t>
void gru_v1_backward_loop(const scalar_t* grad_hs, scalar_t* dh, const scalar_t* gates, const scalar_t* hs,
                          const scalar_t* h0, const Steps& s, const scalar_t* w_hh, const scalar_t* mask,
                          scalar_t* grad_x, int64_t H, scalar_t* d_reset, scalar_t* scratch) {
  const int64_t GH = 3 * H;
  const scalar_t* w_n = w_hh + 2 * H * H;
  for_sequences(s, GH * H, [&](int64_t r0, int64_t r_end) {
    for (int64_t t = s.length(r0) - 1; t >= 0; --t) {
      const int64_t off = s.offset[t], r1 = std::min(s.size[t], r_end);
      const scalar_t* h_prev = s.previous(hs, h0, t, H);
      const scalar_t* h_rec = recurrent_input(h_prev, mask, r0, r1, H, scratch) - r0 * H;  // indexed by row
      const scalar_t* ap = gates + off * GH;
      const scalar_t* gop = grad_hs + off * H;
      scalar_t* dxp = grad_x + off * GH;
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict__ a = ap + r * GH;
        const scalar_t* __restrict__ h_old = h_prev + r * H;
        const scalar_t* __restrict__ g_out = gop + r * H;
        scalar_t* __restrict__ dh_r = dh + r * H;
        scalar_t* __restrict__ dx = dxp + r * GH;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t zg = a[H + j], n = a[2 * H + j], dht = dh_r[j] + g_out[j];
          dx[2 * H + j] = dht * (1 - zg) * (1 - n * n);   // n = tanh(x_n + (r h_rec) W_n^T)
          dx[H + j] = dht * (h_old[j] - n) * zg * (1 - zg);  // z = σ(.)
          dh_r[j] = dht * zg;                              // the direct path z h
        }
      }
      // dL/d(r h_rec)
      gemm_rows<scalar_t>(r1 - r0, H, H, dxp + r0 * GH + 2 * H, GH, w_n, H, false, d_reset + r0 * H, H);
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict__ a = ap + r * GH;
        const scalar_t* __restrict__ hr = h_rec + r * H;
        scalar_t* __restrict__ d_rh = d_reset + r * H;
        scalar_t* __restrict__ dx = dxp + r * GH;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t rg = a[j];
          dx[j] = d_rh[j] * hr[j] * rg * (1 - rg);  // r = σ(.), its product with h_rec
          d_rh[j] *= rg;                            // now dL/dh_rec through r h_rec
        }
      }
      gemm_rows<scalar_t>(r1 - r0, H, 2 * H, dxp + r0 * GH, GH, w_hh, H, true, d_reset + r0 * H, H);  // + through W_rz
      apply_mask(d_reset, mask, r0, r1, H);
      for (int64_t i = r0 * H; i < r1 * H; ++i) dh[i] += d_reset[i];
    }
  });
}

// Returns (grad_x_proj (N, 3H), grad_h0 (B, H)).
std::tuple<Tensor, Tensor> gru_v1_backward(Tensor grad_hs, Tensor grad_h_final, Tensor gates, Tensor hs, Tensor h0,
                                           at::IntArrayRef batch_sizes, Tensor w_hh, c10::optional<Tensor> mask,
                                           c10::optional<Tensor> grad_buffer) {
  const Steps s(batch_sizes);
  check(grad_hs, "grad_hs", 2), check(gates, "gates", 2), check(hs, "hs", 2);
  const int64_t H = h0.size(1);
  Tensor dh = grad_h_final.contiguous().clone(), grad_x = buffer_like(grad_buffer, gates);
  Tensor d_reset = at::empty({s.B, H}, gates.options());
  Tensor scratch = at::empty({mask.has_value() ? s.B : 0, H}, gates.options());
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_v1_backward", [&] {
    gru_v1_backward_loop<scalar_t>(cptr<scalar_t>(grad_hs), dh.data_ptr<scalar_t>(), cptr<scalar_t>(gates),
                                   cptr<scalar_t>(hs), cptr<scalar_t>(h0), s, cptr<scalar_t>(w_hh),
                                   ptr_or_null<scalar_t>(mask), grad_x.data_ptr<scalar_t>(), H,
                                   d_reset.data_ptr<scalar_t>(), scratch.data_ptr<scalar_t>());
  });
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
struct LayerNormParams {
  const scalar_t *gain, *bias, *cell_gain, *cell_bias;
};

template <typename scalar_t>
void layernorm_forward_loop(scalar_t* a_all, const Steps& s, const scalar_t* h0, const scalar_t* c0,
                            RecurrentWeight<scalar_t> w_t, LayerNormParams<scalar_t> ln, const scalar_t* mask,
                            double eps,
                            scalar_t* hs, scalar_t* cs, scalar_t* gate_stats, scalar_t* cell_stats, int64_t H,
                            scalar_t* scratch) {
  const int64_t GH = 4 * H;
  const scalar_t *gain = ln.gain, *bias = ln.bias, *cgain = ln.cell_gain, *cbias = ln.cell_bias;
  for_sequences(s, GH * H, [&](int64_t r0, int64_t r_end) {
    for (int64_t t = 0, steps = s.length(r0); t < steps; ++t) {
      const int64_t off = s.offset[t], r1 = std::min(s.size[t], r_end);
      scalar_t* ap = a_all + off * GH;
      const scalar_t* cp = s.previous(cs, c0, t, H);
      gemm_rows<scalar_t>(r1 - r0, GH, H, recurrent_input(s.previous(hs, h0, t, H), mask, r0, r1, H, scratch), H,
                          w_t, true, ap + r0 * GH, GH);
      scalar_t* hp = hs + off * H;
      scalar_t* cn = cs + off * H;
      scalar_t* gsp = gate_stats + off * 4;
      scalar_t* csp = cell_stats + off * 2;
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
    }
  });
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
  Tensor scratch = at::empty({mask.has_value() ? s.B : 0, H}, a.options());
  const Tensor w_rhs = recurrent_weight_tensor(w_hh, s);  // W_hh^T for the forward products
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "layernorm_lstm_forward", [&] {
    const LayerNormParams<scalar_t> ln{cptr<scalar_t>(ln_gates_weight), cptr<scalar_t>(ln_gates_bias),
                                       cptr<scalar_t>(ln_cell_weight), cptr<scalar_t>(ln_cell_bias)};
    layernorm_forward_loop<scalar_t>(a.data_ptr<scalar_t>(), s, cptr<scalar_t>(h0), cptr<scalar_t>(c0),
                                     recurrent_weight<scalar_t>(w_rhs, w_hh), ln, ptr_or_null<scalar_t>(mask), eps,
                                     hs.data_ptr<scalar_t>(), cs.data_ptr<scalar_t>(), gate_stats.data_ptr<scalar_t>(),
                                     cell_stats.data_ptr<scalar_t>(), H, scratch.data_ptr<scalar_t>());
  });
  return {hs, cs, gate_stats, cell_stats, final_rows(hs, s), final_rows(cs, s)};
}

// sums: [γ (4H) | β (4H) | γ_c (H) | β_c (H)] of the layer-norm parameters' gradients, per thread.
template <typename scalar_t>
void layernorm_backward_loop(const scalar_t* grad_hs, scalar_t* dh, scalar_t* dc, const scalar_t* a_hat,
                             const scalar_t* cs, const scalar_t* c0, const scalar_t* gate_stats,
                             const scalar_t* cell_stats, const Steps& s, const scalar_t* w_hh,
                             LayerNormParams<scalar_t> ln, const scalar_t* mask, scalar_t* grad_a, int64_t H,
                             Partials<scalar_t>& sums) {
  const int64_t GH = 4 * H;
  const scalar_t *gain = ln.gain, *bias = ln.bias, *cgain = ln.cell_gain, *cbias = ln.cell_bias;
  for_sequences(s, GH * H, [&](int64_t r0, int64_t r_end) {
    std::vector<scalar_t> row_buf(GH + 2 * H);  // dz (4H), ĉ (H), dĉ (H) of one row
    scalar_t* __restrict__ dz = row_buf.data();
    scalar_t* __restrict__ c_hat = dz + GH;
    scalar_t* __restrict__ d_chat = c_hat + H;
    scalar_t* __restrict__ acc = sums.mine();
    for (int64_t t = s.length(r0) - 1; t >= 0; --t) {
      const int64_t off = s.offset[t], r1 = std::min(s.size[t], r_end);
      const scalar_t* ap = a_hat + off * GH;
      const scalar_t* cp = s.previous(cs, c0, t, H);
      const scalar_t* cnp = cs + off * H;
      const scalar_t* gsp = gate_stats + off * 4;
      const scalar_t* csp = cell_stats + off * 2;
      const scalar_t* gop = grad_hs + off * H;
      scalar_t* dap = grad_a + off * GH;
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict__ ah = ap + r * GH;
        const scalar_t* __restrict__ c_old = cp + r * H;
        const scalar_t* __restrict__ c_now = cnp + r * H;
        const scalar_t* __restrict__ g_out = gop + r * H;
        const scalar_t* __restrict__ dh_r = dh + r * H;
        scalar_t* __restrict__ dc_r = dc + r * H;
        scalar_t* __restrict__ da = dap + r * GH;
        const scalar_t c_mean = csp[r * 2], c_inv = csp[r * 2 + 1];
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {  // h' = o tanh(y), y = γ_c ĉ + β_c
          c_hat[j] = (c_now[j] - c_mean) * c_inv;
          const scalar_t o = sigmoid(gain[3 * H + j] * ah[3 * H + j] + bias[3 * H + j]);
          const scalar_t ty = tanh_(cgain[j] * c_hat[j] + cbias[j]), dht = dh_r[j] + g_out[j];
          const scalar_t dy = dht * o * (1 - ty * ty);
          dz[3 * H + j] = dht * ty * o * (1 - o);
          acc[2 * GH + j] += dy * c_hat[j], acc[2 * GH + H + j] += dy;  // γ_c, β_c
          d_chat[j] = dy * cgain[j];
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
        for (int64_t j = 0; j < GH; ++j) {  // z = γ â + β
          acc[j] += dz[j] * ah[j], acc[GH + j] += dz[j];
          da[j] = dz[j] * gain[j];
        }
        for (int64_t k = 0; k < 4; ++k) normalise_backward(da + k * H, ah + k * H, H, gsp[r * 4 + k]);
      }
      gemm_rows<scalar_t>(r1 - r0, H, GH, dap + r0 * GH, GH, w_hh, H, false, dh + r0 * H, H);  // dL/dh_rec
      apply_mask(dh, mask, r0, r1, H);
    }
  });
}

// Returns (grad_a (N, 4H) = dL/da, grad γ (4H), grad β (4H), grad γ_c (H), grad β_c (H), grad_h0, grad_c0).
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> layernorm_lstm_backward(
    Tensor grad_hs, Tensor grad_h_final, Tensor grad_c_final, Tensor a_hat, Tensor cs, Tensor c0, Tensor gate_stats,
    Tensor cell_stats, at::IntArrayRef batch_sizes, Tensor w_hh, Tensor ln_gates_weight, Tensor ln_gates_bias,
    Tensor ln_cell_weight, Tensor ln_cell_bias, c10::optional<Tensor> mask, c10::optional<Tensor> grad_buffer) {
  const Steps s(batch_sizes);
  check(grad_hs, "grad_hs", 2), check(a_hat, "a_hat", 2), check(cs, "cs", 2);
  const int64_t H = c0.size(1);
  Tensor dh = grad_h_final.contiguous().clone(), dc = grad_c_final.contiguous().clone();
  Tensor grad_a = buffer_like(grad_buffer, a_hat), totals;
  AT_DISPATCH_FLOATING_TYPES(a_hat.scalar_type(), "layernorm_lstm_backward", [&] {
    Partials<scalar_t> sums(10 * H);
    const LayerNormParams<scalar_t> ln{cptr<scalar_t>(ln_gates_weight), cptr<scalar_t>(ln_gates_bias),
                                       cptr<scalar_t>(ln_cell_weight), cptr<scalar_t>(ln_cell_bias)};
    layernorm_backward_loop<scalar_t>(cptr<scalar_t>(grad_hs), dh.data_ptr<scalar_t>(), dc.data_ptr<scalar_t>(),
                                      cptr<scalar_t>(a_hat), cptr<scalar_t>(cs), cptr<scalar_t>(c0),
                                      cptr<scalar_t>(gate_stats), cptr<scalar_t>(cell_stats), s, cptr<scalar_t>(w_hh),
                                      ln, ptr_or_null<scalar_t>(mask), grad_a.data_ptr<scalar_t>(), H, sums);
    totals = sums.total(a_hat.options());
  });
  return {grad_a, totals.narrow(0, 0, 4 * H), totals.narrow(0, 4 * H, 4 * H), totals.narrow(0, 8 * H, H),
          totals.narrow(0, 9 * H, H), dh, dc};
}

}  // namespace

TORCH_LIBRARY(rnnkit_loops, m) {
  m.def("direct_blas", &direct_blas);
  m.def("brgemm_enabled", &brgemm_enabled);
  m.def("sequence_blocks", &sequence_blocks_of);
  m.def("use_onednn", &use_onednn);
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
