// Cross-entropy with ignore index, and mean / sum reductions.
import FlavaTensor

/// F.cross_entropy(logits [N, C], labels [N], ignore_index) with mean over the kept rows.
public func crossEntropy(_ logits: Variable, labels: [Int], ignoreIndex: Int = -100) -> Variable {
    let (loss, probs, kept) = LossKernel.crossEntropy(logits: logits.value, labels: labels, ignoreIndex: ignoreIndex)
    return Variable.record("crossEntropy", Tensor(scalar: loss), inputs: [logits]) { g in
        [LossKernel.crossEntropyBackward(probs: probs, labels: labels, kept: kept, ignoreIndex: ignoreIndex,
                                         gradOutput: g.scalarValue)]
    }
}

extension Variable {
    /// Sum of all elements → scalar.
    public func sum() -> Variable {
        let shape = self.shape
        let s = value.withBuffer { Reduce.sum($0.baseAddress!, $0.count) }
        return Variable.record("sum", Tensor(scalar: s), inputs: [self]) { g in
            [Tensor(shape: shape, repeating: g.scalarValue)]
        }
    }

    /// Mean of all elements → scalar.
    public func mean() -> Variable {
        let shape = self.shape, n = Float(value.count)
        let s = value.withBuffer { Reduce.sum($0.baseAddress!, $0.count) }
        return Variable.record("mean", Tensor(scalar: s / n), inputs: [self]) { g in
            [Tensor(shape: shape, repeating: g.scalarValue / n)]
        }
    }
}

/// log softmax over the last dimension: x − logsumexp(x).
public func logSoftmax(_ x: Variable) -> Variable {
    let p = SoftmaxKernel.forward(x.value)
    let n = x.shape.last ?? 1
    let rows = x.value.count / max(n, 1)
    let y = Tensor(uninitializedShape: x.shape)
    let xp = x.value.storage.pointer, yp = y.storage.pointer
    for r in 0..<rows {
        let row = xp + r * n
        let m = Reduce.max(row, n)
        var s: Double = 0
        for j in 0..<n { s += Foundation.exp(Double(row[j] - m)) }
        let lse = m + Float(Foundation.log(s))
        for j in 0..<n { yp[r * n + j] = row[j] - lse }
    }
    return Variable.record("logSoftmax", y, inputs: [x]) { g in
        let dx = Tensor(uninitializedShape: g.shape)
        let gp = g.storage.pointer, pp = p.storage.pointer, dp = dx.storage.pointer
        for r in 0..<rows {
            let s = Reduce.sum(gp + r * n, n)
            for j in 0..<n { dp[r * n + j] = gp[r * n + j] - pp[r * n + j] * s }
        }
        return [dx]
    }
}

/// Mean squared error between a prediction and a constant target.
public func mseLoss(_ prediction: Variable, _ target: Tensor) -> Variable {
    precondition(prediction.shape == target.shape, "mse: prediction \(prediction.shape) vs target \(target.shape)")
    let diff = prediction.value - target
    let n = Float(diff.count)
    let loss = diff.withBuffer { Reduce.dot($0.baseAddress!, $0.baseAddress!, $0.count) } / n
    return Variable.record("mse", Tensor(scalar: loss), inputs: [prediction]) { g in [diff * (2 * g.scalarValue / n)] }
}

