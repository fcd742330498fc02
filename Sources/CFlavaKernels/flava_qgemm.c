// See include/flava_kernels.h (int8 products). One packed weight layout serves every path:
//
//   weights W [N, K] (output channel n, input k), symmetric per output channel (scale = max|W[n]| / WL) at
//   WL = 127 (int8) for every path but AVX2, which packs them at WL = 63 (7 bits, see below); any path computes
//   the exact sums of either packing,
//   K padded to Kp (a multiple of 64) and N to blocks of 16 columns; block b, group g of 4 inputs is 64 bytes:
//   byte 4·c + j = W[16·b + c][4·g + j]. A group is one 512-bit register (16 columns × 4 inputs) or two 256-bit;
//   16 consecutive groups (64 inputs, 1 KiB) are one AMX B tile as it is, which is why Kp is a multiple of 64.
//
//   activations X [M, K], symmetric per row (scale = max|X[m]| / L), K padded to Kp with zeros: L = 127 (int8)
//   on every path but AVX2, which takes L = 63 (7 bits, see below).
//
// Paths, chosen from CPUID (or forced for tests and comparisons):
//   3 = AMX (Intel Advanced Matrix Extensions, int8): tdpbssd multiplies a 16 × 64 tile of signed activation
//       bytes by a 64 × 16 tile of signed weight bytes (the packed layout above) into 16 × 16 int32 sums, exactly;
//       the eight tile registers hold a 32 × 32 output block (4), two activation and two weight tiles. Linux
//       grants the tile state per process on request (arch_prctl ARCH_REQ_XCOMP_PERM); without the grant the
//       path is not offered.
//   2 = AVX-512 VNNI: vpdpbusd multiplies unsigned bytes by signed bytes and adds four products into an int32
//       lane exactly. The activations are stored shifted, u = q + 128 (so unsigned), and the shift is taken back
//       in the epilogue: Σ (q + 128)·w = Σ q·w + 128·Σ w (Σ w per column is kept at packing).
//   1 = AVX2: vpmaddubsw multiplies unsigned by signed bytes but adds pairs into int16 with saturation. The
//       activations are 7-bit, |q| ≤ 63, stored shifted, u = q + 64 ∈ [1, 127], so a pair is at most
//       2 · 127 · 127 = 32,258 and nothing saturates; vpmaddwd by ones widens to int32, and the shift is taken
//       back in the epilogue like VNNI's (64·Σ w). Three vector operations per 32 products: measured on an AMD
//       EPYC Zen 3, 1.4× the sign trick that kept 8-bit activations (|q| times w·sign(q): vpabsb and two
//       vpsignb more per row and group), at about twice its activation rounding error (BENCHMARKS.md).
//       Weights packed at 7 bits too (|w| ≤ 63) halve the widening: a pair is then at most 2 · 127 · 63 =
//       16,002, so the int16 pairs of two groups add (vpaddw, at most 32,004) before one vpmaddwd, five vector
//       operations per 64 products instead of six (1.2× in the product; BENCHMARKS.md, with the accuracy).
//   0 = portable C.
// Every path computes its int32 sums exactly (the tests' integer reference); the 8-bit paths (portable, VNNI,
// AMX) compute the same sums, AVX2 those of its 7-bit activations; only the float epilogue (scale, bias, GELU)
// rounds.
#include "flava_kernels.h"
#include "flava_math.h"
#include "flava_dispatch.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif


// Round to nearest, ties to even, for |v| < 2²² (here |v| ≤ 127 before clamping, or a non-finite value that the
// clamp or the zero scale handles): adding and taking back 1.5·2²³ leaves the integer part. No libm call, so
// it vectorizes in every compilation (rintf needs SSE4.1 and is a call in the portable one).
INLINE float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

// max |x[i]| with 16 independent partial maxima, so that the loop vectorizes (a single running maximum is a
// serial chain the compiler may not reorder).
INLINE float abs_max(const float *x, long n) {
    float acc[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) { float a = fabsf(x[i + j]); acc[j] = a > acc[j] ? a : acc[j]; }
    float m = 0;
    for (int j = 0; j < 16; j++) m = acc[j] > m ? acc[j] : m;
    for (; i < n; i++) { float a = fabsf(x[i]); m = a > m ? a : m; }
    return m;
}

