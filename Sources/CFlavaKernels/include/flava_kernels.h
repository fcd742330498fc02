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
/// Name of the instruction set the dispatcher chose ("avx512", "avx2" or "baseline").
const char *flava_kernels_isa(void);

#endif
