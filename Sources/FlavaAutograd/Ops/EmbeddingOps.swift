// Embedding lookup (nn.Embedding) and row gather/scatter.
import FlavaTensor

/// weight[ids] → [ids.shape..., D]. The gradient scatters back into the rows used (accumulating repeats).
public func embedding(_ ids: IntTensor, weight: Variable) -> Variable {
    precondition(weight.value.rank == 2, "embedding weight must be [V, D], got \(weight.shape)")
    let v = weight.value.shape[0], d = weight.value.shape[1]
    for id in ids.values { precondition(id >= 0 && id < v, "embedding id \(id) out of range 0..<\(v)") }
    let rows = ShapeKernel.gatherRows(weight.value, ids.values)   // [n, D]
    let y = rows.reshaped(ids.shape + [d])                        // [ids..., D]
    let wShape = weight.shape
    return Variable.record("embedding", y, inputs: [weight]) { g in
        var dw = Tensor.zeros(wShape)
        ShapeKernel.scatterAddRows(into: &dw, g, ids.values)
        return [dw]
    }
}

/// x[indices] along the first axis → [indices.count, rest...] (index_select(0, indices)).
public func gatherRows(_ x: Variable, _ indices: [Int]) -> Variable {
    let shape = x.shape
    return Variable.record("gatherRows", ShapeKernel.gatherRows(x.value, indices), inputs: [x]) { g in
        var dx = Tensor.zeros(shape)
        ShapeKernel.scatterAddRows(into: &dx, g, indices)
        return [dx]
    }
}

/// A zero tensor of `rowCount` rows with `src`'s rows added at `indices` (index_add into zeros).
public func scatterRows(_ src: Variable, _ indices: [Int], rowCount: Int) -> Variable {
    var out = Tensor.zeros([rowCount] + src.shape.dropFirst())
    ShapeKernel.scatterAddRows(into: &out, src.value, indices)
    return Variable.record("scatterRows", out, inputs: [src]) { g in [ShapeKernel.gatherRows(g, indices)] }
}