long flava_qgemm_padded_k(long k) { return (k + 63) / 64 * 64; }
long flava_qgemm_packed_bytes(long n, long k) { return (n + 15) / 16 * 16 * flava_qgemm_padded_k(k); }

void flava_qgemm_pack(const float *w, long n, long k, int levels, int8_t *packed, float *scales, int32_t *colsum) {
    long kp = flava_qgemm_padded_k(k), blocks = (n + 15) / 16;
    const float wl = levels < 1 ? 1.0f : (levels > 127 ? 127.0f : (float)levels);
    memset(packed, 0, (size_t)(blocks * 16 * kp));
    for (long c = 0; c < blocks * 16; c++) {
        if (c >= n) { scales[c] = 0; colsum[c] = 0; continue; }
        const float *row = w + c * k;
        float amax = abs_max(row, k);
        float scale = amax > 0 ? amax / wl : 0.0f, inv = amax > 0 ? wl / amax : 0.0f;
        int32_t sum = 0;
        int8_t *blk = packed + (c / 16) * 16 * kp;
        for (long i = 0; i < k; i++) {
            float q = round_even(row[i] * inv);
            q = q > wl ? wl : (q < -wl ? -wl : q);
            int8_t v = (int8_t)q;
            blk[(i / 4) * 64 + (c % 16) * 4 + (i % 4)] = v;
            sum += v;
        }
        scales[c] = scale; colsum[c] = sum;
    }
}

// The activation levels and shift of a path: q ∈ [−levels, levels], stored as q + shift; the weight levels a path
// packs at.
int flava_qgemm_activation_levels(int path) { return path == 1 ? 63 : 127; }
int flava_qgemm_weight_levels(int path) { return path == 1 ? 63 : 127; }
int flava_qgemm_activation_shift(int path) { return path == 1 ? 64 : (path == 2 ? 128 : 0); }

