// The differentiable all-gather of the global contrastive loss (TorchMultimodal's BackpropType.GLOBAL; paper
// §3.1 "global contrastive"): forward, every rank's rows in rank order; backward, each rank receives its rows of
// the gradient summed over all ranks (a reduce-scatter with SUM). With each rank's loss being its share of the
// global loss (shares summing to it) and parameter gradients summed across ranks, this equals one process on the
// whole batch exactly (DISTRIBUTED.md §4, mode A).
import FlavaTensor
import FlavaAutograd

/// x [b, …] on every rank (the same b everywhere) → [size·b, …], rank r's rows at r·b..<(r+1)·b.
public func allGatherRows(_ x: Variable, _ comm: Communicator) -> Variable {
    guard comm.size > 1 else { return x }
    let shape = x.shape
    let n = comm.size
    let out = Tensor(uninitializedShape: [shape[0] * n] + shape.dropFirst())
    x.value.withBuffer { comm.allGather($0, into: UnsafeMutableBufferPointer(start: out.storage.pointer, count: out.count)) }
    return Variable.record("allGatherRows", out, inputs: [x]) { g in
        let dx = Tensor(uninitializedShape: shape)
        g.withBuffer { comm.reduceScatter($0, into: UnsafeMutableBufferPointer(start: dx.storage.pointer, count: dx.count), .sum) }
        return [dx]
    }
}
