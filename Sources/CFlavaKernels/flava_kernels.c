// See include/flava_kernels.h. Each kernel body is written once (as an always-inline function of scalar
// code that clang auto-vectorizes) and compiled three times with different target features; a dispatcher
// picks the widest the CPU supports on first use.
#include "flava_kernels.h"
#include "flava_math.h"
#include "flava_dispatch.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

INLINE void b_exp(const float *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = k_exp(x[i]); }
INLINE void b_gelu(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = k_gelu(x[i]);
}
INLINE void b_gelu_backward(const float *x, const float *g, float *dx, long n) {
    for (long i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + k_erf(v * INV_SQRT2));
        float pdf = INV_SQRT2PI * k_exp(-0.5f * v * v);
        dx[i] = (cdf + v * pdf) * g[i];
    }
}
INLINE void b_tanh(const float *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = k_tanh(x[i]); }

// Reductions keep 16 independent partial results so that the loop vectorizes without reassociation flags.
INLINE float b_sum(const float *x, long n) {
    float acc[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16) for (int j = 0; j < 16; j++) acc[j] += x[i + j];
    float s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    for (; i < n; i++) s += x[i];
    return s;
}
INLINE float b_dot(const float *a, const float *b, long n) {
    float acc[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16) for (int j = 0; j < 16; j++) acc[j] += a[i + j] * b[i + j];
    float s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
INLINE float b_max(const float *x, long n) {
    float acc[16];
    for (int j = 0; j < 16; j++) acc[j] = -INFINITY;
    int nan = 0;
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) { float v = x[i + j]; nan |= (v != v); acc[j] = v > acc[j] ? v : acc[j]; }
    float m = -INFINITY;
    for (int j = 0; j < 16; j++) m = acc[j] > m ? acc[j] : m;
    for (; i < n; i++) { float v = x[i]; nan |= (v != v); m = v > m ? v : m; }
    return nan ? NAN : m;
}
INLINE float b_exp_shift_sum(float *x, long n, float shift) {
    for (long i = 0; i < n; i++) x[i] = k_exp(x[i] - shift);
    return b_sum(x, n);
}

// Three compilations of every kernel.
#define AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma,avx2")))
#define AVX2 __attribute__((target("avx2,fma")))
#define DEFINE_VARIANTS(RET, NAME, PARAMS, ARGS)            \
    AVX512 static RET NAME##_avx512 PARAMS { return b_##NAME ARGS; } \
    AVX2 static RET NAME##_avx2 PARAMS { return b_##NAME ARGS; }     \
    static RET NAME##_base PARAMS { return b_##NAME ARGS; }

DEFINE_VARIANTS(void, exp, (const float *x, float *y, long n), (x, y, n))
DEFINE_VARIANTS(void, gelu, (const float *x, float *y, long n), (x, y, n))
DEFINE_VARIANTS(void, gelu_backward, (const float *x, const float *g, float *dx, long n), (x, g, dx, n))
DEFINE_VARIANTS(void, tanh, (const float *x, float *y, long n), (x, y, n))
DEFINE_VARIANTS(float, sum, (const float *x, long n), (x, n))
DEFINE_VARIANTS(float, dot, (const float *a, const float *b, long n), (a, b, n))
DEFINE_VARIANTS(float, max, (const float *x, long n), (x, n))
DEFINE_VARIANTS(float, exp_shift_sum, (float *x, long n, float shift), (x, n, shift))

static int best_isa = -1;  // 2 = AVX-512, 1 = AVX2, 0 = baseline; benign races: every thread computes the same
static int isa = -1;       // the one in use: the best, or FLAVA_FLOAT_KERNEL's when the CPU has it

static int detect(void) {
    if (best_isa < 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) best_isa = 2;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best_isa = 1;
        else best_isa = 0;
    }
    return best_isa;
}

static int choose(void) {
    static const char *const names[] = {"baseline", "avx2", "avx512"};
    if (isa < 0) isa = flava_forced_level("FLAVA_FLOAT_KERNEL", names, 3, detect());
    return isa;
}

int flava_kernels_level(void) { return choose(); }
int flava_kernels_supports(int level) { return level >= 0 && level <= detect(); }

#define DISPATCH(NAME, ARGS) \
    switch (choose()) { case 2: return NAME##_avx512 ARGS; case 1: return NAME##_avx2 ARGS; default: return NAME##_base ARGS; }

void flava_exp(const float *x, float *y, long n) { DISPATCH(exp, (x, y, n)) }
void flava_gelu(const float *x, float *y, long n) { DISPATCH(gelu, (x, y, n)) }
void flava_gelu_backward(const float *x, const float *g, float *dx, long n) { DISPATCH(gelu_backward, (x, g, dx, n)) }
void flava_tanh(const float *x, float *y, long n) { DISPATCH(tanh, (x, y, n)) }
float flava_sum(const float *x, long n) { DISPATCH(sum, (x, n)) }
float flava_dot(const float *a, const float *b, long n) { DISPATCH(dot, (a, b, n)) }
float flava_max(const float *x, long n) { DISPATCH(max, (x, n)) }
float flava_exp_shift_sum(float *x, long n, float shift) { DISPATCH(exp_shift_sum, (x, n, shift)) }
// The same at a given level (tests check every compilation on any machine; a level the CPU lacks means the one in use).
#define DISPATCH_AT(NAME, ARGS) \
    switch (flava_kernels_supports(level) ? level : choose()) { \
        case 2: return NAME##_avx512 ARGS; case 1: return NAME##_avx2 ARGS; default: return NAME##_base ARGS; }

void flava_exp_at(int level, const float *x, float *y, long n) { DISPATCH_AT(exp, (x, y, n)) }
void flava_gelu_at(int level, const float *x, float *y, long n) { DISPATCH_AT(gelu, (x, y, n)) }
void flava_gelu_backward_at(int level, const float *x, const float *g, float *dx, long n) { DISPATCH_AT(gelu_backward, (x, g, dx, n)) }
void flava_tanh_at(int level, const float *x, float *y, long n) { DISPATCH_AT(tanh, (x, y, n)) }
float flava_sum_at(int level, const float *x, long n) { DISPATCH_AT(sum, (x, n)) }
float flava_dot_at(int level, const float *a, const float *b, long n) { DISPATCH_AT(dot, (a, b, n)) }
float flava_max_at(int level, const float *x, long n) { DISPATCH_AT(max, (x, n)) }
float flava_exp_shift_sum_at(int level, float *x, long n, float shift) { DISPATCH_AT(exp_shift_sum, (x, n, shift)) }
const char *flava_kernels_isa(void) { int i = choose(); return i == 2 ? "avx512" : (i == 1 ? "avx2" : "baseline"); }