// One row: amax, scale, then q = round(x·levels/amax) clamped to ±levels (+ the shift). Plain loops without libm
// calls so that clang vectorizes them in each target's compilation below.
INLINE void quantize_rows(const float *x, long m, long k, long lda, int8_t *q, float *scales, float levels,
                          uint8_t shift) {
    long kp = flava_qgemm_padded_k(k);
    for (long r = 0; r < m; r++) {
        const float *row = x + r * lda;
        float amax = abs_max(row, k);
        float inv = amax > 0 ? levels / amax : 0.0f;
        scales[r] = amax > 0 ? amax / levels : 0.0f;
        uint8_t *out = (uint8_t *)(q + r * kp);
        for (long i = 0; i < k; i++) {
            float v = round_even(row[i] * inv);
            v = v > levels ? levels : (v < -levels ? -levels : v);
            out[i] = (uint8_t)((int32_t)v + shift);
        }
        for (long i = k; i < kp; i++) out[i] = shift;
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
static void quantize_avx512(const float *x, long m, long k, long lda, int8_t *q, float *scales, float levels,
                            uint8_t shift) {
    quantize_rows(x, m, k, lda, q, scales, levels, shift);
}
__attribute__((target("avx2,fma")))
static void quantize_avx2(const float *x, long m, long k, long lda, int8_t *q, float *scales, float levels,
                          uint8_t shift) {
    quantize_rows(x, m, k, lda, q, scales, levels, shift);
}
#endif

void flava_qgemm_quantize(const float *x, long m, long k, long lda, int8_t *q, float *scales, int path) {
    uint8_t shift = (uint8_t)flava_qgemm_activation_shift(path);
    float levels = (float)flava_qgemm_activation_levels(path);
#if defined(__x86_64__)
    if (path >= 2) { quantize_avx512(x, m, k, lda, q, scales, levels, shift); return; }
    if (path == 1) { quantize_avx2(x, m, k, lda, q, scales, levels, shift); return; }
#endif
    quantize_rows(x, m, k, lda, q, scales, levels, shift);
}

// The epilogue of 16 columns: acc (int32, with the activation shift still in) → out. A constant trip count, so in the
// AVX-512 and AVX2 tiles each loop is one or two vector operations, GELU included.
INLINE void epilogue16(const int32_t *acc, int32_t shift, const int32_t *colsum, float ascale, const float *wscale,
                       const float *bias, float *out, int mode) {
    if (mode == FLAVA_QGEMM_INT32) {
        int32_t *o = (int32_t *)out;
        for (int c = 0; c < 16; c++) o[c] = acc[c] - shift * colsum[c];
        return;
    }
    float v[16];
    for (int c = 0; c < 16; c++) v[c] = (float)(acc[c] - shift * colsum[c]) * (ascale * wscale[c]);
    if (bias) for (int c = 0; c < 16; c++) v[c] += bias[c];
    if (mode == FLAVA_QGEMM_GELU) for (int c = 0; c < 16; c++) out[c] = k_gelu(v[c]);
    else for (int c = 0; c < 16; c++) out[c] = v[c];
}

// The epilogue of one tile row of `count` columns: whole groups of 16, then the rest column by column.
INLINE void epilogue(const int32_t *acc, int32_t shift, const int32_t *colsum, float ascale, const float *wscale,
                     const float *bias, float *out, long count, int mode) {
    long c0 = 0;
    for (; c0 + 16 <= count; c0 += 16)
        epilogue16(acc + c0, shift, colsum + c0, ascale, wscale + c0, bias ? bias + c0 : 0, out + c0, mode);
    for (long c = c0; c < count; c++) {
        int32_t s = acc[c] - shift * colsum[c];
        if (mode == FLAVA_QGEMM_INT32) { ((int32_t *)out)[c] = s; continue; }
        float v = (float)s * (ascale * wscale[c]);
        v = bias ? v + bias[c] : v;
        out[c] = mode == FLAVA_QGEMM_GELU ? k_gelu(v) : v;
    }
}

// MARK: portable

static void qgemm_portable(const int8_t *a, const float *ascale, long m, long kp, const int8_t *packed,
                           const float *wscale, const int32_t *colsum, const float *bias, long n, long b0, long b1,
                           float *out, long ldo, int mode) {
    for (long b = b0; b < b1; b++) {
        const int8_t *blk = packed + b * 16 * kp;
        long count = n - b * 16 < 16 ? n - b * 16 : 16;
        for (long r = 0; r < m; r++) {
            int32_t acc[16] = {0};
            const int8_t *ar = a + r * kp;
            for (long g = 0; g < kp / 4; g++) {
                const int8_t *bg = blk + g * 64;
                for (int c = 0; c < 16; c++) {
                    int32_t s = 0;
                    for (int j = 0; j < 4; j++) s += (int32_t)ar[4 * g + j] * (int32_t)bg[4 * c + j];
                    acc[c] += s;
                }
            }
            epilogue(acc, 0, colsum + b * 16, ascale[r], wscale + b * 16, bias ? bias + b * 16 : 0,
                     out + r * ldo + b * 16, count, mode);
        }
    }
}

#if defined(__x86_64__)

// MARK: AVX2 (7-bit shifted activations)

#define AVX2 __attribute__((target("avx2,fma")))

// MR rows × 16 columns (two 8-lane halves): 2·MR accumulators. Per row and group of 4 inputs: a broadcast of
// the row's 4 unsigned bytes, then vpmaddubsw (pairs into int16, never saturating for 7-bit u), vpmaddwd by ones
// (int32) and an add, for each half. (4 × 16 measured best on Zen 3; 5 or 6 rows spill registers.) With 7-bit
// weights (`paired`), two groups at a time: their vpmaddubsw pairs add in int16 before the one vpmaddwd.
AVX2 INLINE void tile_avx2(const int8_t *a, long kp, const int8_t *blk, int32_t acc[][16], const int mr,
                           int paired) {
    __m256i s[4][2];
    for (int r = 0; r < mr; r++) { s[r][0] = _mm256_setzero_si256(); s[r][1] = _mm256_setzero_si256(); }
    const __m256i ones = _mm256_set1_epi16(1);
    if (paired) {   // kp / 4 groups is even (kp is a multiple of 64)
        for (long g = 0; g < kp / 4; g += 2) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)(blk + g * 64));
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(blk + g * 64 + 32));
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(blk + g * 64 + 64));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)(blk + g * 64 + 96));
            for (int r = 0; r < mr; r++) {
                int32_t four, next;
                memcpy(&four, a + r * kp + 4 * g, 4);
                memcpy(&next, a + r * kp + 4 * g + 4, 4);
                __m256i u = _mm256_set1_epi32(four), t = _mm256_set1_epi32(next);
                __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(u, w0), _mm256_maddubs_epi16(t, v0));
                __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(u, w1), _mm256_maddubs_epi16(t, v1));
                s[r][0] = _mm256_add_epi32(s[r][0], _mm256_madd_epi16(p0, ones));
                s[r][1] = _mm256_add_epi32(s[r][1], _mm256_madd_epi16(p1, ones));
            }
        }
    } else for (long g = 0; g < kp / 4; g++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(blk + g * 64));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(blk + g * 64 + 32));
        for (int r = 0; r < mr; r++) {
            int32_t four;
            memcpy(&four, a + r * kp + 4 * g, 4);
            __m256i u = _mm256_set1_epi32(four);
            s[r][0] = _mm256_add_epi32(s[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(u, w0), ones));
            s[r][1] = _mm256_add_epi32(s[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(u, w1), ones));
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm256_storeu_si256((__m256i *)acc[r], s[r][0]);
        _mm256_storeu_si256((__m256i *)(acc[r] + 8), s[r][1]);
    }
}

