// Mirrors FlavaModel (modeling_flava.py): the three encoders, the contrastive projections, the projections
// into the multimodal encoder (taken from the pre-final-LayerNorm states) and the logit scale.
import FlavaTensor
import FlavaAutograd
import FlavaNN

/// What FlavaModel returns; absent modalities are nil.
public struct FlavaModelOutput {
    public let image: FlavaEncoderOutput?
    public let text: FlavaEncoderOutput?
    public let multimodal: FlavaEncoderOutput?
    /// Post-LayerNorm image sequence [B, 1 + N, H] (HF `image_embeddings`).
    public var imageEmbeddings: Variable? { image?.lastHiddenState }
    /// Post-LayerNorm text sequence [B, L, H] (HF `text_embeddings`).
    public var textEmbeddings: Variable? { text?.lastHiddenState }
    /// Multimodal sequence [B, 1 + (1 + N) + L, H] (HF `multimodal_embeddings`).
    public var multimodalEmbeddings: Variable? { multimodal?.lastHiddenState }
}

/// FlavaModel.
///
/// Not Sendable: a model is a tree of `Module`s whose parameters (`Variable`s) change in training and in
/// loading. For inference from several tasks, share a `FlavaEmbedder`, which only reads its model.
public final class FlavaModel: Module {
    @Child("text_model") public var textModel: FlavaTextModel
    @Child("image_model") public var imageModel: FlavaImageModel
    @Child("multimodal_model") public var multimodalModel: FlavaMultimodalModel
    @Child("image_projection") public var imageProjection: Linear
    @Child("text_projection") public var textProjection: Linear
    @Child("image_to_mm_projection") public var imageToMMProjection: Linear
    @Child("text_to_mm_projection") public var textToMMProjection: Linear
    @Param("logit_scale") public var logitScale: Variable
    public let config: FlavaConfig

    public init(_ c: FlavaConfig, init ini: inout Initializer) {
        config = c
        super.init()
        textModel = FlavaTextModel(c.textConfig, init: &ini)
        imageModel = FlavaImageModel(c.imageConfig, init: &ini)
        multimodalModel = FlavaMultimodalModel(c.multimodalConfig, init: &ini)
        imageProjection = Linear(c.imageConfig.hiddenSize, c.projectionDim, init: &ini)
        textProjection = Linear(c.textConfig.hiddenSize, c.projectionDim, init: &ini)
        imageToMMProjection = Linear(c.imageConfig.hiddenSize, c.multimodalConfig.hiddenSize, init: &ini)
        textToMMProjection = Linear(c.textConfig.hiddenSize, c.multimodalConfig.hiddenSize, init: &ini)
        logitScale = Variable(Tensor(scalar: Float(c.logitScaleInitValue)), requiresGrad: true)
    }

    /// Runs the encoders for whatever is given; the multimodal encoder runs when both modalities are present
    /// and `skipMultimodalEncoder` is false. The text attention mask also masks text padding in the
    /// multimodal encoder.
    public func callAsFunction(pixelValues: Variable? = nil, inputIds: IntTensor? = nil,
                               attentionMask: IntTensor? = nil, tokenTypeIds: IntTensor? = nil,
                               boolMaskedPos: IntTensor? = nil, skipMultimodalEncoder: Bool = false,
                               interpolatePositions: Bool = false) -> FlavaModelOutput {
        let image = pixelValues.map { imageModel($0, boolMaskedPos: boolMaskedPos, interpolatePositions: interpolatePositions) }
        let text = inputIds.map { textModel($0, attentionMask: attentionMask, tokenTypeIds: tokenTypeIds) }
        var mm: FlavaEncoderOutput? = nil
        if let image, let text, !skipMultimodalEncoder {
            precondition(image.lastHiddenState.shape[0] == text.lastHiddenState.shape[0],
                         "\(image.lastHiddenState.shape[0]) images but \(text.lastHiddenState.shape[0]) texts")
            let imageMM = imageToMMProjection(image.lastLayerOutput)                    // [B, 1+N, Hm]
            let textMM = textToMMProjection(text.lastLayerOutput)                       // [B, L, Hm]
            let joint = concat([imageMM, textMM], axis: 1)                              // [B, 1+N+L, Hm]
            var mask: IntTensor? = nil
            if let am = attentionMask {
                let (b, n1, l) = (am.shape[0], imageMM.shape[1], am.shape[1])
                var values: [Int] = []
                values.reserveCapacity(b * (1 + n1 + l))
                for i in 0..<b { values += Array(repeating: 1, count: 1 + n1) + am.values[(i * l)..<((i + 1) * l)] }
                mask = IntTensor(shape: [b, 1 + n1 + l], values)                        // [B, 1 + (1+N) + L]
            }
            mm = multimodalModel(joint, attentionMask: mask)
        }
        return FlavaModelOutput(image: image, text: text, multimodal: mm)
    }

    /// image_projection of every token of the image encoder's output (HF `get_image_features`) [B, 1+N, P].
    public func imageFeatures(_ pixels: Variable, interpolatePositions: Bool = false) -> Variable {
        imageProjection(imageModel(pixels, interpolatePositions: interpolatePositions).lastHiddenState)
    }

    /// text_projection of every token of the text encoder's output (HF `get_text_features`) [B, L, P].
    public func textFeatures(_ ids: IntTensor, attentionMask: IntTensor? = nil) -> Variable {
        textProjection(textModel(ids, attentionMask: attentionMask).lastHiddenState)
    }

    /// The L2-normalized projected [CLS] embedding used for zero-shot retrieval [B, P].
    public func imageEmbedding(_ pixels: Variable, interpolatePositions: Bool = false) -> Variable {
        l2Normalize(imageProjection(firstToken(imageModel(pixels, interpolatePositions: interpolatePositions).lastHiddenState)))
    }

    /// The L2-normalized projected [CLS] text embedding [B, P].
    public func textEmbedding(_ ids: IntTensor, attentionMask: IntTensor? = nil) -> Variable {
        l2Normalize(textProjection(firstToken(textModel(ids, attentionMask: attentionMask).lastHiddenState)))
    }
}
