// Scaled-dot-product attention over heads interleaved in the hidden dimension, the way FlavaSelfAttention
// lays them out after its query/key/value Linear layers: q, k, v are [B, T, H] with head h at columns
// h·d ..< (h+1)·d. Each head is read in place, so the reference's view/permute copies vanish. Training (which
// keeps the probabilities for the backward pass) runs two strided BLAS products and a softmax per head; inference
// runs one fused C kernel per head (flava_attention.c: q·kᵀ, softmax and ·v with register tiles per instruction set).
import CFlavaKernels

/// Multi-head attention kernels: softmax(q·kᵀ·scale + mask)·v per (batch, head), forward and backward.
public enum AttentionKernel {
    /// What the backward pass needs: the attention probabilities [B, heads, Tq, Tk].
    public struct Saved: Sendable { public let probs: Tensor }

    /// q [B, Tq, H], k and v [B, Tk, H]; `mask` additive, [B, Tk] (broadcast over heads and queries) or nil.
    /// Returns the context [B, Tq, H] and the probabilities [B, heads, Tq, Tk] for the backward pass.
    public static func forward(q: Tensor, k: Tensor, v: Tensor, heads: Int, mask: Tensor?,
                               scale: Float? = nil) -> (Tensor, Saved) {
        precondition(q.rank == 3 && k.rank == 3 && v.rank == 3, "attention wants [B, T, H] inputs")
        let (b, tq, h) = (q.shape[0], q.shape[1], q.shape[2])
        let tk = k.shape[1]
        precondition(k.shape == [b, tk, h] && v.shape == [b, tk, h], "attention: q \(q.shape) k \(k.shape) v \(v.shape)")
        let d = headSize(h: h, heads: heads, b: b, tk: tk, mask: mask)
        let sc = scale ?? 1 / Float(d).squareRoot()
        let probs = Tensor(uninitializedShape: [b, heads, tq, tk])
        let out = Tensor(uninitializedShape: [b, tq, h])
        let qp = q.storage.pointer, kp = k.storage.pointer, vp = v.storage.pointer
        let pp = probs.storage.pointer, op = out.storage.pointer, mp = mask?.storage.pointer
        BLAS.singleThreaded {
            Parallel.forRanges(b * heads, costPerItem: tq * tk * d * 4) { r in
                for pair in r {
                    let bi = pair / heads, hi = pair % heads
                    let qb = qp + (bi &* tq &* h &+ hi &* d), kb = kp + (bi &* tk &* h &+ hi &* d)
                    let vb = vp + (bi &* tk &* h &+ hi &* d), ob = op + (bi &* tq &* h &+ hi &* d)
                    let s = pp + pair &* tq &* tk
                    BLAS.gemm(transB: true, m: tq, n: tk, k: d, alpha: sc, a: qb, lda: h, b: kb, ldb: h,
                              c: s, ldc: tk)
                    for i in 0..<tq {
                        let row = s + i &* tk
                        if let mp { let mrow = mp + bi &* tk; for j in 0..<tk { row[j] += mrow[j] } }
                        SoftmaxKernel.softmaxRow(row, tk)
                    }
                    BLAS.gemm(m: tq, n: d, k: tk, a: s, lda: tk, b: vb, ldb: h, c: ob, ldc: h)
                }
            }
        }
        return (out, Saved(probs: probs))
    }

