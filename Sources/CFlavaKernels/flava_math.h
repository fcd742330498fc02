// Scalar elementary functions written so that clang vectorizes the loops calling them (no libm calls, no
// branches): shared by the float kernels (flava_kernels.c) and the int8 products' epilogue (flava_qgemm.c).
#ifndef FLAVA_MATH_H
#define FLAVA_MATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

INLINE float bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
INLINE uint32_t float_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

// e^x, Cephes-style: n = round(x·log2 e) via the 1.5·2^23 trick, r = x − n·ln2 (two parts), degree-6
// polynomial, 2^n assembled in the exponent bits in two halves. Relative error ≈ 1e-7.
INLINE float k_exp(float x) {
    float xc = x < -87.33654f ? -87.33654f : (x > 88.72283f ? 88.72283f : x);
    float t = xc * 1.44269504088896341f + 12582912.0f;
    int32_t n = (int32_t)float_to_bits(t) - 0x4B400000;
    float fn = t - 12582912.0f;
    float r = xc - fn * 0.693359375f + fn * 2.12194440e-4f;
    float z = r * r;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    int32_t half = n >> 1;
    float p1 = bits_to_float((uint32_t)(half + 127) << 23);
    float p2 = bits_to_float((uint32_t)(n - half + 127) << 23);
    float res = y * p1 * p2;
    res = x < -87.33654f ? 0.0f : res;
    res = x > 88.72283f ? INFINITY : res;
    return x != x ? x : res;
}

// erf by Abramowitz–Stegun 7.1.26 (PyTorch's vectorized form); absolute error < 1.5e-7.
INLINE float k_erf(float x) {
    float ax = bits_to_float(float_to_bits(x) & 0x7fffffffu);
    float t = 1.0f / (ax * 0.3275911f + 1.0f);
    float r = 1.061405429f;
    r = r * t - 1.453152027f;
    r = r * t + 1.421413741f;
    r = r * t - 0.284496736f;
    r = r * t + 0.254829592f;
    r = r * t;
    float y = 1.0f - r * k_exp(-(ax * ax));
    return bits_to_float(float_to_bits(y) | (float_to_bits(x) & 0x80000000u));
}

INLINE float k_tanh(float x) {
    float ax = bits_to_float(float_to_bits(x) & 0x7fffffffu);
    float e = k_exp(ax * -2.0f);
    float big = (1.0f - e) / (1.0f + e);
    float x2 = ax * ax;
    float p = x2 * (-17.0f / 315.0f) + (2.0f / 15.0f);
    p = p * x2 + (-1.0f / 3.0f);
    p = p * x2 + 1.0f;
    float y = ax < 0.0625f ? ax * p : big;
    return bits_to_float(float_to_bits(y) | (float_to_bits(x) & 0x80000000u));
}

#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT2PI 0.39894228040143268f

// Exact (erf) GELU of one value, as torch.nn.functional.gelu.
INLINE float k_gelu(float x) { return 0.5f * x * (1.0f + k_erf(x * INV_SQRT2)); }

#endif
