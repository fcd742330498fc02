// Vectorized float32 row kernels with runtime CPU dispatch (AVX-512, AVX2+FMA, or baseline x86-64).
//
// Why C: Swift compiles for baseline x86-64 (SSE2) without unsafe flags and has no per-function target
// attribute, so its loops run 4 lanes wide. Clang's `target` attribute lets these few hot loops (the
// transcendental functions and row reductions of softmax, GELU and tanh) run 16 lanes wide on AVX-512
// machines, chosen once at run time from the CPU's features. Everything else stays in Swift.
#ifndef FLAVA_KERNELS_H
#define FLAVA_KERNELS_H

/// y[i] = exp(x[i]) for i < n.
void flava_exp(const float *x, float *y, long n);
/// x[i] = exp(x[i] - shift) in place; returns the sum of the results.
float flava_exp_shift_sum(float *x, long n, float shift);
/// max of x[0..n) (-inf for n = 0; NaN if any element is NaN).
float flava_max(const float *x, long n);
/// Σ x[i].
float flava_sum(const float *x, long n);
/// Σ a[i]·b[i].
float flava_dot(const float *a, const float *b, long n);
/// y[i] = 0.5·x·(1 + erf(x/√2)).
void flava_gelu(const float *x, float *y, long n);
/// dx[i] = (Φ(x) + x·φ(x))·g[i].
void flava_gelu_backward(const float *x, const float *g, float *dx, long n);
/// y[i] = tanh(x[i]).
void flava_tanh(const float *x, float *y, long n);
/// Name of the instruction set the dispatcher chose ("avx512", "avx2" or "baseline"): the widest the CPU has, or
/// FLAVA_FLOAT_KERNEL's (baseline|avx2|avx512) when the CPU has it.
const char *flava_kernels_isa(void);
/// The same as a level: 2 = AVX-512, 1 = AVX2+FMA, 0 = baseline.
int flava_kernels_level(void);
/// Whether the CPU can run level `level`.
int flava_kernels_supports(int level);
/// Each row kernel above at a given level (a level the CPU lacks means the one in use): the tests' way to check
/// every compilation on any machine.
void flava_exp_at(int level, const float *x, float *y, long n);
void flava_gelu_at(int level, const float *x, float *y, long n);
void flava_gelu_backward_at(int level, const float *x, const float *g, float *dx, long n);
void flava_tanh_at(int level, const float *x, float *y, long n);
float flava_sum_at(int level, const float *x, long n);
float flava_dot_at(int level, const float *a, const float *b, long n);
float flava_max_at(int level, const float *x, long n);
float flava_exp_shift_sum_at(int level, float *x, long n, float shift);
/// Scratch floats flava_attention_head needs for tq queries, tk keys and head size d (any level).
long flava_attention_scratch(long tq, long tk, long d);
/// One head of attention for inference: out[i][c] = Σ_j softmax_j(scale·⟨q_i, k_j⟩ + mask[j]) · v[j][c] for
/// i < tq, c < d. Rows of q are ldq floats apart, rows of k and v ldk, rows of out ldo; mask: additive, tk
/// floats, or NULL. `level`: the instruction set (a level the CPU lacks, e.g. −1, means the one in use).
void flava_attention_head(const float *q, long ldq, const float *k, const float *v, long ldk, const float *mask,
                          long tq, long tk, long d, float scale, float *out, long ldo, float *scratch, int level);

/// Packed float32 products of inference (flava_sgemm.c): floats of packed weights for n outputs of k inputs, and
/// the packing of W [n, k] (row-major) into them.
long flava_sgemm_packed_floats(long n, long k);
void flava_sgemm_pack(const float *w, long n, long k, float *packed);
/// out[i, c] = Σ_kk a[i·lda + kk] · W[c, kk] + bias[c] (GELU after when `gelu`) for rows i < m and the columns of
/// 16-column panels [block0, block1) cut at n; bias may be NULL; out rows ldo floats apart. `level` as for
/// flava_attention_head.
void flava_sgemm(const float *a, long m, long k, long lda, const float *packed, const float *bias, long n,
                 long block0, long block1, float *out, long ldo, int gelu, int level);

// int8 matrix products (flava_qgemm.c): out[m, n] = (Σ_k qx[m, k]·qw[n, k]) · sx[m] · sw[n] + bias[n], with int32
// sums, symmetric int8 weights per output channel and activations per row (int8; 7-bit on AVX2, whose weights are
// packed at 7 bits too unless asked otherwise). Paths: 0 portable,
// 1 AVX2, 2 AVX-512 VNNI, 3 AMX; the 8-bit paths (0, 2, 3) give the same int32 sums. FLAVA_INT8_KERNEL=portable|avx2|avx512_vnni|amx forces a path the
// CPU has.
#include <stdint.h>
enum { FLAVA_QGEMM_FLOAT = 0, FLAVA_QGEMM_GELU = 1, FLAVA_QGEMM_INT32 = 2 };
/// K rounded up to a multiple of 64 (the row stride of quantized activations).
long flava_qgemm_padded_k(long k);
/// Bytes of packed weights for N outputs of K inputs.
long flava_qgemm_packed_bytes(long n, long k);
/// Packs W [n, k] (row-major, float) at `levels` (q ∈ [−levels, levels], 1...127; flava_qgemm_weight_levels
/// gives a path's): `packed` (flava_qgemm_packed_bytes), `scales` and `colsum` of round_up(n, 16) entries each
/// (per output channel: scale, Σ of its int8 weights; zero past n).
void flava_qgemm_pack(const float *w, long n, long k, int levels, int8_t *packed, float *scales, int32_t *colsum);
/// The activations' range on `path`, q ∈ [−levels, levels] (127; 63 on AVX2), and the shift a quantized byte
/// carries, q + shift as an unsigned byte (128 on VNNI, 64 on AVX2, else 0).
int flava_qgemm_activation_levels(int path);
int flava_qgemm_activation_shift(int path);
/// The weight levels `path` packs at: 63 on AVX2 (so that its product adds two groups' int16 pairs before
/// widening), else 127.
int flava_qgemm_weight_levels(int path);
/// Quantizes rows of X [m, k] (row stride lda) for `path`: q [m, padded_k] and one scale per row.
void flava_qgemm_quantize(const float *x, long m, long k, long lda, int8_t *q, float *scales, int path);
/// Output columns of 16-column blocks [block0, block1) for all m rows (quantized for the same path):
/// FLAVA_QGEMM_FLOAT / _GELU write floats (scaled, + bias when not null, GELU), _INT32 the exact int32 sums
/// (out read as int32_t*). ldo: the output's row stride in elements. `weight_levels`: what the weights were packed
/// at (the AVX2 path's faster loop needs ≤ 63; every path's sums are exact either way).
void flava_qgemm(const int8_t *a, const float *ascale, long m, long kp, const int8_t *packed, const float *wscale,
                 const int32_t *colsum, const float *bias, long n, long block0, long block1, float *out, long ldo,
                 int mode, int path, int weight_levels);
/// The path in use (the best the CPU has, or FLAVA_INT8_KERNEL's when the CPU has it).
int flava_qgemm_path(void);
/// Whether the CPU can run `path`.
int flava_qgemm_supports(int path);
/// Uses `path` from now on (returns 0, changing nothing, when the CPU cannot run it).
int flava_qgemm_set_path(int path);

#endif
