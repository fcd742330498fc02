// Mirrors FlavaEncoder and FlavaPooler (modeling_flava.py).
import FlavaTensor
import FlavaAutograd
import FlavaNN

/// FlavaEncoder: the stack of FlavaLayers (keys `layer.0…`).
public final class FlavaEncoder: Module {
    @ChildList("layer") public var layers: [FlavaLayer]
    /// Recompute each layer's activations in backward instead of keeping them (HF `gradient_checkpointing`):
    /// training memory for the encoder drops to one layer's activations plus each layer's input.
    public var gradientCheckpointing = false

    public init(_ sizes: FlavaLayerSizes, layers n: Int, init ini: inout Initializer) {
        super.init()
        layers = (0..<n).map { _ in FlavaLayer(sizes, init: &ini) }
    }

    /// x [B, T, H] → the last layer's output [B, T, H] (HF `hidden_states[-1]`, before the final LayerNorm).
    public func callAsFunction(_ x: Variable, mask: Tensor?) -> Variable {
        var h = x
        for layer in layers {
            h = gradientCheckpointing ? checkpointed(h) { layer($0, mask: mask) } : layer(h, mask: mask)
        }
        return h
    }
}

/// FlavaPooler: tanh(dense(sequence[:, 0])).
public final class FlavaPooler: Module {
    @Child("dense") public var dense: Linear

    public init(_ hidden: Int, init ini: inout Initializer) {
        super.init()
        dense = Linear(hidden, hidden, init: &ini)
    }

    /// [B, T, H] → [B, H].
    public func callAsFunction(_ sequence: Variable) -> Variable {
        tanh(dense(firstToken(sequence)))
    }
}

/// sequence[:, 0] as [B, H].
public func firstToken(_ sequence: Variable) -> Variable {
    let (b, h) = (sequence.shape[0], sequence.shape[2])
    return sequence.sliced(axis: 1, 0..<1).reshaped([b, h])                              // [B, H]
}

/// Repeats a [1, ..., H] parameter over the batch: [B, ...] (expand, differentiable through broadcasting).
public func expandBatch(_ x: Variable, to batch: Int) -> Variable {
    Variable(Tensor.zeros([batch] + x.shape.dropFirst())) + x
}

/// The additive attention mask Hugging Face builds from a 0/1 mask: (1 − m)·finfo(float32).min, [B, T].
public func extendedAttentionMask(_ mask: IntTensor?) -> Tensor? {
    mask.map { additiveAttentionMask($0) }
}

extension Module {
    /// Switches gradient checkpointing on or off for every FlavaEncoder in this module's tree.
    public func setGradientCheckpointing(_ on: Bool) {
        for (_, m) in namedModules() { (m as? FlavaEncoder)?.gradientCheckpointing = on }
    }
}
