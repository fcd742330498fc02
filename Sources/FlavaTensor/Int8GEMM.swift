// Dynamic int8 products for inference (Linear layers): weights quantized once, symmetric int8 per output
// channel, and packed for the int8 kernels of CFlavaKernels (flava_qgemm.c: AMX, AVX-512 VNNI, AVX2 or portable,
// chosen from the CPU); activations quantized per row on the fly; int32 sums over the whole row; the scales,
// bias and an optional GELU applied in the product's epilogue. Why C: the int8 instructions (tdpbssd, vpdpbusd,
// vpmaddubsw) are reachable only through intrinsics under a per-function target, which Swift lacks.
import CFlavaKernels

/// The int8 kernels.
public enum Int8GEMM {
    /// A kernel path: portable C, AVX2 (7-bit activations), AVX-512 VNNI, AMX (Intel's int8 tile products).
    public enum Path: Int32, CaseIterable, Sendable, CustomStringConvertible {
        case portable = 0, avx2 = 1, avx512VNNI = 2, amx = 3
        public var description: String { ["portable", "avx2", "avx512_vnni", "amx"][Int(rawValue)] }
        /// The activations' range on this path, q ∈ [−levels, levels]: 127 (int8), 63 on AVX2 (7 bits, so that
        /// vpmaddubsw's int16 pair sums of shifted activations never saturate; flava_qgemm.c).
        public var activationLevels: Int { Int(flava_qgemm_activation_levels(rawValue)) }
        /// What a quantized activation byte holds on this path: q + shift as an unsigned byte (VNNI 128, AVX2 64),
        /// or q itself (shift 0).
        public var activationShift: Int { Int(flava_qgemm_activation_shift(rawValue)) }
        /// The weights' range this path packs them at, w ∈ [−levels, levels]: 127, 63 on AVX2 (7 bits, so that its
        /// product adds two groups' int16 pair sums before widening them; flava_qgemm.c). Any path runs either.
        public var weightLevels: Int { Int(flava_qgemm_weight_levels(rawValue)) }
    }

    /// The path in use: the best this CPU has, or FLAVA_INT8_KERNEL's (portable, avx2, avx512_vnni, amx) when it
    /// has it.
    public static var path: Path { Path(rawValue: flava_qgemm_path()) ?? .portable }
    /// Whether this CPU can run `p`.
    public static func supports(_ p: Path) -> Bool { flava_qgemm_supports(p.rawValue) != 0 }
    /// Uses `p` from now on (false, changing nothing, when the CPU cannot run it). For tests and comparisons.
    @discardableResult public static func use(_ p: Path) -> Bool { flava_qgemm_set_path(p.rawValue) != 0 }
}

/// A weight matrix [out, in] (and bias [out]) quantized and packed for int8 products.
public final class Int8Linear: @unchecked Sendable {
    public let outFeatures: Int
    public let inFeatures: Int
    /// The weights' range, w ∈ [−weightLevels, weightLevels] (127 or, for the AVX2 path, 63).
    public let weightLevels: Int
    let paddedIn: Int
    let packed: [Int8]
    /// Per output channel (padded to 16): the weight scale and the sum of the int8 weights.
    let scales: [Float]
    let columnSums: [Int32]
    let bias: ProductBias

    /// Bytes held: the packed int8 weights, the scales, column sums and bias.
    public var bytes: Int { packed.count + (scales.count + columnSums.count + bias.count) * 4 }

    /// `weight` [out, in] as Linear stores it; `bias` [out] or nil. `weightLevels`: 1...127, by default the levels
    /// of the path in use (`Int8GEMM.path.weightLevels`).
    public init(weight: Tensor, bias: Tensor?, weightLevels: Int? = nil) {
        precondition(weight.shape.count == 2, "Int8Linear: weight must be [out, in], got \(weight.shape)")
        let levels = weightLevels ?? Int8GEMM.path.weightLevels
        precondition((1...127).contains(levels), "Int8Linear: weight levels \(levels) outside 1...127")
        let (n, k) = (weight.shape[0], weight.shape[1])
        outFeatures = n; inFeatures = k; self.weightLevels = levels
        paddedIn = flava_qgemm_padded_k(k)
        var packed = [Int8](repeating: 0, count: flava_qgemm_packed_bytes(n, k))
        let padded = (n + 15) / 16 * 16
        var scales = [Float](repeating: 0, count: padded), sums = [Int32](repeating: 0, count: padded)
        weight.withBuffer { w in flava_qgemm_pack(w.baseAddress, n, k, Int32(levels), &packed, &scales, &sums) }
        self.packed = packed; self.scales = scales; columnSums = sums
        self.bias = ProductBias(bias, outputs: n, layer: "Int8Linear")
    }

