// LayerNorm over the last dimension and L2 normalization of rows (F.normalize).
import FlavaTensor
import Foundation

/// LayerNorm over the last dimension with affine weight and bias.
public func layerNorm(_ x: Variable, weight: Variable, bias: Variable, eps: Float) -> Variable {
    let xv = x.value, wv = weight.value
    let (y, saved) = LayerNormKernel.forward(xv, weight: wv, bias: bias.value, eps: eps)  // same shape as x
    return Variable.record("layerNorm", y, inputs: [x, weight, bias]) { g in
        let (dx, dw, db) = LayerNormKernel.backward(xv, weight: wv, saved: saved, gradOutput: g)
        return [dx, dw, db]
    }
}

/// x / max(‖x‖₂, eps) along the last dimension (F.normalize(x, dim=-1, eps=1e-12)).
public func l2Normalize(_ x: Variable, eps: Float = 1e-12) -> Variable {
    let xv = x.value
    let d = xv.shape.last ?? 1
    let rows = xv.count / max(d, 1)
    var norms = [Float](repeating: 0, count: rows)
    let y = Tensor(uninitializedShape: xv.shape)
    let xp = xv.storage.pointer, yp = y.storage.pointer
    for r in 0..<rows {
        let n = Reduce.dot(xp + r * d, xp + r * d, d).squareRoot()
        norms[r] = n
        let inv = 1 / max(n, eps)
        for j in 0..<d { yp[r * d + j] = xp[r * d + j] * inv }
    }
    return Variable.record("l2Normalize", y, inputs: [x]) { g in
        let dx = Tensor(uninitializedShape: xv.shape)
        let gp = g.storage.pointer, dp = dx.storage.pointer
        for r in 0..<rows {
            let n = norms[r]
            if n > eps {
                // d(x/‖x‖) = (g − y·⟨g, y⟩)/‖x‖
                let dot = Reduce.dot(gp + r * d, yp + r * d, d)
                for j in 0..<d { dp[r * d + j] = (gp[r * d + j] - yp[r * d + j] * dot) / n }
            } else {
                for j in 0..<d { dp[r * d + j] = gp[r * d + j] / eps }
            }
        }
        return [dx]
    }
}
