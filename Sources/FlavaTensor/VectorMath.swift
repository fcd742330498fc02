// Branch-free float32 transcendental functions (exp, erf, tanh) written with plain arithmetic and bit
// operations only, so that loops over buffers auto-vectorize (AVX-512 here) instead of making one libm call
// per element. Accuracy is checked against libm in the tests.
//
// Why scalar formulas and not SIMD16 types: Swift's generic SIMD conversions, `rounded`, `clamped` and
// `replacing(with:where:)` compile to per-lane loops; the scalar forms below vectorize fully.

/// Element-wise transcendental kernels.
public enum VectorMath {
    /// e^x, Cephes-style: n = round(x·log2 e) by the 1.5·2²³ trick, r = x − n·ln2 in two parts, e^r by a
    /// degree-6 polynomial, 2^n by building the exponent bits (in two halves so n may reach ±128).
    /// Relative error ≈ 1e-7; 0 below −87.34 (float's normal range), +∞ above 88.72.
    @inlinable @inline(__always)
    public static func exp(_ x: Float) -> Float {
        let xc = Swift.min(Swift.max(x, -87.33654), 88.72283)
        let t = xc * 1.44269504088896341 + 12582912.0          // 1.5·2²³: rounds to nearest integer
        let n = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000
        let fn = t - 12582912.0
        let r = xc - fn * 0.693359375 + fn * 2.12194440e-4
        let z = r * r
        var y: Float = 1.9875691500e-4
        y = y * r + 1.3981999507e-3
        y = y * r + 8.3334519073e-3
        y = y * r + 4.1665795894e-2
        y = y * r + 1.6666665459e-1
        y = y * r + 5.0000001201e-1
        y = y * z + r + 1
        let half = n &>> 1
        let p1 = Float(bitPattern: UInt32(bitPattern: (half &+ 127) &<< 23))
        let p2 = Float(bitPattern: UInt32(bitPattern: (n &- half &+ 127) &<< 23))
        var result = y * p1 * p2
        result = x < -87.33654 ? 0 : result
        result = x > 88.72283 ? .infinity : result
        return x.isNaN ? x : result
    }

    /// erf(x) by Abramowitz–Stegun 7.1.26 refined (the form PyTorch's vectorized erf uses); absolute error
    /// below 1.5e-7.
    @inlinable @inline(__always)
    public static func erf(_ x: Float) -> Float {
        let ax = Float(bitPattern: x.bitPattern & 0x7fff_ffff)
        let t = 1 / (ax * 0.3275911 + 1)
        var r: Float = 1.061405429
        r = r * t - 1.453152027
        r = r * t + 1.421413741
        r = r * t - 0.284496736
        r = r * t + 0.254829592
        r = r * t
        let y = 1 - r * exp(-(ax * ax))
        return Float(bitPattern: y.bitPattern | (x.bitPattern & 0x8000_0000))   // sign of x
    }

    /// tanh(x) = sign(x)·(1 − e^{−2|x|})/(1 + e^{−2|x|}), with an odd polynomial near 0 for accuracy.
    @inlinable @inline(__always)
    public static func tanh(_ x: Float) -> Float {
        let ax = Float(bitPattern: x.bitPattern & 0x7fff_ffff)
        let e = exp(ax * -2)
        let big = (1 - e) / (1 + e)
        let x2 = ax * ax
        var p: Float = x2 * (-17.0 / 315) + (2.0 / 15)
        p = p * x2 + (-1.0 / 3)
        p = p * x2 + 1
        let y = ax < 0.0625 ? ax * p : big
        return Float(bitPattern: y.bitPattern | (x.bitPattern & 0x8000_0000))
    }

    /// dst[i] = f(src[i]) for i < n (src and dst may be the same buffer).
    @inlinable @inline(__always)
    public static func map(_ n: Int, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                           _ f: (Float) -> Float) {
        var i = 0
        while i < n { dst[i] = f(src[i]); i &+= 1 }
    }
}
