// Cross-entropy with an ignore index (PyTorch's F.cross_entropy, mean over the rows that are kept).

/// Cross-entropy kernels.
public enum LossKernel {
    /// Mean over rows whose label is not `ignoreIndex` of −log softmax(logits)[label]. logits [N, C].
    /// Returns the loss, the softmax probabilities (for the backward pass) and the number of rows kept.
    /// With no row kept the loss is NaN, as PyTorch's.
    public static func crossEntropy(logits: Tensor, labels: [Int], ignoreIndex: Int = -100)
        -> (loss: Float, probs: Tensor, kept: Int) {
        precondition(logits.rank == 2, "cross-entropy wants [N, C] logits, got \(logits.shape)")
        let (n, c) = (logits.shape[0], logits.shape[1])
        precondition(labels.count == n, "cross-entropy: \(labels.count) labels for \(n) rows")
        let probs = SoftmaxKernel.forward(logits)
        var total: Double = 0
        var kept = 0
        for i in 0..<n where labels[i] != ignoreIndex {
            precondition(labels[i] >= 0 && labels[i] < c, "label \(labels[i]) out of range 0..<\(c)")
            // log p computed from the logits for accuracy: x_y − max − log Σ exp(x − max).
            let row = logits.storage.pointer + i * c
            let m = Reduce.max(row, c)
            var sumExp: Double = 0
            for j in 0..<c { sumExp += Foundation.exp(Double(row[j] - m)) }
            total += Foundation.log(sumExp) - Double(row[labels[i]] - m)
            kept += 1
        }
        return (kept == 0 ? .nan : Float(total / Double(kept)), probs, kept)
    }

    /// dlogits = (softmax − onehot)/kept · g on kept rows, 0 on ignored rows.
    public static func crossEntropyBackward(probs: Tensor, labels: [Int], kept: Int, ignoreIndex: Int = -100,
                                            gradOutput g: Float) -> Tensor {
        let (n, c) = (probs.shape[0], probs.shape[1])
        let dx = probs.copy()
        let dp = dx.storage.pointer
        let scale = kept == 0 ? Float.nan : g / Float(kept)
        for i in 0..<n {
            let row = dp + i * c
            if labels[i] == ignoreIndex { row.update(repeating: 0, count: c); continue }
            row[labels[i]] -= 1
            for j in 0..<c { row[j] *= scale }
        }
        return dx
    }
}

import Foundation
