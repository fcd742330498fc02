import CFlavaKernels
// Elementwise arithmetic with NumPy broadcasting, and its adjoint: summing a gradient back to an operand's shape.

/// How two shapes broadcast together (NumPy rules: align on the right, sizes equal or 1).
public struct Broadcast: Sendable {
    public let shape: [Int]
    /// Per-operand strides over the output shape (0 along broadcast dimensions).
    public let stridesA: [Int], stridesB: [Int]

    public init(_ a: [Int], _ b: [Int]) {
        let r = max(a.count, b.count)
        let pa = Array(repeating: 1, count: r - a.count) + a
        let pb = Array(repeating: 1, count: r - b.count) + b
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            precondition(pa[i] == pb[i] || pa[i] == 1 || pb[i] == 1, "shapes \(a) and \(b) do not broadcast")
            out[i] = pa[i] == 1 ? pb[i] : pa[i]
        }
        shape = out
        stridesA = Broadcast.strides(pa)
        stridesB = Broadcast.strides(pb)
    }

    static func strides(_ s: [Int]) -> [Int] {
        var st = [Int](repeating: 0, count: s.count)
        var acc = 1
        for i in stride(from: s.count - 1, through: 0, by: -1) {
            st[i] = s[i] == 1 ? 0 : acc
            acc *= s[i]
        }
        return st
    }

    /// Calls `body(outIndex, aIndex, bIndex)` for every output element (the general, slow path).
    @inlinable func forEach(_ body: (Int, Int, Int) -> Void) {
        let n = Tensor.elementCount(shape)
        let r = shape.count
        var idx = [Int](repeating: 0, count: r)
        var ia = 0, ib = 0
        for o in 0..<n {
            body(o, ia, ib)
            var d = r - 1
            while d >= 0 {
                idx[d] += 1; ia += stridesA[d]; ib += stridesB[d]
                if idx[d] < shape[d] { break }
                ia -= stridesA[d] * shape[d]; ib -= stridesB[d] * shape[d]; idx[d] = 0
                d -= 1
            }
        }
    }
}

/// The elementwise binary operations with fast paths.
public enum BinaryOp: Sendable { case add, sub, mul }

extension Tensor {
    /// `a op b` with broadcasting. Fast paths: equal shapes, a scalar, and `b` a suffix of `a` (bias rows).
    public static func binary(_ a: Tensor, _ b: Tensor, _ op: BinaryOp) -> Tensor {
        @inline(__always) func f(_ x: Float, _ y: Float) -> Float {
            switch op { case .add: return x + y; case .sub: return x - y; case .mul: return x * y }
        }
        if a.shape == b.shape {
            let out = Tensor(uninitializedShape: a.shape)
            let pa = a.storage.pointer, pb = b.storage.pointer, po = out.storage.pointer
            Parallel.forRanges(a.count) { r in
                switch op {
                case .add: for i in r { po[i] = pa[i] + pb[i] }
                case .sub: for i in r { po[i] = pa[i] - pb[i] }
                case .mul: for i in r { po[i] = pa[i] * pb[i] }
                }
            }
            return out
        }
        if b.count == 1 && Broadcast(a.shape, b.shape).shape == a.shape {
            let s = b.storage.pointer[0]
            return a.map { f($0, s) }
        }
        if a.count == 1 && Broadcast(a.shape, b.shape).shape == b.shape {
            let s = a.storage.pointer[0]
            return b.map { f(s, $0) }
        }
        let bc = Broadcast(a.shape, b.shape)
        if bc.shape == a.shape, b.rank <= a.rank, Array(a.shape.suffix(b.rank)) == b.shape {
            let inner = b.count, rows = a.count / max(inner, 1)
            let out = Tensor(uninitializedShape: a.shape)
            let pa = a.storage.pointer, pb = b.storage.pointer, po = out.storage.pointer
            Parallel.forRanges(rows, costPerItem: inner) { r in
                for row in r {
                    let o = row &* inner
                    switch op {
                    case .add: for j in 0..<inner { po[o &+ j] = pa[o &+ j] + pb[j] }
                    case .sub: for j in 0..<inner { po[o &+ j] = pa[o &+ j] - pb[j] }
                    case .mul: for j in 0..<inner { po[o &+ j] = pa[o &+ j] * pb[j] }
                    }
                }
            }
            return out
        }
        let out = Tensor(uninitializedShape: bc.shape)
        let pa = a.storage.pointer, pb = b.storage.pointer, po = out.storage.pointer
        bc.forEach { o, ia, ib in po[o] = f(pa[ia], pb[ib]) }
        return out
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { binary(a, b, .add) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { binary(a, b, .sub) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { binary(a, b, .mul) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.map { $0 * s } }

    /// Applies `f` to every element into a new tensor.
    @inlinable public func map(_ f: (Float) -> Float) -> Tensor {
        var out = Tensor(uninitializedShape: shape)
        let p = storage.pointer
        out.withMutableBuffer { o in for i in 0..<o.count { o[i] = f(p[i]) } }
        return out
    }

    /// `self += alpha * other` in place (shapes must match).
    public mutating func addScaled(_ other: Tensor, alpha: Float = 1) {
        precondition(other.count == count, "addScaled: \(shape) vs \(other.shape)")
        let src = other.storage.pointer
        let n = count
        withMutableBuffer { d in
            let dp = d.baseAddress!
            Parallel.forRanges(n) { r in for i in r { dp[i] += alpha * src[i] } }
        }
    }

    /// Multiplies every element by `s` in place.
    public mutating func scale(by s: Float) {
        let n = count
        withMutableBuffer { d in
            let dp = d.baseAddress!
            Parallel.forRanges(n) { r in for i in r { dp[i] *= s } }
        }
    }

    /// Sums this tensor down to `target` shape: the adjoint of broadcasting `target` up to `self.shape`.
    public func sumToShape(_ target: [Int]) -> Tensor {
        if target == shape { return self }
        let tcount = Tensor.elementCount(target)
        let p = storage.pointer
        if tcount == 1 {
            return Tensor(shape: target, [Reduce.sum(p, count)])
        }
        if target.count <= rank, Array(shape.suffix(target.count)) == target {
            let rows = count / tcount
            let out = Tensor.zeros(target)
            let po = out.storage.pointer
            // Columns split over threads; each thread sums its columns down all rows.
            Parallel.forRanges(tcount, costPerItem: rows) { cols in
                for row in 0..<rows {
                    let base = row &* tcount
                    for j in cols { po[j] += p[base &+ j] }
                }
            }
            return out
        }
        let bc = Broadcast(shape, target)
        precondition(bc.shape == shape, "cannot sum \(shape) to \(target)")
        let out = Tensor.zeros(target)
        let po = out.storage.pointer
        bc.forEach { o, _, it in po[it] += p[o] }
        return out
    }
}

/// Vectorized reductions over raw buffers (AVX-512/AVX2 kernels in CFlavaKernels).
public enum Reduce {
    /// Sum of `n` floats (16 partial sums).
    @inlinable public static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float { flava_sum(p, n) }
    /// Dot product of two buffers.
    @inlinable public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        flava_dot(a, b, n)
    }
    /// Largest element (NaN if any is NaN, −∞ when empty).
    @inlinable public static func max(_ p: UnsafePointer<Float>, _ n: Int) -> Float { flava_max(p, n) }
}