    /// x [..., in] → [..., out]: x·Wᵀ + b in int8 with int32 sums, then GELU when `gelu`. `path`: a kernel path
    /// this CPU has (default: `Int8GEMM.path`).
    public func callAsFunction(_ x: Tensor, gelu: Bool = false, path chosen: Int8GEMM.Path? = nil) -> Tensor {
        precondition(x.shape.last == inFeatures, "Int8Linear: input \(x.shape) for \(inFeatures) features")
        let m = x.count / inFeatures
        let out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outFeatures])
        guard m > 0 else { return out }
        let path = Int8Linear.checked(chosen)
        let (q, rowScales) = quantizeRows(x, m: m, path: path)
        run(q, rowScales, m: m, into: out.storage.pointer, mode: gelu ? Int32(FLAVA_QGEMM_GELU) : Int32(FLAVA_QGEMM_FLOAT), path: path)
        return out
    }

    /// The exact int32 sums Σ_k qx[m, k]·qw[n, k] of already quantized activations `q` [m, paddedIn] (quantized
    /// for the path in use), for the tests' integer reference.
    public func int32Products(_ q: [Int8], rows m: Int, path chosen: Int8GEMM.Path? = nil) -> [Int32] {
        let path = Int8Linear.checked(chosen)
        var out = [Int32](repeating: 0, count: m * outFeatures)
        out.withUnsafeMutableBufferPointer { o in
            o.baseAddress!.withMemoryRebound(to: Float.self, capacity: o.count) { p in
                run(q, [Float](repeating: 1, count: m), m: m, into: p, mode: Int32(FLAVA_QGEMM_INT32), path: path)
            }
        }
        return out
    }

    /// The quantized rows and scales of x [m, in] for the path in use (as the product quantizes them; on the
    /// AVX-512 VNNI path each byte is the value + 128 as an unsigned byte; on AVX2 the value is 7-bit, |q| ≤ 63, + 64).
    public func quantize(_ x: Tensor, path chosen: Int8GEMM.Path? = nil) -> (q: [Int8], scales: [Float]) {
        quantizeRows(x, m: x.count / inFeatures, path: Int8Linear.checked(chosen))
    }

    /// Rows of x quantized for `path`, split over the threads. The quantizer writes every byte of a row, its
    /// padding included, and every scale, so the buffers start uninitialized instead of zeroed first.
    private func quantizeRows(_ x: Tensor, m: Int, path: Int32) -> (q: [Int8], scales: [Float]) {
        let count = m * paddedIn
        guard count > 0 else { return ([Int8](repeating: 0, count: count), [Float](repeating: 0, count: m)) }
        var rowScales = [Float](unsafeUninitializedCapacity: m) { _, n in n = m }
        let q = [Int8](unsafeUninitializedCapacity: count) { qb, n in
            rowScales.withUnsafeMutableBufferPointer { sb in
                x.withBuffer { xb in
                    let (xp, qp, sp) = (xb.baseAddress!, qb.baseAddress!, sb.baseAddress!)
                    Parallel.forRanges(m, costPerItem: inFeatures) { r in
                        flava_qgemm_quantize(xp + r.lowerBound * inFeatures, r.count, inFeatures, inFeatures,
                                             qp + r.lowerBound * paddedIn, sp + r.lowerBound, path)
                    }
                }
            }
            n = count
        }
        return (q, rowScales)
    }

    /// The packed int8 weight of output n, input k (for tests).
    public func weight(_ n: Int, _ k: Int) -> Int8 { packed[(n / 16) * 16 * paddedIn + (k / 4) * 64 + (n % 16) * 4 + k % 4] }
    /// The scale of output channel n.
    public func scale(_ n: Int) -> Float { scales[n] }

    static func checked(_ p: Int8GEMM.Path?) -> Int32 {
        guard let p else { return Int8GEMM.path.rawValue }
        precondition(Int8GEMM.supports(p), "int8 kernel path \(p) is not available on this CPU")
        return p.rawValue
    }

    /// Spreads the product over the threads (`ProductSplit`).
    private func run(_ q: [Int8], _ rowScales: [Float], m: Int, into out: UnsafeMutablePointer<Float>, mode: Int32, path: Int32) {
        let blocks = (outFeatures + 15) / 16
        let split = ProductSplit(rows: m, blocks: blocks)
        q.withUnsafeBufferPointer { qb in
            rowScales.withUnsafeBufferPointer { sb in
                packed.withUnsafeBufferPointer { pb in
                    scales.withUnsafeBufferPointer { wb in
                        columnSums.withUnsafeBufferPointer { cb in bias.withPointer { biasPointer in
                            let (qp, sp, pp, wp, cp) = (qb.baseAddress!, sb.baseAddress!, pb.baseAddress!, wb.baseAddress!, cb.baseAddress!)
                            let (n, kp, levels) = (outFeatures, paddedIn, Int32(weightLevels))
                            Parallel.concurrentPerform(iterations: split.chunks) { t in
                                guard let (r, b) = split.chunk(t) else { return }
                                flava_qgemm(qp + r.lowerBound * kp, sp + r.lowerBound, r.count, kp, pp, wp, cp, biasPointer, n,
                                            b.lowerBound, b.upperBound, out + r.lowerBound * n, n, mode, path, levels)
                            }
                        } }
                    }
                }
            }
        }
    }
}