AVX2 static void qgemm_avx2(const int8_t *a, const float *ascale, long m, long kp, const int8_t *packed,
                            const float *wscale, const int32_t *colsum, const float *bias, long n, long b0, long b1,
                            float *out, long ldo, int mode, int paired) {
    int32_t acc[4][16];
    for (long b = b0; b < b1; b++) {
        const int8_t *blk = packed + b * 16 * kp;
        long count = n - b * 16 < 16 ? n - b * 16 : 16;
        for (long r = 0; r < m; r += 4) {
            int mr = m - r < 4 ? (int)(m - r) : 4;
            switch (mr) {   // (`paired` is tested once per tile, outside its loops)
                case 4: tile_avx2(a + r * kp, kp, blk, acc, 4, paired); break;
                case 3: tile_avx2(a + r * kp, kp, blk, acc, 3, paired); break;
                case 2: tile_avx2(a + r * kp, kp, blk, acc, 2, paired); break;
                default: tile_avx2(a + r * kp, kp, blk, acc, 1, paired); break;
            }
            for (int i = 0; i < mr; i++)
                epilogue(acc[i], flava_qgemm_activation_shift(1), colsum + b * 16, ascale[r + i], wscale + b * 16, bias ? bias + b * 16 : 0,
                         out + (r + i) * ldo + b * 16, count, mode);
        }
    }
}

// MARK: AVX-512 VNNI

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

