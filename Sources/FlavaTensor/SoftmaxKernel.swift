import CFlavaKernels

// Row softmax (last dimension), forward and backward, and log-sum-exp for the cross-entropy.

/// Softmax kernels over rows of length `n`.
public enum SoftmaxKernel {
    /// In place: row ← softmax(row), subtracting the row maximum first.
    @inlinable @inline(__always)
    public static func softmaxRow(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        let m = Reduce.max(p, n)
        let inv = 1 / flava_exp_shift_sum(p, n, m)
        for j in 0..<n { p[j] *= inv }
    }

    /// In place: dRow ← y ⊙ (dRow − ⟨dRow, y⟩), the softmax Jacobian-vector product.
    @inlinable @inline(__always)
    public static func softmaxBackwardRow(y: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>, _ n: Int) {
        let dot = Reduce.dot(y, grad, n)
        for j in 0..<n { grad[j] = y[j] * (grad[j] - dot) }
    }

    /// softmax over the last dimension.
    public static func forward(_ x: Tensor) -> Tensor {
        let n = x.shape.last ?? 1
        let rows = x.count / max(n, 1)
        let y = x.copy()
        let p = y.storage.pointer
        Parallel.forRanges(rows, costPerItem: n * 4) { r in for row in r { softmaxRow(p + row &* n, n) } }
        return y
    }

    /// Gradient of the input from the output y and upstream gradient g.
    public static func backward(output y: Tensor, gradOutput g: Tensor) -> Tensor {
        let n = y.shape.last ?? 1
        let rows = y.count / max(n, 1)
        let dx = g.copy()
        let yp = y.storage.pointer, dp = dx.storage.pointer
        Parallel.forRanges(rows, costPerItem: n * 2) { r in
            for row in r { softmaxBackwardRow(y: yp + row &* n, grad: dp + row &* n, n) }
        }
        return dx
    }
}
