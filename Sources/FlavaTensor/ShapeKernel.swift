// Data movement: permute, concatenate, slice, gather and scatter rows. Each is its own adjoint's partner:
// permute ↔ inverse permute, concat ↔ slice, gather ↔ scatter-add.

/// Shape and indexing kernels (all produce contiguous outputs).
public enum ShapeKernel {
    /// Strides of a contiguous row-major shape.
    public static func strides(_ shape: [Int]) -> [Int] {
        var st = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { st[i] = acc; acc *= shape[i] }
        return st
    }

    /// out = x.permute(perm), made contiguous. `perm[i]` is the input axis that becomes output axis i.
    public static func permute(_ x: Tensor, _ perm: [Int]) -> Tensor {
        precondition(perm.sorted() == Array(0..<x.rank), "permute: \(perm) is not a permutation of 0..<\(x.rank)")
        let outShape = perm.map { x.shape[$0] }
        let inStrides = strides(x.shape)
        let srcStrides = perm.map { inStrides[$0] }
        let out = Tensor(uninitializedShape: outShape)
        let xp = x.storage.pointer, op = out.storage.pointer
        let r = outShape.count
        if r == 0 { op[0] = xp[0]; return out }
        // Iterate over all but the last output axis; copy the last axis with its source stride.
        let last = outShape[r - 1], lastStride = srcStrides[r - 1]
        let outer = x.count / max(last, 1)
        let outerShape = Array(outShape.prefix(r - 1)), outerStrides = Array(srcStrides.prefix(r - 1))
        Parallel.forRanges(outer, costPerItem: last) { range in
            for o in range {
                var rem = o, src = 0
                for d in stride(from: outerShape.count - 1, through: 0, by: -1) {
                    src &+= (rem % outerShape[d]) &* outerStrides[d]; rem /= outerShape[d]
                }
                let dst = op + o &* last
                if lastStride == 1 { dst.update(from: xp + src, count: last) }
                else { for j in 0..<last { dst[j] = xp[src &+ j &* lastStride] } }
            }
        }
        return out
    }

    /// Stacks equally shaped tensors along a new first axis: [S…] × n → [n, S…].
    public static func stack(_ xs: [Tensor]) -> Tensor {
        concat(xs.map { $0.reshaped([1] + $0.shape) }, axis: 0)
    }

    /// Concatenates along `axis`; all other sizes must agree.
    public static func concat(_ xs: [Tensor], axis: Int) -> Tensor {
        precondition(!xs.isEmpty, "concat of no tensors")
        let r = xs[0].rank
        precondition(axis >= 0 && axis < r, "concat axis \(axis) out of range for rank \(r)")
        for t in xs {
            precondition(t.rank == r, "concat: ranks differ")
            for d in 0..<r where d != axis {
                precondition(t.shape[d] == xs[0].shape[d], "concat: shapes \(xs.map { $0.shape }) differ off axis \(axis)")
            }
        }
        var outShape = xs[0].shape
        outShape[axis] = xs.reduce(0) { $0 + $1.shape[axis] }
        let outer = xs[0].shape.prefix(axis).reduce(1, *)
        let inner = xs[0].shape.suffix(from: axis + 1).reduce(1, *)
        let out = Tensor(uninitializedShape: outShape)
        let op = out.storage.pointer
        let outRow = outShape[axis] * inner
        var offset = 0
        for t in xs {
            let block = t.shape[axis] * inner
            let tp = t.storage.pointer
            for o in 0..<outer { (op + o * outRow + offset).update(from: tp + o * block, count: block) }
            offset += block
        }
        return out
    }

    /// x[..., start..<end, ...] along `axis`, contiguous.
    public static func slice(_ x: Tensor, axis: Int, start: Int, end: Int) -> Tensor {
        precondition(axis >= 0 && axis < x.rank, "slice axis \(axis) out of range for \(x.shape)")
        precondition(0 <= start && start <= end && end <= x.shape[axis], "slice \(start)..<\(end) out of 0..<\(x.shape[axis])")
        var outShape = x.shape
        outShape[axis] = end - start
        let outer = x.shape.prefix(axis).reduce(1, *)
        let inner = x.shape.suffix(from: axis + 1).reduce(1, *)
        let out = Tensor(uninitializedShape: outShape)
        let xp = x.storage.pointer, op = out.storage.pointer
        let block = (end - start) * inner, inRow = x.shape[axis] * inner
        for o in 0..<outer { (op + o * block).update(from: xp + o * inRow + start * inner, count: block) }
        return out
    }

    /// The adjoint of `slice`: a zero tensor of `shape` with `g` written at start..<end along `axis`.
    public static func sliceBackward(_ g: Tensor, shape: [Int], axis: Int, start: Int) -> Tensor {
        let out = Tensor.zeros(shape)
        let outer = shape.prefix(axis).reduce(1, *)
        let inner = shape.suffix(from: axis + 1).reduce(1, *)
        let block = g.shape[axis] * inner, outRow = shape[axis] * inner
        let gp = g.storage.pointer, op = out.storage.pointer
        for o in 0..<outer { (op + o * outRow + start * inner).update(from: gp + o * block, count: block) }
        return out
    }

    /// Rows of x (viewed as [N, rowSize] over its first axis) at `indices` → [indices.count, rest...].
    public static func gatherRows(_ x: Tensor, _ indices: [Int]) -> Tensor {
        precondition(x.rank >= 1, "gatherRows needs rank ≥ 1")
        let n = x.shape[0], row = x.count / max(n, 1)
        let out = Tensor(uninitializedShape: [indices.count] + x.shape.dropFirst())
        let xp = x.storage.pointer, op = out.storage.pointer
        for (i, r) in indices.enumerated() {
            precondition(r >= 0 && r < n, "row index \(r) out of range 0..<\(n)")
            (op + i * row).update(from: xp + r * row, count: row)
        }
        return out
    }

    /// out[indices[i]] += src[i], rows over the first axis of `out` (accumulating repeated indices).
    public static func scatterAddRows(into out: inout Tensor, _ src: Tensor, _ indices: [Int]) {
        let n = out.shape[0], row = out.count / max(n, 1)
        precondition(src.count == indices.count * row, "scatterAddRows: \(src.shape) vs \(indices.count) rows of \(row)")
        let sp = src.storage.pointer
        out.withMutableBuffer { ob in
            let op = ob.baseAddress!
            for (i, r) in indices.enumerated() {
                precondition(r >= 0 && r < n, "row index \(r) out of range 0..<\(n)")
                let d = op + r * row, s = sp + i * row
                for j in 0..<row { d[j] += s[j] }
            }
        }
    }
}
