// One compilation of the packed float32 product (flava_sgemm.c includes this once per instruction set). Before
// including: VW (floats per vector), MR (rows of a tile), NP (16-column panels of a tile), SUFFIX (the name
// suffix) and TARGET (the function attribute); this file #undefs them at its end. A tile is MR × NP·16 outputs held
// in MR · NP · 16/VW vector registers (16 of AVX-512's 32, 12 of AVX2's and SSE's 16) plus NP · 16/VW weight
// vectors and one broadcast.

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define N(x) CAT(x, SUFFIX)
#define VPP (16 / VW)

typedef float N(sv) __attribute__((vector_size(VW * 4)));

TARGET INLINE N(sv) N(sload)(const float *p) { N(sv) v; memcpy(&v, p, sizeof v); return v; }
TARGET INLINE void N(sstore)(float *p, N(sv) v) { memcpy(p, &v, sizeof v); }
TARGET INLINE N(sv) N(ssplat)(float s) { N(sv) v; for (int i = 0; i < VW; i++) v[i] = s; return v; }

// t[r][·] (+)= Σ_{kk < kc} a[r·lda + kk] · panel_p[kk][·] for r < mr and np panels (`panel[p]` already at the
// block's first input). `acc_in`: start from t (a later block of inputs) instead of zero. mr and np are constants
// at each call, so the loops unroll into a register-resident tile.
TARGET INLINE void N(sgemm_tile)(const float *a, long lda, const float *const *panel, long kc, float t[][NP * 16],
                                 const int mr, const int np, int acc_in) {
    N(sv) acc[MR][NP * VPP];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < np * VPP; v++) acc[r][v] = acc_in ? N(sload)(t[r] + v * VW) : N(ssplat)(0);
    for (long kk = 0; kk < kc; kk++) {
        N(sv) b[NP * VPP];
        for (int p = 0; p < np; p++)
            for (int j = 0; j < VPP; j++) b[p * VPP + j] = N(sload)(panel[p] + kk * 16 + j * VW);
        for (int r = 0; r < mr; r++) {
            N(sv) x = N(ssplat)(a[r * lda + kk]);
            for (int v = 0; v < np * VPP; v++) acc[r][v] += x * b[v];
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < np * VPP; v++) N(sstore)(t[r] + v * VW, acc[r][v]);
}

// Output columns of panels [b0, b1) for rows [0, m): see flava_sgemm in include/flava_kernels.h. Blocked like a
// GotoBLAS product without packing the activations (a tile broadcasts them one at a time): inputs in blocks of at
// most SGEMM_KC (the panels' block, kc × 64 bytes each, stays in L2 across the row tiles), rows in blocks of
// SGEMM_MC (that block of activations stays in L2 across the panels). The sums of a later block of inputs start
// from the output; bias and GELU are applied after the last.
TARGET static void N(sgemm)(const float *a, long m, long k, long lda, const float *packed, const float *bias,
                            long n, long b0, long b1, float *out, long ldo, int gelu) {
    long kblocks = (k + SGEMM_KC - 1) / SGEMM_KC;
    long kc = kblocks > 0 ? (k + kblocks - 1) / kblocks : 1;
    float t[MR][NP * 16] __attribute__((aligned(64)));
    for (long k0 = 0; k0 == 0 || k0 < k; k0 += kc) {  // once when k = 0: the output is the bias
        long kcur = k - k0 < kc ? k - k0 : kc;
        int first = k0 == 0, last = k0 + kcur >= k;
        for (long i0 = 0; i0 < m; i0 += SGEMM_MC) {
            long i1 = m - i0 < SGEMM_MC ? m : i0 + SGEMM_MC;
            for (long b = b0; b < b1; b += NP) {
                int np = b1 - b < NP ? (int)(b1 - b) : NP;
                const float *panel[NP];
                for (int p = 0; p < NP; p++) panel[p] = packed + (b + (p < np ? p : 0)) * 16 * k + k0 * 16;
                long col = b * 16, width = np * 16, count = n - col < width ? n - col : width;
                for (long r = i0; r < i1; r += MR) {
                    int mr = i1 - r < MR ? (int)(i1 - r) : MR;
                    if (!first)
                        for (int i = 0; i < mr; i++) {
                            const float *o = out + (r + i) * ldo + col;
                            for (long c = 0; c < width; c++) t[i][c] = c < count ? o[c] : 0.0f;
                        }
                    const float *ar = a + r * lda + k0;
                    // Row count and panel count as constants: each case its own unrolled tile.
#define SG_CASE(R) case R: if (np == NP) N(sgemm_tile)(ar, lda, panel, kcur, t, R, NP, !first); \
                           else N(sgemm_tile)(ar, lda, panel, kcur, t, R, 1, !first); break;
                    switch (mr) {
                        SG_CASES
                    }
#undef SG_CASE
                    for (int i = 0; i < mr; i++) {
                        float *o = out + (r + i) * ldo + col;
                        if (!last) {
                            for (long c = 0; c < count; c++) o[c] = t[i][c];
                        } else if (count == NP * 16) {
                            // The bias test stays outside the loops: as a select inside one, clang -O2 made it
                            // a masked load from the null pointer, whose fault suppression cost half the speed.
                            float v[NP * 16];
                            for (int c = 0; c < NP * 16; c++) v[c] = t[i][c];
                            if (bias) for (int c = 0; c < NP * 16; c++) v[c] += bias[col + c];
                            if (gelu) for (int c = 0; c < NP * 16; c++) o[c] = k_gelu(v[c]);
                            else for (int c = 0; c < NP * 16; c++) o[c] = v[c];
                        } else {
                            for (long c = 0; c < count; c++) {
                                float v = t[i][c];
                                if (bias) v += bias[col + c];
                                o[c] = gelu ? k_gelu(v) : v;
                            }
                        }
                    }
                }
            }
        }
    }
}

#undef VPP
#undef N
#undef CAT
#undef CAT_
#undef VW
#undef MR
#undef NP
#undef SUFFIX
#undef TARGET
#undef SG_CASES
