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
