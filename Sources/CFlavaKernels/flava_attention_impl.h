// One compilation of the attention kernel (flava_attention.c includes this once per instruction set). Before
// including: VW (floats per vector), RS/CS (rows × vectors of a q·kᵀ tile), RP/CP (rows × vectors of a p·v tile),
// SUFFIX (the name suffix), TARGET (the function attribute) and, where the set has one, TRANSPOSE(src, lds, dst,
// ldd), a TB × TB block transpose; this file #undefs them at its end. The tiles are register-resident: RS·CS and RP·CP
// accumulators plus a few loads must fit the set's vector registers (32 with AVX-512, 16 with AVX2 and SSE).

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define N(x) CAT(x, SUFFIX)

typedef float N(vf) __attribute__((vector_size(VW * 4)));

TARGET INLINE N(vf) N(load)(const float *p) { N(vf) v; memcpy(&v, p, sizeof v); return v; }
TARGET INLINE void N(store)(float *p, N(vf) v) { memcpy(p, &v, sizeof v); }
// (Not {0} + s: x + 0 is not an identity for x = −0, so that would cost an add before each broadcast.)
TARGET INLINE N(vf) N(splat)(float s) { N(vf) v; for (int i = 0; i < VW; i++) v[i] = s; return v; }

// s[r][j0 + ·] for rows q[0 .. RS) (rows `ldq` apart; rows past the end repeat the last, unused) and cv vectors
// of columns: Σ_c q[r][c] · kt[c][j] over c < d. kt is kᵀ, [d][tkp].
TARGET INLINE void N(score_tile)(const float *const *qr, const float *kt, long tkp, long d, long j0,
                                 float *s, const int cv) {
    N(vf) acc[RS][CS];
    for (int r = 0; r < RS; r++) for (int c = 0; c < cv; c++) acc[r][c] = N(splat)(0);
    for (long c = 0; c < d; c++) {
        const float *krow = kt + c * tkp + j0;
        N(vf) kv[CS];
        for (int v = 0; v < cv; v++) kv[v] = N(load)(krow + v * VW);
        for (int r = 0; r < RS; r++) {
            N(vf) b = N(splat)(qr[r][c]);
            for (int v = 0; v < cv; v++) acc[r][v] += b * kv[v];
        }
    }
    for (int r = 0; r < RS; r++) for (int v = 0; v < cv; v++) N(store)(s + r * tkp + j0 + v * VW, acc[r][v]);
}

// out rows [0, rows) (of RP computed; rows past the end repeat the last), columns c0 + [0, cv·VW) cut at d:
// inv[r] · Σ_j p[r][j] · vp[j][c] over j < tk. vp is v packed [tk][dp].
TARGET INLINE void N(value_tile)(const float *const *pr, const float *vp, long dp, long tk, long c0, long d,
                                 const float *inv, float *const *orow, int rows, const int cv) {
    N(vf) acc[RP][CP];
    for (int r = 0; r < RP; r++) for (int c = 0; c < cv; c++) acc[r][c] = N(splat)(0);
    for (long j = 0; j < tk; j++) {
        const float *vrow = vp + j * dp + c0;
        N(vf) vv[CP];
        for (int v = 0; v < cv; v++) vv[v] = N(load)(vrow + v * VW);
        for (int r = 0; r < RP; r++) {
            N(vf) b = N(splat)(pr[r][j]);
            for (int v = 0; v < cv; v++) acc[r][v] += b * vv[v];
        }
    }
    long width = d - c0 < cv * VW ? d - c0 : cv * VW;
    for (int r = 0; r < rows; r++) {
        N(vf) sc = N(splat)(inv[r]);
        if (width == cv * VW) {
            for (int v = 0; v < cv; v++) N(store)(orow[r] + c0 + v * VW, acc[r][v] * sc);
        } else {
            float tmp[CP * VW];
            for (int v = 0; v < cv; v++) N(store)(tmp + v * VW, acc[r][v] * sc);
            for (long c = 0; c < width; c++) orow[r][c0 + c] = tmp[c];
        }
    }
}

// Row softmax of the scores before normalizing, over the row padded to tkp (a multiple of 16): x = s·scale + mrow
// (the mask, −∞ on the padding), e = exp(x − max x) in place (0 on the padding); returns 1/Σ e.
TARGET INLINE float N(softmax_row)(float *s, long tkp, float scale, const float *mrow) {
    float part[16];
    for (int l = 0; l < 16; l++) part[l] = -INFINITY;
    int nan = 0;
    for (long j = 0; j < tkp; j += 16)
        for (int l = 0; l < 16; l++) {
            float x = s[j + l] * scale + mrow[j + l];
            s[j + l] = x;
            nan |= (x != x);
            part[l] = x > part[l] ? x : part[l];
        }
    float m = -INFINITY;
    for (int l = 0; l < 16; l++) m = part[l] > m ? part[l] : m;
    if (nan) m = NAN;
    float sums[16] = {0};
    for (long j = 0; j < tkp; j += 16)
        for (int l = 0; l < 16; l++) { float e = k_exp(s[j + l] - m); s[j + l] = e; sums[l] += e; }
    float sum = 0;
    for (int l = 0; l < 16; l++) sum += sums[l];
    return 1.0f / sum;
}

