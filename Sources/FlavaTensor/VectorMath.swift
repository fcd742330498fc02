// Vectorized transcendental functions (exp, erf, tanh) over SIMD16<Float>, so that softmax, GELU and tanh run
// at memory speed instead of one libm call per element. Accuracy is checked against libm in the tests.
import Foundation

/// SIMD transcendental kernels.
public enum VectorMath {
    public typealias V = SIMD16<Float>

    /// e^x, Cephes-style: x = n·ln2 + r, e^r by a degree-6 polynomial, 2^n through the exponent bits.
    /// Relative error about 2 ulp over the float range; underflows to 0 below -87.3 and saturates at +88.7.
    @inlinable @inline(__always)
    public static func exp(_ x: V) -> V {
        let input = x
        var x = x.clamped(lowerBound: V(repeating: -87.33654), upperBound: V(repeating: 88.72283))
        let fx = (x * 1.44269504088896341 + 0.5).rounded(.down)
        x = x - fx * 0.693359375 + fx * 2.12194440e-4
        let z = x * x
        var y = V(repeating: 1.9875691500e-4)
        y = y * x + 1.3981999507e-3
        y = y * x + 8.3334519073e-3
        y = y * x + 4.1665795894e-2
        y = y * x + 1.6666665459e-1
        y = y * x + 5.0000001201e-1
        y = y * z + x + 1
        // 2^n: build the float exponent directly. n is in [-126, 128]; split to stay representable.
        let n = SIMD16<Int32>(fx)
        let half = n &>> 1
        let e1: SIMD16<Int32> = (half &+ 127) &<< 23
        let e2: SIMD16<Int32> = (n &- half &+ 127) &<< 23
        let p1 = unsafeBitCast(e1, to: V.self)
        let p2 = unsafeBitCast(e2, to: V.self)
        var r = y * p1 * p2
        r.replace(with: 0, where: input .< -87.33654)   // flush what float cannot hold normally
        r.replace(with: .infinity, where: input .> 88.72283)
        return r
    }

    /// |x| by clearing the sign bit.
    @inlinable @inline(__always)
    public static func abs(_ x: V) -> V {
        unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7fff_ffff, to: V.self)
    }

    /// erf(x) by Abramowitz–Stegun 7.1.26 refined (the polynomial PyTorch's vectorized erf uses);
    /// absolute error below 1.5e-7.
    @inlinable @inline(__always)
    public static func erf(_ x: V) -> V {
        let ax = abs(x)
        let one = V(repeating: 1)
        let t: V = one / (ax * 0.3275911 + one)
        var r = V(repeating: 1.061405429)
        r = r * t - 1.453152027
        r = r * t + 1.421413741
        r = r * t - 0.284496736
        r = r * t + 0.254829592
        r = r * t
        let e: V = exp(-(ax * ax))
        let y: V = one - r * e
        return y.replacing(with: -y, where: x .< 0)
    }

    /// tanh(x) = sign(x)·(1 − e^{−2|x|})/(1 + e^{−2|x|}), with a series near 0 for accuracy.
    @inlinable @inline(__always)
    public static func tanh(_ x: V) -> V {
        let ax = abs(x)
        let one = V(repeating: 1)
        let e: V = exp(ax * -2)
        var y: V = (one - e) / (one + e)
        let x2: V = x * x
        var poly: V = x2 * (-17.0 / 315) + (2.0 / 15)
        poly = poly * x2 + (-1.0 / 3)
        poly = poly * x2 + one
        let small: V = ax * poly
        y.replace(with: small, where: ax .< 0.0625)
        return y.replacing(with: -y, where: x .< 0)
    }

    /// Applies a SIMD function over a buffer, scalar-padding the tail through one SIMD lane set.
    @inlinable @inline(__always)
    public static func map(_ n: Int, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                           _ f: (V) -> V) {
        var i = 0
        while i &+ 16 <= n {
            let v = UnsafeRawPointer(src + i).loadUnaligned(as: V.self)
            UnsafeMutableRawPointer(dst + i).storeBytes(of: f(v), as: V.self)
            i &+= 16
        }
        if i < n {
            var v = V(repeating: 0)
            for j in 0..<(n &- i) { v[j] = src[i &+ j] }
            let r = f(v)
            for j in 0..<(n &- i) { dst[i &+ j] = r[j] }
        }
    }
}
