// y = x·Wᵀ + b over the last dimension, the way nn.Linear stores W as [out, in]; and its backward.

/// Linear-layer kernels (one GEMM each way).
public enum LinearKernel {
    /// x [..., in], weight [out, in], bias [out] or nil → [..., out].
    public static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(weight.rank == 2, "linear weight must be [out, in], got \(weight.shape)")
        let (outF, inF) = (weight.shape[0], weight.shape[1])
        precondition(x.shape.last == inF, "linear: input \(x.shape) does not end in \(inF)")
        let rows = x.count / max(inF, 1)
        let y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outF])
        let yp = y.storage.pointer
        if let bias {
            precondition(bias.count == outF, "linear bias \(bias.shape) vs \(outF) outputs")
            let bp = bias.storage.pointer
            for r in 0..<rows { (yp + r * outF).update(from: bp, count: outF) }
        }
        BLAS.gemm(transB: true, m: rows, n: outF, k: inF, a: x.storage.pointer, lda: inF,
                  b: weight.storage.pointer, ldb: inF, beta: bias == nil ? 0 : 1, c: yp, ldc: outF)
        return y
    }

    /// dx = g·W.
    public static func backwardInput(weight: Tensor, gradOutput g: Tensor, inputShape: [Int]) -> Tensor {
        let (outF, inF) = (weight.shape[0], weight.shape[1])
        let rows = g.count / max(outF, 1)
        let dx = Tensor(uninitializedShape: inputShape)
        BLAS.gemm(m: rows, n: inF, k: outF, a: g.storage.pointer, lda: outF, b: weight.storage.pointer, ldb: inF,
                  c: dx.storage.pointer, ldc: inF)
        return dx
    }

    /// dW = gᵀ·x.
    public static func backwardWeight(input x: Tensor, gradOutput g: Tensor, weightShape: [Int]) -> Tensor {
        let (outF, inF) = (weightShape[0], weightShape[1])
        let rows = g.count / max(outF, 1)
        let dw = Tensor(uninitializedShape: weightShape)
        BLAS.gemm(transA: true, m: outF, n: inF, k: rows, a: g.storage.pointer, lda: outF,
                  b: x.storage.pointer, ldb: inF, c: dw.storage.pointer, ldc: inF)
        return dw
    }

    /// Plain 2-D product a [m, k] · b [k, n] (either side optionally transposed).
    public static func matmul(_ a: Tensor, _ b: Tensor, transA: Bool = false, transB: Bool = false) -> Tensor {
        precondition(a.rank == 2 && b.rank == 2, "matmul wants 2-D operands, got \(a.shape) and \(b.shape)")
        let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
        let kb = transB ? b.shape[1] : b.shape[0], n = transB ? b.shape[0] : b.shape[1]
        precondition(k == kb, "matmul: inner sizes \(k) and \(kb) differ (\(a.shape) · \(b.shape))")
        let c = Tensor(uninitializedShape: [m, n])
        BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a.storage.pointer, lda: a.shape[1],
                  b: b.storage.pointer, ldb: b.shape[1], c: c.storage.pointer, ldc: n)
        return c
    }
}
