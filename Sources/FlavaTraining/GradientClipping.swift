// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_) and gradient accumulation.
import FlavaTensor
import FlavaAutograd

/// Gradient utilities.
public enum Gradients {
    /// Scales all gradients so their global L2 norm is at most `maxNorm`; returns the norm before clipping.
    /// As PyTorch: coefficient = maxNorm / (norm + 1e-6), applied only when below 1.
    @discardableResult
    public static func clipGlobalNorm(_ parameters: [Variable], maxNorm: Float) -> Float {
        var total: Double = 0
        for p in parameters {
            guard let g = p.grad else { continue }
            total += g.withBuffer { Double(Reduce.dot($0.baseAddress!, $0.baseAddress!, $0.count)) }
        }
        let norm = Float(total.squareRoot())
        let coef = maxNorm / (norm + 1e-6)
        if coef < 1 { for p in parameters { p.grad?.scale(by: coef) } }
        return norm
    }

    /// Divides accumulated gradients by the number of micro-batches, so `k` backward passes over micro-batches
    /// of a batch give the gradient of that batch's mean loss.
    public static func averageAccumulated(_ parameters: [Variable], microBatches k: Int) {
        precondition(k >= 1, "micro-batch count must be ≥ 1")
        if k == 1 { return }
        let s = 1 / Float(k)
        for p in parameters { p.grad?.scale(by: s) }
    }
}
