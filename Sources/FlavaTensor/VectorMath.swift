// Element-wise transcendental functions over buffers, dispatched to the widest vector unit the CPU has
// (CFlavaKernels: AVX-512, AVX2+FMA or baseline). Accuracy is checked against libm in the tests.
import CFlavaKernels

/// Buffer-wide exp, erf-based GELU and tanh.
public enum VectorMath {
    /// The instruction set the kernels dispatch to ("avx512", "avx2" or "baseline"): the widest this CPU has, or
    /// FLAVA_FLOAT_KERNEL's (baseline, avx2, avx512) when it has that one.
    public static var instructionSet: String { String(cString: flava_kernels_isa()) }

    /// The float kernels' instruction sets, as levels.
    public enum Level: Int, CaseIterable, Sendable, CustomStringConvertible {
        case baseline = 0, avx2 = 1, avx512 = 2
        public var description: String { ["baseline", "avx2", "avx512"][rawValue] }
    }
    /// The level in use.
    public static var level: Level { Level(rawValue: Int(flava_kernels_level())) ?? .baseline }
    /// Whether this CPU can run `level`.
    public static func supports(_ level: Level) -> Bool { flava_kernels_supports(Int32(level.rawValue)) != 0 }

    static func checked(_ l: Level?) -> Level {
        guard let l else { return level }
        precondition(supports(l), "float kernel level \(l) is not available on this CPU")
        return l
    }

    /// dst[i] = e^{src[i]}: relative error ≈ 1e-7, 0 below −87.34, +∞ above 88.72, NaN kept.
    public static func exp(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count n: Int) {
        flava_exp(src, dst, n)
    }

    /// dst[i] = tanh(src[i]).
    public static func tanh(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count n: Int) {
        flava_tanh(src, dst, n)
    }

    /// e^x of one value (through the same kernel; for tests and scalar code).
    public static func exp(_ x: Float) -> Float { var x = x, y: Float = 0; flava_exp(&x, &y, 1); return y }
    /// tanh of one value.
    public static func tanh(_ x: Float) -> Float { var x = x, y: Float = 0; flava_tanh(&x, &y, 1); return y }
    /// GELU of one value: 0.5·x·(1 + erf(x/√2)).
    public static func gelu(_ x: Float) -> Float { var x = x, y: Float = 0; flava_gelu(&x, &y, 1); return y }
}