// MR rows × 32 columns (two blocks of 16; `two` = 0 for a last odd block): up to 12 accumulators.
VNNI INLINE void tile_vnni(const int8_t *a, long kp, const int8_t *blk0, const int8_t *blk1, int two,
                           int32_t acc[][32], const int mr) {
    __m512i s[6][2];
    for (int r = 0; r < mr; r++) { s[r][0] = _mm512_setzero_si512(); s[r][1] = _mm512_setzero_si512(); }
    for (long g = 0; g < kp / 4; g++) {
        __m512i w0 = _mm512_loadu_si512((const void *)(blk0 + g * 64));
        __m512i w1 = two ? _mm512_loadu_si512((const void *)(blk1 + g * 64)) : _mm512_setzero_si512();
        for (int r = 0; r < mr; r++) {
            int32_t four;
            memcpy(&four, a + r * kp + 4 * g, 4);
            __m512i x = _mm512_set1_epi32(four);
            s[r][0] = _mm512_dpbusd_epi32(s[r][0], x, w0);
            if (two) s[r][1] = _mm512_dpbusd_epi32(s[r][1], x, w1);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm512_storeu_si512((void *)acc[r], s[r][0]);
        _mm512_storeu_si512((void *)(acc[r] + 16), s[r][1]);
    }
}

VNNI static void qgemm_vnni(const int8_t *a, const float *ascale, long m, long kp, const int8_t *packed,
                            const float *wscale, const int32_t *colsum, const float *bias, long n, long b0, long b1,
                            float *out, long ldo, int mode) {
    int32_t acc[6][32];
    for (long b = b0; b < b1; b += 2) {
        int two = b + 1 < b1;
        const int8_t *blk0 = packed + b * 16 * kp, *blk1 = two ? blk0 + 16 * kp : blk0;
        long count = n - b * 16 < (two ? 32 : 16) ? n - b * 16 : (two ? 32 : 16);
        for (long r = 0; r < m; r += 6) {
            int mr = m - r < 6 ? (int)(m - r) : 6;
            const int8_t *ar = a + r * kp;
            // Row count and width as constants, so each case is its own fully unrolled, register-resident tile.
#define TILES(W) switch (mr) { \
                case 6: tile_vnni(ar, kp, blk0, blk1, W, acc, 6); break; \
                case 5: tile_vnni(ar, kp, blk0, blk1, W, acc, 5); break; \
                case 4: tile_vnni(ar, kp, blk0, blk1, W, acc, 4); break; \
                case 3: tile_vnni(ar, kp, blk0, blk1, W, acc, 3); break; \
                case 2: tile_vnni(ar, kp, blk0, blk1, W, acc, 2); break; \
                default: tile_vnni(ar, kp, blk0, blk1, W, acc, 1); break; }
            if (two) { TILES(1) } else { TILES(0) }
#undef TILES
            for (int i = 0; i < mr; i++)
                epilogue(acc[i], flava_qgemm_activation_shift(2), colsum + b * 16, ascale[r + i], wscale + b * 16, bias ? bias + b * 16 : 0,
                         out + (r + i) * ldo + b * 16, count, mode);
        }
    }
}

// MARK: AMX

#define AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx2,fma")))

// The tile configuration (palette 1): tiles 0–3 the int32 sums (16 rows × 16 columns), 4–5 activations
// (16 rows × 64 bytes), 6–7 weights (16 groups × 64 bytes). Every tile is 16 rows of 64 bytes.
typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } tile_config;

// Rows [r, r + 16·R) × blocks b, b + 1 (W = 2) or b alone (W = 1): C tiles (i, j) = tile 2i + j.
#define AMX_TILE(R, W) do { \
        _tile_zero(0); if (W == 2) _tile_zero(1); if (R == 2) { _tile_zero(2); if (W == 2) _tile_zero(3); } \
        for (long t = 0; t < kp / 64; t++) { \
            _tile_loadd(4, ar + 64 * t, kp); \
            _tile_loadd(6, blk0 + 1024 * t, 64); \
            _tile_dpbssd(0, 4, 6); \
            if (W == 2) { _tile_loadd(7, blk1 + 1024 * t, 64); _tile_dpbssd(1, 4, 7); } \
            if (R == 2) { \
                _tile_loadd(5, ar + 16 * kp + 64 * t, kp); \
                _tile_dpbssd(2, 5, 6); \
                if (W == 2) _tile_dpbssd(3, 5, 7); \
            } \
        } \
        _tile_stored(0, &acc[0][0], 128); if (W == 2) _tile_stored(1, &acc[0][16], 128); \
        if (R == 2) { _tile_stored(2, &acc[16][0], 128); if (W == 2) _tile_stored(3, &acc[16][16], 128); } \
    } while (0)

