// Mirrors FlavaPredictionHeadTransform, FlavaMaskedPredictionHead, FlavaITMHead and
// FlavaGlobalContrastiveHead (modeling_flava.py).
import FlavaTensor
import FlavaAutograd
import FlavaNN

/// FlavaPredictionHeadTransform: dense → GELU → LayerNorm.
public final class FlavaPredictionHeadTransform: Module {
    @Child("dense") public var dense: Linear
    @Child("LayerNorm") public var layerNorm: LayerNorm

    public init(hidden: Int, eps: Float, init ini: inout Initializer) {
        super.init()
        dense = Linear(hidden, hidden, init: &ini)
        layerNorm = LayerNorm(hidden, eps: eps)
    }

    public func callAsFunction(_ x: Variable) -> Variable { layerNorm(gelu(dense(x))) }
}

/// FlavaMaskedPredictionHead (MIM, MLM, MMM-image, MMM-text): transform, then a decoder with its own
/// [V, H] weight (not tied to the word embeddings) and a bias stored as `decoder.bias` (also known as `bias`).
public final class FlavaMaskedPredictionHead: Module {
    @Child("transform") public var transform: FlavaPredictionHeadTransform
    @Param("decoder.weight") public var decoderWeight: Variable
    @Param("decoder.bias", aliases: ["bias"]) public var decoderBias: Variable

    public init(hidden: Int, vocab: Int, eps: Float, init ini: inout Initializer) {
        super.init()
        transform = FlavaPredictionHeadTransform(hidden: hidden, eps: eps, init: &ini)
        decoderWeight = Variable(ini.normal([vocab, hidden]), requiresGrad: true)
        decoderBias = Variable(Tensor.zeros([vocab]), requiresGrad: true)
    }

    /// [..., H] → logits [..., V].
    public func callAsFunction(_ x: Variable) -> Variable {
        linear(transform(x), weight: decoderWeight, bias: decoderBias)
    }
}

/// FlavaITMHead: its own pooler on the multimodal [CLS_M] token, then a 2-way classifier.
public final class FlavaITMHead: Module {
    @Child("pooler") public var pooler: FlavaPooler
    @Child("seq_relationship") public var seqRelationship: Linear

    public init(hidden: Int, init ini: inout Initializer) {
        super.init()
        pooler = FlavaPooler(hidden, init: &ini)
        seqRelationship = Linear(hidden, 2, init: &ini)
    }

    /// multimodal sequence [B, T, H] → logits [B, 2] (index 1 = match).
    public func callAsFunction(_ mm: Variable) -> Variable { seqRelationship(pooler(mm)) }
}

/// FlavaGlobalContrastiveHead: exp(logit_scale)-scaled cosine similarities (single process: the "global"
/// batch is the local batch).
public enum FlavaGlobalContrastiveHead {
    /// image, text [B, P] (normalized) → (logits_per_image [B, B], logits_per_text [B, B]).
    public static func logits(image: Variable, text: Variable, logitScale: Variable) -> (perImage: Variable, perText: Variable) {
        let temperature = exp(logitScale)                                               // []
        let perImage = matmul(image, text, transposeB: true) * temperature              // [B, B]
        let perText = matmul(text, image, transposeB: true) * temperature               // [B, B]
        return (perImage, perText)
    }

    /// Data-parallel: this rank's image and text [b, P] against every rank's (gathered, [B, P]) →
    /// (logits_per_image [b, B], logits_per_text [b, B]).
    public static func logits(image: Variable, text: Variable, logitScale: Variable, allImages: Variable, allTexts: Variable)
        -> (perImage: Variable, perText: Variable) {
        let temperature = exp(logitScale)
        return (matmul(image, allTexts, transposeB: true) * temperature, matmul(text, allImages, transposeB: true) * temperature)
    }
}