/// DALL-E's logit-Laplace reconstruction loss, in nats per sub-pixel: `stats` [B, 2C, H, W] holds μ (first C
/// channels, in logit space) and ln b (last C); `target` [B, C, H, W] are pixels mapped into (ε, 1−ε) by
/// 0.8x + 0.1. −log p(x) = log(2b) + log(x(1−x)) + |logit(x) − μ| / b, averaged over every sub-pixel.
public func logitLaplaceLoss(_ stats: Variable, target: Tensor) -> Variable {
    let s = stats.shape
    precondition(s.count == 4 && target.shape == [s[0], s[1] / 2, s[2], s[3]] && s[1] % 2 == 0,
                 "logit-Laplace: stats \(s) vs target \(target.shape)")
    let (b, c, hw) = (s[0], s[1] / 2, s[2] * s[3])
    let sp = stats.value.storage.pointer, tp = target.storage.pointer
    let n = b * c * hw
    var total: Double = 0
    var dMu = [Float](repeating: 0, count: n), dLnB = [Float](repeating: 0, count: n)
    for bi in 0..<b { for ci in 0..<c { for k in 0..<hw {
        let ti = (bi * c + ci) * hw + k
        let mu = sp[(bi * 2 * c + ci) * hw + k], lnb = sp[(bi * 2 * c + c + ci) * hw + k]
        let x = min(max(tp[ti], 1e-4), 1 - 1e-4)
        let lx = log(x / (1 - x))
        let invB = Foundation.exp(-lnb)
        let d = lx - mu
        total += Double(Float(M_LN2) + lnb + log(x * (1 - x)) + abs(d) * invB)
        dMu[ti] = (d > 0 ? -1 : (d < 0 ? 1 : 0)) * invB
        dLnB[ti] = 1 - abs(d) * invB
    } } }
    let count = Float(n)
    return Variable.record("logitLaplace", Tensor(scalar: Float(total / Double(n))), inputs: [stats]) { g in
        let scale = g.scalarValue / count
        let dx = Tensor.zeros(s)
        let dp = dx.storage.pointer
        for bi in 0..<b { for ci in 0..<c { for k in 0..<hw {
            let ti = (bi * c + ci) * hw + k
            dp[(bi * 2 * c + ci) * hw + k] = dMu[ti] * scale
            dp[(bi * 2 * c + c + ci) * hw + k] = dLnB[ti] * scale
        } } }
        return [dx]
    }
}

import Foundation

/// Binary cross-entropy with logits against soft targets in [0, 1], averaged over every element
/// (F.binary_cross_entropy_with_logits), computed stably: max(x, 0) − x·t + log(1 + e^{−|x|}).
public func binaryCrossEntropyWithLogits(_ logits: Variable, targets: Tensor) -> Variable {
    precondition(logits.shape == targets.shape, "BCE: logits \(logits.shape) vs targets \(targets.shape)")
    let x = logits.value
    let n = x.count
    var total = 0.0
    for i in 0..<n {
        let v = Double(x[flat: i]), t = Double(targets[flat: i])
        total += max(v, 0) - v * t + Foundation.log(1 + Foundation.exp(-abs(v)))
    }
    return Variable.record("bceWithLogits", Tensor(scalar: Float(total / Double(n))), inputs: [logits]) { g in
        let scale = g.scalarValue / Float(n)
        let dx = Tensor(uninitializedShape: x.shape)
        for i in 0..<n { dx.storage.pointer[i] = (1 / (1 + Foundation.exp(-x[flat: i])) - targets[flat: i]) * scale }
        return [dx]
    }
}

/// Cross-entropy against soft targets, summed over rows: Σ_r −Σ_j T[r, j] · log_softmax(logits[r])_j, with
/// `targets` [N, C] any non-negative weights (a row may hold the sum of several distributions, as DINO's
/// student views do against the teacher's global views; a row of zeros contributes nothing). The gradient is
/// softmax(logits[r]) · ΣT[r] − T[r]. The caller divides by its count of terms.
public func softTargetCrossEntropy(_ logits: Variable, targets: Tensor) -> Variable {
    precondition(logits.shape == targets.shape && logits.shape.count >= 1, "soft cross-entropy: logits \(logits.shape) vs targets \(targets.shape)")
    let x = logits.value
    let n = x.shape.last ?? 1
    let rows = x.count / max(n, 1)
    let p = SoftmaxKernel.forward(x)
    let xp = x.storage.pointer, tp = targets.storage.pointer
    var total = 0.0
    var weights = [Float](repeating: 0, count: rows)
    for r in 0..<rows {
        let row = xp + r * n, t = tp + r * n
        let m = Reduce.max(row, n)
        var s = 0.0
        for j in 0..<n { s += Foundation.exp(Double(row[j] - m)) }
        let lse = Double(m) + Foundation.log(s)
        var acc = 0.0, w = 0.0
        for j in 0..<n where t[j] != 0 { acc += Double(t[j]) * (lse - Double(row[j])); w += Double(t[j]) }
        total += acc
        weights[r] = Float(w)
    }
    return Variable.record("softTargetCrossEntropy", Tensor(scalar: Float(total)), inputs: [logits]) { g in
        let scale = g.scalarValue
        let dx = Tensor(uninitializedShape: x.shape)
        let dp = dx.storage.pointer, pp = p.storage.pointer, tp = targets.storage.pointer   // p and targets kept alive here
        for r in 0..<rows {
            let w = weights[r]
            for j in 0..<n { dp[r * n + j] = (pp[r * n + j] * w - tp[r * n + j]) * scale }
        }
        return [dx]
    }
}
