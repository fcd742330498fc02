// Float32 Linear products of inference on weights packed once (CFlavaKernels/flava_sgemm.c): panels of 16 output
// columns, register tiles per instruction set (AVX-512, AVX2, SSE), bias and GELU in the epilogue, spread over
// the worker pool. Why not OpenBLAS here (training keeps it): cblas_sgemm packs the weights again on every call,
// a large share at the 77 or 197 rows of one text or image, and Debian's OpenBLAS 0.3.21 runs its AVX2 kernel on
// CPUs newer than it knows (Zen 5); measured in BENCHMARKS.md ("Packed float32 products").
import CFlavaKernels

/// A weight matrix [out, in] (and bias [out]) packed for the float32 kernels.
public final class PackedLinear: @unchecked Sendable {
    public let outFeatures: Int
    public let inFeatures: Int
    /// The packed weights, in a tensor's buffer (from the buffer pool: packing layer after layer while releasing
    /// their float weights reuses the buffer the last one freed, so the model does not hold both copies).
    let packed: Tensor
    let bias: ProductBias

    /// Bytes held: the packed weights (outputs rounded up to 16) and the bias.
    public var bytes: Int { (packed.count + bias.count) * 4 }

    /// Whether packed products beat OpenBLAS on this CPU: where the float kernels run AVX2 or AVX-512
    /// (measured level with OpenBLAS's AVX2 kernel at AVX2 and about twice it at AVX-512); the baseline SSE
    /// compilation is the tests' reference, not a fast path.
    public static var preferred: Bool { VectorMath.level != .baseline }

    /// `weight` [out, in] as Linear stores it; `bias` [out] or nil.
    public init(weight: Tensor, bias: Tensor?) {
        precondition(weight.shape.count == 2, "PackedLinear: weight must be [out, in], got \(weight.shape)")
        let (n, k) = (weight.shape[0], weight.shape[1])
        outFeatures = n; inFeatures = k
        let p = Tensor(uninitializedShape: [flava_sgemm_packed_floats(n, k)])
        weight.withBuffer { w in flava_sgemm_pack(w.baseAddress, n, k, p.storage.pointer) }
        packed = p
        self.bias = ProductBias(bias, outputs: n, layer: "PackedLinear")
    }

    /// x [..., in] → [..., out]: x·Wᵀ + b, then GELU when `gelu`. `level`: a float kernel level this CPU has
    /// (default: the one in use, `VectorMath.level`).
    public func callAsFunction(_ x: Tensor, gelu: Bool = false, level chosen: VectorMath.Level? = nil) -> Tensor {
        precondition(x.shape.last == inFeatures, "PackedLinear: input \(x.shape) for \(inFeatures) features")
        let m = x.shape.dropLast().reduce(1, *)
        let out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outFeatures])
        guard m > 0, outFeatures > 0 else { return out }
        let level = Int32(VectorMath.checked(chosen).rawValue)
        let blocks = (outFeatures + 15) / 16
        let split = ProductSplit(rows: m, blocks: blocks)
        let (n, k, op) = (outFeatures, inFeatures, out.storage.pointer)
        x.withBuffer { xb in
            bias.withPointer { bp in
                let (xp, pp) = (xb.baseAddress!, UnsafePointer(packed.storage.pointer))
                Parallel.concurrentPerform(iterations: split.chunks) { t in
                    guard let (r, b) = split.chunk(t) else { return }
                    flava_sgemm(xp + r.lowerBound * k, r.count, k, k, pp, bp, n, b.lowerBound, b.upperBound,
                                op + r.lowerBound * n, n, gelu ? 1 : 0, level)
                }
            }
        }
        return out
    }
}

/// How a product of `rows` rows by `blocks` 16-column blocks of packed weights (int8 or float32) is split over
/// the threads: by column blocks, in pairs (the AVX-512 tiles are two blocks wide), when there are few rows, so
/// that each thread reads its share of the weights once; by rows when there are many (24 a thread or more).
public struct ProductSplit: Sendable {
    public let chunks: Int
    let rows: Int, blocks: Int, rowChunks: Int, colChunks: Int, rowsPer: Int, pairsPer: Int

    public init(rows m: Int, blocks: Int, threads: Int = Parallel.threadCount) {
        let threads = max(1, threads)
        rows = m; self.blocks = blocks
        rowChunks = m >= 24 * threads ? threads : 1
        colChunks = rowChunks > 1 ? 1 : max(1, min(threads, (blocks + 1) / 2))
        rowsPer = (m + rowChunks - 1) / rowChunks
        let pairs = (blocks + 1) / 2
        pairsPer = (pairs + colChunks - 1) / colChunks
        chunks = rowChunks * colChunks
    }

    /// Chunk t's rows and blocks, or nil when it is empty.
    public func chunk(_ t: Int) -> (rows: Range<Int>, blocks: Range<Int>)? {
        let r0 = (t / colChunks) * rowsPer, r1 = min(rows, r0 + rowsPer)
        let b0 = min(blocks, (t % colChunks) * pairsPer * 2), b1 = min(blocks, b0 + pairsPer * 2)
        guard r0 < r1, b0 < b1 else { return nil }
        return (r0..<r1, b0..<b1)
    }
}

/// The bias [out] of a packed product (int8 or float32), copied out of its tensor once, or none.
struct ProductBias: Sendable {
    let values: [Float]?

    init(_ bias: Tensor?, outputs n: Int, layer: String) {
        if let bias { precondition(bias.count == n, "\(layer): bias of \(bias.count) for \(n) outputs") }
        values = bias?.array
    }

    var count: Int { values?.count ?? 0 }

    /// body(the bias's floats, or nil).
    func withPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let values else { return body(nil) }
        return values.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
