// linear and matmul with their backward passes.
import FlavaTensor

/// y = x·Wᵀ + b (nn.Linear). x [..., in], weight [out, in], bias [out].
public func linear(_ x: Variable, weight: Variable, bias: Variable?) -> Variable {
    let y = LinearKernel.forward(x.value, weight: weight.value, bias: bias?.value)  // [..., out]
    let xv = x.value, wv = weight.value
    let needX = x.requiresGrad, needW = weight.requiresGrad, needB = bias?.requiresGrad ?? false
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    return Variable.record("linear", y, inputs: inputs) { g in
        var out: [Tensor?] = [
            needX ? LinearKernel.backwardInput(weight: wv, gradOutput: g, inputShape: xv.shape) : nil,
            needW ? LinearKernel.backwardWeight(input: xv, gradOutput: g, weightShape: wv.shape) : nil,
        ]
        if bias != nil { out.append(needB ? g.sumToShape([wv.shape[0]]) : nil) }
        return out
    }
}

/// a [m, k] · b [k, n] (or bᵀ when `transposeB`, b [n, k]) → [m, n].
public func matmul(_ a: Variable, _ b: Variable, transposeB: Bool = false) -> Variable {
    let av = a.value, bv = b.value
    let y = LinearKernel.matmul(av, bv, transB: transposeB)  // [m, n]
    return Variable.record("matmul", y, inputs: [a, b]) { g in
        // dA = g·Bᵀ (or g·B); dB = Aᵀ·g (or gᵀ·A)
        let da = a.requiresGrad ? LinearKernel.matmul(g, bv, transB: !transposeB) : nil
        let db = b.requiresGrad ? (transposeB ? LinearKernel.matmul(g, av, transA: true)
                                              : LinearKernel.matmul(av, g, transA: true)) : nil
        return [da, db]
    }
}
