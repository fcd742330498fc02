// Gradient checkpointing (torch.utils.checkpoint): a block of ops whose activations are not kept between the
// forward and the backward pass but recomputed during backward. Memory held for the block drops to its input;
// the cost is one more forward of the block. Results and gradients are those of the block recorded normally
// (the recomputation runs the same kernels on the same values; nothing in FLAVA's forward is random).

/// `body(input)`, with `body`'s activations recomputed in backward instead of kept. Outside grad mode it is
/// just `body(input)`.
public func checkpointed(_ input: Variable, _ body: @escaping (Variable) -> Variable) -> Variable {
    guard GradMode.isEnabled else { return body(input) }
    let output = withNoGrad { body(Variable(input.value)) }
    let saved = input.value, inputNeedsGrad = input.requiresGrad
    return Variable(output.value, node: Node(name: "checkpoint", inputs: [input]) { gradient in
        // Recompute with recording on, back-propagate through the recomputed graph: the block's parameters
        // accumulate their gradients as leaves do, and the input's gradient goes on to the outer graph.
        let x = Variable(saved, requiresGrad: inputNeedsGrad)
        let y = GradMode.with(enabled: true) { body(x) }
        y.backward(seed: gradient)
        return [x.grad]
    })
}
