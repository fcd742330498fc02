// See include/flava_kernels.h (packed float32 products). The float32 Linear layers of inference: the weights
// W [n, k] are packed once, at load, into panels of 16 output columns (panel b holds W[16b + c][kk] at
// 16·kk + c, zeros past n), and each product runs register tiles over them (flava_sgemm_impl.h, compiled once per
// instruction set: AVX-512 8 rows × 32 columns, AVX2 6 × 16, SSE 3 × 16), with the bias and GELU in the epilogue.
//
// Why not OpenBLAS, which the training products keep: cblas_sgemm packs the weights again on every call, and at
// the few rows of inference (77 tokens of one text, 197 patches of one image) that packing is a large part of the
// product; OpenBLAS 0.3.21 (Debian 12) has no call that takes weights packed once, and it runs its AVX2 kernel on
// CPUs newer than it knows (Zen 5), half their vector width (BENCHMARKS.md has the measurements).
#include "flava_kernels.h"
#include "flava_math.h"
#include <stdint.h>
#include <string.h>

// Inputs per block (the panels' share, SGEMM_KC × 64 bytes, stays in L2 over a block of rows) and rows per block
// (SGEMM_MC × SGEMM_KC floats of activations, 384 KiB at most, stay in L2 over the panels).
#define SGEMM_KC 1024
#define SGEMM_MC 96

long flava_sgemm_packed_floats(long n, long k) { return (n + 15) / 16 * 16 * k; }

void flava_sgemm_pack(const float *w, long n, long k, float *packed) {
    long blocks = (n + 15) / 16;
    for (long b = 0; b < blocks; b++) {
        float *p = packed + b * 16 * k;
        for (long kk = 0; kk < k; kk++)
            for (long c = 0; c < 16; c++) {
                long row = b * 16 + c;
                p[kk * 16 + c] = row < n ? w[row * k + kk] : 0.0f;
            }
    }
}

#if defined(__x86_64__)
#define VW 16
#define MR 8
#define NP 2
#define SUFFIX avx512
#define TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma,avx2")))
#define SG_CASES SG_CASE(8) SG_CASE(7) SG_CASE(6) SG_CASE(5) \
                 SG_CASE(4) SG_CASE(3) SG_CASE(2) default: SG_CASE(1)
#include "flava_sgemm_impl.h"

#define VW 8
#define MR 6
#define NP 1
#define SUFFIX avx2
#define TARGET __attribute__((target("avx2,fma")))
#define SG_CASES SG_CASE(6) SG_CASE(5) SG_CASE(4) SG_CASE(3) SG_CASE(2) default: SG_CASE(1)
#include "flava_sgemm_impl.h"
#endif

#define VW 4
#define MR 3
#define NP 1
#define SUFFIX base
#define TARGET
#define SG_CASES SG_CASE(3) SG_CASE(2) default: SG_CASE(1)
#include "flava_sgemm_impl.h"

void flava_sgemm(const float *a, long m, long k, long lda, const float *packed, const float *bias, long n,
                 long block0, long block1, float *out, long ldo, int gelu, int level) {
    if (m <= 0 || block0 >= block1) return;
    if (!flava_kernels_supports(level)) level = flava_kernels_level();
#if defined(__x86_64__)
    if (level == 2) { sgemm_avx512(a, m, k, lda, packed, bias, n, block0, block1, out, ldo, gelu); return; }
    if (level == 1) { sgemm_avx2(a, m, k, lda, packed, bias, n, block0, block1, out, ldo, gelu); return; }
#endif
    sgemm_base(a, m, k, lda, packed, bias, n, block0, block1, out, ldo, gelu);
}
