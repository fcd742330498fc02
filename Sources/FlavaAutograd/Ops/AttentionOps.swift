// Softmax and multi-head scaled-dot-product attention.
import FlavaTensor

/// softmax over the last dimension.
public func softmax(_ x: Variable) -> Variable {
    let y = SoftmaxKernel.forward(x.value)
    return Variable.record("softmax", y, inputs: [x]) { g in [SoftmaxKernel.backward(output: y, gradOutput: g)] }
}

/// Multi-head attention softmax(q·kᵀ/√d + mask)·v with heads interleaved in the hidden dimension.
/// q [B, Tq, H], k and v [B, Tk, H]; `additiveMask` [B, Tk] (0 to keep, a large negative to drop) → [B, Tq, H].
public func scaledDotProductAttention(query q: Variable, key k: Variable, value v: Variable, heads: Int,
                                      additiveMask: Tensor? = nil) -> Variable {
    let (qv, kv, vv) = (q.value, k.value, v.value)
    let (out, saved) = AttentionKernel.forward(q: qv, k: kv, v: vv, heads: heads, mask: additiveMask)
    return Variable.record("attention", out, inputs: [q, k, v]) { g in
        let (dq, dk, dv) = AttentionKernel.backward(q: qv, k: kv, v: vv, heads: heads, saved: saved, gradOutput: g)
        return [dq, dk, dv]
    }
}

/// Turns a 0/1 padding mask [B, T] into the additive mask the reference uses: (1 − m)·finfo(float32).min.
public func additiveAttentionMask(_ mask: IntTensor) -> Tensor {
    Tensor(shape: mask.shape, mask.values.map { $0 == 0 ? -Float.greatestFiniteMagnitude : 0 })
}