AMX static void qgemm_amx(const int8_t *a, const float *ascale, long m, long kp, const int8_t *packed,
                          const float *wscale, const int32_t *colsum, const float *bias, long n, long b0, long b1,
                          float *out, long ldo, int mode) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.colsb[t] = 64; cfg.rows[t] = 16; }
    _tile_loadconfig(&cfg);
    // A tile reads 16 whole rows: the last rows (m not a multiple of 32) are copied, zero-padded, so that no
    // read passes the end of `a`.
    long full = m / 32 * 32;
    int8_t *tail = 0;
    if (full < m) {
        tail = (int8_t *)calloc((size_t)(32 * kp), 1);
        memcpy(tail, a + full * kp, (size_t)((m - full) * kp));
    }
    int32_t acc[32][32] __attribute__((aligned(64)));
    for (long b = b0; b < b1; b += 2) {
        int two = b + 1 < b1;
        const int8_t *blk0 = packed + b * 16 * kp, *blk1 = blk0 + 16 * kp;
        long count = n - b * 16 < (two ? 32 : 16) ? n - b * 16 : (two ? 32 : 16);
        for (long r = 0; r < m; r += 32) {
            long rows = m - r < 32 ? m - r : 32;
            const int8_t *ar = r < full ? a + r * kp : tail;
            if (rows > 16) { if (two) AMX_TILE(2, 2); else AMX_TILE(2, 1); }
            else { if (two) AMX_TILE(1, 2); else AMX_TILE(1, 1); }
            for (long i = 0; i < rows; i++)
                epilogue(acc[i], 0, colsum + b * 16, ascale[r + i], wscale + b * 16, bias ? bias + b * 16 : 0,
                         out + (r + i) * ldo + b * 16, count, mode);
        }
    }
    free(tail);
    _tile_release();
}
#undef AMX_TILE

// Linux keeps the AMX tile data off until a process asks for it.
static int amx_permitted(void) {
#if defined(__linux__)
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#else
    return 0;
#endif
}
#endif

// MARK: dispatch

static int best = -1;

static int detect_best_path(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-int8") && __builtin_cpu_supports("avx512f")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && amx_permitted()) return 3;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512vnni")) return 2;
    if (__builtin_cpu_supports("avx2")) return 1;
#endif
    return 0;
}

// Benign races: every thread computes the same.
static int best_path(void) {
    if (best < 0) best = detect_best_path();
    return best;
}

static int chosen = -1;

int flava_qgemm_supports(int path) { return path >= 0 && path <= best_path(); }

int flava_qgemm_path(void) {
    static const char *const names[] = {"portable", "avx2", "avx512_vnni", "amx"};
    if (chosen < 0) chosen = flava_forced_level("FLAVA_INT8_KERNEL", names, 4, best_path());
    return chosen;
}

int flava_qgemm_set_path(int path) {
    if (!flava_qgemm_supports(path)) return 0;
    chosen = path;
    return 1;
}

void flava_qgemm(const int8_t *a, const float *ascale, long m, long kp, const int8_t *packed, const float *wscale,
                 const int32_t *colsum, const float *bias, long n, long block0, long block1, float *out, long ldo,
                 int mode, int path, int weight_levels) {
    if (!flava_qgemm_supports(path)) path = best_path();   // (AMX also needs the grant that best_path asks for)
    switch (path) {
#if defined(__x86_64__)
        case 3: qgemm_amx(a, ascale, m, kp, packed, wscale, colsum, bias, n, block0, block1, out, ldo, mode); return;
        case 2: qgemm_vnni(a, ascale, m, kp, packed, wscale, colsum, bias, n, block0, block1, out, ldo, mode); return;
        case 1: qgemm_avx2(a, ascale, m, kp, packed, wscale, colsum, bias, n, block0, block1, out, ldo, mode,
                           weight_levels <= 63); return;
#endif
        default: qgemm_portable(a, ascale, m, kp, packed, wscale, colsum, bias, n, block0, block1, out, ldo, mode); return;
    }
}
