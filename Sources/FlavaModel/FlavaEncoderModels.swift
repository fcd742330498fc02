// Mirrors FlavaImageModel, FlavaTextModel and FlavaMultimodalModel (modeling_flava.py): embeddings, the
// encoder, the final LayerNorm and the pooler. Each returns the post-LayerNorm sequence (HF
// `last_hidden_state`), the pre-LayerNorm output of the last layer (HF `hidden_states[-1]`, which feeds the
// multimodal projections) and the pooled output.
import FlavaTensor
import FlavaAutograd
import FlavaNN

/// What an encoder returns.
public struct FlavaEncoderOutput {
    /// Post-final-LayerNorm sequence [B, T, H].
    public let lastHiddenState: Variable
    /// The last layer's output before the final LayerNorm [B, T, H].
    public let lastLayerOutput: Variable
    /// tanh(dense(lastHiddenState[:, 0])) [B, H].
    public let poolerOutput: Variable
}

/// FlavaImageModel: ViT-style image encoder.
public final class FlavaImageModel: Module {
    @Child("embeddings") public var embeddings: FlavaImageEmbeddings
    @Child("encoder") public var encoder: FlavaEncoder
    @Child("layernorm") public var layernorm: LayerNorm
    @Child("pooler") public var pooler: FlavaPooler
    public let config: FlavaImageConfig

    public init(_ c: FlavaImageConfig, init ini: inout Initializer) {
        config = c
        super.init()
        embeddings = FlavaImageEmbeddings(c, init: &ini)
        encoder = FlavaEncoder(c.layerSizes, layers: c.numHiddenLayers, init: &ini)
        layernorm = LayerNorm(c.hiddenSize, eps: Float(c.layerNormEps))
        pooler = FlavaPooler(c.hiddenSize, init: &ini)
    }

    /// pixels [B, C, H, W] → sequences of 1 + patches tokens.
    public func callAsFunction(_ pixels: Variable, boolMaskedPos: IntTensor? = nil,
                               interpolatePositions: Bool = false) -> FlavaEncoderOutput {
        let h0 = embeddings(pixels, boolMaskedPos: boolMaskedPos, interpolatePositions: interpolatePositions)  // [B, N+1, H]
        let last = encoder(h0, mask: nil)                                               // [B, N+1, H]
        let out = layernorm(last)                                                       // [B, N+1, H]
        return FlavaEncoderOutput(lastHiddenState: out, lastLayerOutput: last, poolerOutput: pooler(out))
    }
}

/// FlavaTextModel: BERT embeddings + pre-LN layers + final LayerNorm.
public final class FlavaTextModel: Module {
    @Child("embeddings") public var embeddings: FlavaTextEmbeddings
    @Child("encoder") public var encoder: FlavaEncoder
    @Child("layernorm") public var layernorm: LayerNorm
    @Child("pooler") public var pooler: FlavaPooler
    public let config: FlavaTextConfig

    public init(_ c: FlavaTextConfig, init ini: inout Initializer) {
        config = c
        super.init()
        embeddings = FlavaTextEmbeddings(c, init: &ini)
        encoder = FlavaEncoder(c.layerSizes, layers: c.numHiddenLayers, init: &ini)
        layernorm = LayerNorm(c.hiddenSize, eps: Float(c.layerNormEps))
        pooler = FlavaPooler(c.hiddenSize, init: &ini)
    }

    /// ids [B, L], attention mask [B, L] of 0/1 (all ones when nil, as HF) → sequences of L tokens.
    public func callAsFunction(_ ids: IntTensor, attentionMask: IntTensor? = nil,
                               tokenTypeIds: IntTensor? = nil) -> FlavaEncoderOutput {
        precondition(ids.shape.count == 2, "input_ids must be [B, L], got \(ids.shape)")
        precondition(ids.shape[1] <= config.maxPositionEmbeddings,
                     "sequence of \(ids.shape[1]) tokens exceeds max_position_embeddings \(config.maxPositionEmbeddings)")
        if let m = attentionMask { precondition(m.shape == ids.shape, "attention_mask \(m.shape) vs input_ids \(ids.shape)") }
        let h0 = embeddings(ids, tokenTypeIds: tokenTypeIds)                            // [B, L, H]
        let last = encoder(h0, mask: extendedAttentionMask(attentionMask))              // [B, L, H]
        let out = layernorm(last)                                                       // [B, L, H]
        return FlavaEncoderOutput(lastHiddenState: out, lastLayerOutput: last, poolerOutput: pooler(out))
    }
}

/// FlavaMultimodalModel: its own [CLS_M] token, layers, final LayerNorm and pooler; no position embeddings.
public final class FlavaMultimodalModel: Module {
    @OptionalParam("cls_token") public var clsToken: Variable?
    @Child("encoder") public var encoder: FlavaEncoder
    @Child("layernorm") public var layernorm: LayerNorm
    @Child("pooler") public var pooler: FlavaPooler

    public init(_ c: FlavaMultimodalConfig, init ini: inout Initializer) {
        super.init()
        if c.useClsToken { clsToken = Variable(Tensor.zeros([1, 1, c.hiddenSize]), requiresGrad: true) }
        encoder = FlavaEncoder(c.layerSizes, layers: c.numHiddenLayers, init: &ini)
        layernorm = LayerNorm(c.hiddenSize, eps: Float(c.layerNormEps))
        pooler = FlavaPooler(c.hiddenSize, init: &ini)
    }

    /// hidden [B, S, H] (already projected), mask [B, 1 + S] of 0/1 including the [CLS_M] position, or nil.
    public func callAsFunction(_ hidden: Variable, attentionMask: IntTensor? = nil) -> FlavaEncoderOutput {
        var h = hidden
        if let cls = clsToken { h = concat([expandBatch(cls, to: hidden.shape[0]), hidden], axis: 1) }  // [B, 1+S, H]
        if let m = attentionMask { precondition(m.shape == [h.shape[0], h.shape[1]], "multimodal mask \(m.shape) for \(h.shape)") }
        let last = encoder(h, mask: extendedAttentionMask(attentionMask))               // [B, 1+S, H]
        let out = layernorm(last)                                                       // [B, 1+S, H]
        return FlavaEncoderOutput(lastHiddenState: out, lastLayerOutput: last, poolerOutput: pooler(out))
    }
}
