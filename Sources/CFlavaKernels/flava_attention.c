// See include/flava_kernels.h (attention). Scaled-dot-product attention of one head for inference, fused:
// q·kᵀ into a scores block, the softmax row by row, the product with v — one call instead of two BLAS products
// and a softmax pass, with register tiles sized for each instruction set (flava_attention_impl.h, compiled three
// times). Why not BLAS: per head these are small products (77 × 77 × 64 for a text) with strided rows, where
// OpenBLAS spends a good part in packing and its kernel choice; Debian's OpenBLAS 0.3.21 also runs its AVX2
// kernel on CPUs newer than it knows (Zen 5), so AVX-512 machines got half their vector width (BENCHMARKS.md).
#include "flava_kernels.h"
#include "flava_math.h"
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>

// dst[c][j] = src[j][c] for an 8 × 8 block (rows lds and ldd floats apart): unpack, shuffle, swap the halves.
__attribute__((target("avx2,fma"))) INLINE void transpose8(const float *src, long lds, float *dst, long ldd) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * lds);
    for (int i = 0; i < 8; i += 2) { t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]); t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]); }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44); u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44); u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
    }
}

// The same for a 4 × 4 block with SSE (the baseline).
INLINE void transpose4(const float *src, long lds, float *dst, long ldd) {
    __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + lds), r2 = _mm_loadu_ps(src + 2 * lds), r3 = _mm_loadu_ps(src + 3 * lds);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(dst, r0); _mm_storeu_ps(dst + ldd, r1); _mm_storeu_ps(dst + 2 * ldd, r2); _mm_storeu_ps(dst + 3 * ldd, r3);
}
#define TRANSPOSE_AVX2 transpose8
#define TRANSPOSE_BASE transpose4
#endif

#define VW 16
#define RS 4
#define CS 5
#define RP 4
#define CP 4
#define SUFFIX avx512
#define TB 8
#define TRANSPOSE TRANSPOSE_AVX2
#define TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma,avx2")))
#include "flava_attention_impl.h"

#define VW 8
#define RS 6
#define CS 2
#define RP 6
#define CP 2
#define SUFFIX avx2
#define TB 8
#define TRANSPOSE TRANSPOSE_AVX2
#define TARGET __attribute__((target("avx2,fma")))
#include "flava_attention_impl.h"

#define VW 4
#define RS 6
#define CS 2
#define RP 6
#define CP 2
#define SUFFIX base
#define TB 4
#define TRANSPOSE TRANSPOSE_BASE
#define TARGET
#include "flava_attention_impl.h"

long flava_attention_scratch(long tq, long tk, long d) {
    long a = attention_scratch_avx512(tq, tk, d), b = attention_scratch_avx2(tq, tk, d), c = attention_scratch_base(tq, tk, d);
    long m = a > b ? a : b;
    return m > c ? m : c;
}

void flava_attention_head(const float *q, long ldq, const float *k, const float *v, long ldk, const float *mask,
                          long tq, long tk, long d, float scale, float *out, long ldo, float *scratch, int level) {
    if (tq <= 0 || tk <= 0 || d <= 0) return;
    if (!flava_kernels_supports(level)) level = flava_kernels_level();
    switch (level) {
        case 2: attention_head_avx512(q, ldq, k, v, ldk, mask, tq, tk, d, scale, out, ldo, scratch); return;
        case 1: attention_head_avx2(q, ldq, k, v, ldk, mask, tq, tk, d, scale, out, ldo, scratch); return;
        default: attention_head_base(q, ldq, k, v, ldk, mask, tq, tk, d, scale, out, ldo, scratch); return;
    }
}