    /// Inference (nothing saved for a backward pass) on the fused projection of FlavaSelfAttention: `qkv`
    /// [B, T, 3H] holds q, k and v side by side in each row. Returns the context [B, T, H]; the probabilities
    /// live in one [T, T] scratch per worker instead of [B, heads, T, T].
    /// `level`: the instruction set of the fused kernel (`VectorMath.Level`; default the one in use).
    public static func inference(qkv: Tensor, heads: Int, mask: Tensor?, scale: Float? = nil,
                                 level: VectorMath.Level? = nil) -> Tensor {
        precondition(qkv.rank == 3 && qkv.shape[2] % 3 == 0, "fused attention wants [B, T, 3H], got \(qkv.shape)")
        let (b, t, h) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3)
        let d = headSize(h: h, heads: heads, b: b, tk: t, mask: mask), ld = 3 * h
        let sc = scale ?? 1 / Float(d).squareRoot()
        let lv = Int32(VectorMath.checked(level).rawValue)
        let out = Tensor(uninitializedShape: [b, t, h])
        let p = qkv.storage.pointer, op = out.storage.pointer, mp = mask?.storage.pointer
        let scratchCount = flava_attention_scratch(t, t, d)
        Parallel.forRanges(b * heads, costPerItem: t * t * d * 4) { r in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
            defer { scratch.deallocate() }
            for pair in r {
                let bi = pair / heads, hi = pair % heads
                let qb = p + (bi &* t &* ld &+ hi &* d)
                flava_attention_head(qb, ld, qb + h, qb + 2 * h, ld, mp.map { $0 + bi &* t }, t, t, d, sc,
                                     op + (bi &* t &* h &+ hi &* d), h, scratch, lv)
            }
        }
        return out
    }

    /// The head size h / heads, after checking that the heads divide h and that `mask` is [b, tk].
    static func headSize(h: Int, heads: Int, b: Int, tk: Int, mask: Tensor?) -> Int {
        precondition(h % heads == 0, "hidden \(h) is not divisible by \(heads) heads")
        if let m = mask { precondition(m.shape == [b, tk], "attention mask \(m.shape) should be [\(b), \(tk)]") }
        return h / heads
    }

    /// Gradients of q, k, v from the upstream gradient of the context [B, Tq, H].
    public static func backward(q: Tensor, k: Tensor, v: Tensor, heads: Int, saved: Saved, gradOutput g: Tensor,
                                scale: Float? = nil) -> (dq: Tensor, dk: Tensor, dv: Tensor) {
        let (b, tq, h) = (q.shape[0], q.shape[1], q.shape[2])
        let tk = k.shape[1]
        let d = h / heads
        let sc = scale ?? 1 / Float(d).squareRoot()
        let dq = Tensor(uninitializedShape: q.shape), dk = Tensor(uninitializedShape: k.shape)
        let dv = Tensor(uninitializedShape: v.shape)
        let qp = q.storage.pointer, kp = k.storage.pointer, vp = v.storage.pointer, gp = g.storage.pointer
        let pp = saved.probs.storage.pointer
        let dqp = dq.storage.pointer, dkp = dk.storage.pointer, dvp = dv.storage.pointer
        let pairs = b * heads
        BLAS.singleThreaded {
            Parallel.forRanges(pairs, costPerItem: tq * tk * d * 8) { r in
                // One dP scratch [Tq, Tk] per worker chunk.
                let ds = UnsafeMutablePointer<Float>.allocate(capacity: tq * tk)
                defer { ds.deallocate() }
                for pair in r {
                    let bi = pair / heads, hi = pair % heads
                    let off = hi &* d
                    let qb = qp + (bi &* tq &* h &+ off), kb = kp + (bi &* tk &* h &+ off), vb = vp + (bi &* tk &* h &+ off)
                    let gb = gp + (bi &* tq &* h &+ off)
                    let p = pp + pair &* tq &* tk
                    // dV = Pᵀ·dO
                    BLAS.gemm(transA: true, m: tk, n: d, k: tq, a: p, lda: tk, b: gb, ldb: h,
                              c: dvp + (bi &* tk &* h &+ off), ldc: h)
                    // dP = dO·Vᵀ, then dS = P ⊙ (dP − rowsum(dP ⊙ P))
                    BLAS.gemm(transB: true, m: tq, n: tk, k: d, a: gb, lda: h, b: vb, ldb: h, c: ds, ldc: tk)
                    for i in 0..<tq { SoftmaxKernel.softmaxBackwardRow(y: p + i &* tk, grad: ds + i &* tk, tk) }
                    // dQ = dS·K·scale, dK = dSᵀ·Q·scale
                    BLAS.gemm(m: tq, n: d, k: tk, alpha: sc, a: ds, lda: tk, b: kb, ldb: h,
                              c: dqp + (bi &* tq &* h &+ off), ldc: h)
                    BLAS.gemm(transA: true, m: tk, n: d, k: tq, alpha: sc, a: ds, lda: tk, b: qb, ldb: h,
                              c: dkp + (bi &* tk &* h &+ off), ldc: h)
                }
            }
        }
        return (dq, dk, dv)
    }
}
