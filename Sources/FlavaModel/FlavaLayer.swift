// Mirrors transformers/models/flava/modeling_flava.py: FlavaSelfAttention, FlavaSelfOutput, FlavaAttention,
// FlavaIntermediate, FlavaOutput and FlavaLayer — the pre-LayerNorm (ViT-style) block shared by the image,
// text and multimodal encoders (../shared/spec/FLAVA_REFERENCE.md §2.1).
import FlavaTensor
import FlavaAutograd
import FlavaNN

/// Sizes of one transformer layer (the fields every FLAVA encoder config shares).
public struct FlavaLayerSizes: Sendable, Equatable {
    public var hiddenSize: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var layerNormEps: Float
    public var qkvBias: Bool

    public init(hiddenSize: Int = 768, numAttentionHeads: Int = 12, intermediateSize: Int = 3072,
                layerNormEps: Float = 1e-12, qkvBias: Bool = true) {
        precondition(hiddenSize % numAttentionHeads == 0, "hidden size \(hiddenSize) is not a multiple of \(numAttentionHeads) heads")
        self.hiddenSize = hiddenSize; self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize; self.layerNormEps = layerNormEps; self.qkvBias = qkvBias
    }
}

/// FlavaSelfAttention: query/key/value projections and multi-head scaled-dot-product attention.
public final class FlavaSelfAttention: Module {
    @Child("query") public var query: Linear
    @Child("key") public var key: Linear
    @Child("value") public var value: Linear
    public let heads: Int
    /// The fused query/key/value product of inference (`Module.prepareForInference`).
    public internal(set) var fusedQKV: FusedLinear?

    public init(_ s: FlavaLayerSizes, init ini: inout Initializer) {
        heads = s.numAttentionHeads
        super.init()
        query = Linear(s.hiddenSize, s.hiddenSize, bias: s.qkvBias, init: &ini)
        key = Linear(s.hiddenSize, s.hiddenSize, bias: s.qkvBias, init: &ini)
        value = Linear(s.hiddenSize, s.hiddenSize, bias: s.qkvBias, init: &ini)
    }

    /// h [B, T, H], additive mask [B, T] or nil → context [B, T, H].
    public func callAsFunction(_ h: Variable, mask: Tensor?) -> Variable {
        if let fusedQKV, !GradMode.isEnabled {                                         // inference: [B, T, 3H]
            return Variable(AttentionKernel.inference(qkv: fusedQKV(h.value), heads: heads, mask: mask))
        }
        let q = query(h), k = key(h), v = value(h)                                     // [B, T, H] each
        return scaledDotProductAttention(query: q, key: k, value: v, heads: heads, additiveMask: mask)  // [B, T, H]
    }
}

extension FlavaSelfAttention: InferenceFusing {
    /// One product for query, key and value ([3H, H]; int8 or float32) in passes without gradients.
    public func fuseForInference(_ precision: InferencePrecision) -> [Linear] {
        fusedQKV = FusedLinear([query, key, value], precision: precision)
        return [query, key, value]
    }

    public func dropFusedForms() { fusedQKV = nil }
}

/// FlavaAttention = FlavaSelfAttention + FlavaSelfOutput (its dense projection; the residual is in the layer).
public final class FlavaAttention: Module {
    @Child("attention") public var attention: FlavaSelfAttention
    @Child("output.dense") public var outputDense: Linear

    public init(_ s: FlavaLayerSizes, init ini: inout Initializer) {
        super.init()
        attention = FlavaSelfAttention(s, init: &ini)
        outputDense = Linear(s.hiddenSize, s.hiddenSize, init: &ini)
    }

    public func callAsFunction(_ h: Variable, mask: Tensor?) -> Variable {
        outputDense(attention(h, mask: mask))                                          // [B, T, H]
    }
}

/// FlavaLayer: x + attn(LN(x)), then + MLP(LN(·)) with exact GELU.
public final class FlavaLayer: Module {
    @Child("attention") public var attention: FlavaAttention
    @Child("intermediate.dense") public var intermediate: Linear
    @Child("output.dense") public var output: Linear
    @Child("layernorm_before") public var layernormBefore: LayerNorm
    @Child("layernorm_after") public var layernormAfter: LayerNorm

    public init(_ s: FlavaLayerSizes, init ini: inout Initializer) {
        super.init()
        attention = FlavaAttention(s, init: &ini)
        intermediate = Linear(s.hiddenSize, s.intermediateSize, init: &ini)
        output = Linear(s.intermediateSize, s.hiddenSize, init: &ini)
        layernormBefore = LayerNorm(s.hiddenSize, eps: s.layerNormEps)
        layernormAfter = LayerNorm(s.hiddenSize, eps: s.layerNormEps)
    }

    /// x [B, T, H], additive attention mask [B, T] or nil → [B, T, H].
    public func callAsFunction(_ x: Variable, mask: Tensor? = nil) -> Variable {
        let x1 = attention(layernormBefore(x), mask: mask) + x                        // [B, T, H]
        let ff = output(intermediate.gelu(layernormAfter(x1)))                          // [B, T, H]
        return ff + x1                                                                 // [B, T, H]
    }
}