// Scratch floats of one head: kᵀ [d][tkp], v [tk][dp], the scores [tq rounded up to RS][tkp] and the mask row
// [tkp]; tkp is tk rounded up to 16 (whole vectors on every set, and the softmax's 16 partial sums).
static long N(attention_scratch)(long tq, long tk, long d) {
    long tkp = (tk + 15) / 16 * 16, dp = (d + VW - 1) / VW * VW, tqp = (tq + RS - 1) / RS * RS;
    return d * tkp + tk * dp + tqp * tkp + tkp;
}

TARGET static void N(attention_head)(const float *q, long ldq, const float *k, const float *v, long ldk,
                                     const float *mask, long tq, long tk, long d, float scale, float *out, long ldo,
                                     float *scratch) {
    long tkp = (tk + 15) / 16 * 16, dp = (d + VW - 1) / VW * VW, tqp = (tq + RS - 1) / RS * RS;
    float *kt = scratch, *vp = kt + d * tkp, *s = vp + tk * dp, *mrow = s + tqp * tkp;
    // The mask test outside the loop: as a select inside it, clang -O2 made it masked loads from the null mask of
    // the image encoder under all-false masks, a fault-suppression assist per vector (as flava_sgemm_impl.h's
    // epilogue had).
    if (mask) for (long j = 0; j < tk; j++) mrow[j] = mask[j];
    else for (long j = 0; j < tk; j++) mrow[j] = 0.0f;
    for (long j = tk; j < tkp; j++) mrow[j] = -INFINITY;
    // kᵀ [d][tkp] and v [tk][dp], zero-padded.
    for (long c = 0; c < d; c++) for (long j = tk; j < tkp; j++) kt[c * tkp + j] = 0;
    // kᵀ in TB × TB blocks through registers (element by element it becomes a scatter), the edges one by one.
    long jb = 0, cb = d / TB * TB;
#ifdef TRANSPOSE
    for (; jb + TB <= tk; jb += TB)
        for (long c = 0; c < cb; c += TB) TRANSPOSE(k + jb * ldk + c, ldk, kt + c * tkp + jb, tkp);
#endif
    for (long j = 0; j < tk; j++)
        for (long c = j < jb ? cb : 0; c < d; c++) kt[c * tkp + j] = k[j * ldk + c];
    for (long j = 0; j < tk; j++) {
        const float *vr = v + j * ldk;
        for (long c = 0; c < d; c++) vp[j * dp + c] = vr[c];
        for (long c = d; c < dp; c++) vp[j * dp + c] = 0;
    }
    // Scores q·kᵀ: column tiles outside (a slice of kᵀ stays in L1 while the rows pass), rows inside; the rows of
    // a last partial tile repeat q's last row into the scores' padding rows.
    long vectors = tkp / VW;
    for (long j0v = 0; j0v < vectors; j0v += CS) {
        int cv = vectors - j0v < CS ? (int)(vectors - j0v) : CS;
        for (long i0 = 0; i0 < tq; i0 += RS) {
            const float *qr[RS];
            for (int r = 0; r < RS; r++) qr[r] = q + (i0 + r < tq ? i0 + r : tq - 1) * ldq;
            float *si = s + i0 * tkp;
            switch (cv) {
#define SC(n) case n: N(score_tile)(qr, kt, tkp, d, j0v * VW, si, n); break;
                SC(1) SC(2)
#if CS >= 3
                SC(3)
#endif
#if CS >= 4
                SC(4)
#endif
#if CS >= 5
                SC(5)
#endif
#undef SC
            }
        }
    }
    // softmax(scores·scale + mask) row by row (the division deferred to the output), then p·v.
    for (long i0 = 0; i0 < tq; i0 += RP) {
        int rows = tq - i0 < RP ? (int)(tq - i0) : RP;
        const float *pr[RP];
        float *orow[RP];
        float inv[RP];
        for (int r = 0; r < RP; r++) {
            long i = i0 + (r < rows ? r : rows - 1);
            pr[r] = s + i * tkp;
            orow[r] = out + i * ldo;
        }
        for (int r = 0; r < rows; r++) inv[r] = N(softmax_row)(s + (i0 + r) * tkp, tkp, scale, mrow);
        for (int r = rows; r < RP; r++) inv[r] = inv[rows - 1];
        long dv = dp / VW;
        for (long c0v = 0; c0v < dv; c0v += CP) {
            int cv = dv - c0v < CP ? (int)(dv - c0v) : CP;
            switch (cv) {
#define PC(n) case n: N(value_tile)(pr, vp, dp, tk, c0v * VW, d, inv, orow, rows, n); break;
                PC(1) PC(2)
#if CP >= 3
                PC(3)
#endif
#if CP >= 4
                PC(4)
#endif
#undef PC
            }
        }
    }
}

#undef N
#undef CAT
#undef CAT_
// The parameters too, so that the next compilation defines its own.
#undef VW
#undef RS
#undef CS
#undef RP
#undef CP
#undef SUFFIX
#undef TB
#undef TRANSPOSE
#undef TARGET
