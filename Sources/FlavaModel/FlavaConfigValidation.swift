// What a FLAVA config.json may say before a model is built from it (DESIGN §3.11): each field's type and
// range, the divisibility the attention needs, the agreement between sections, the model's size against this
// machine's memory, and — before any weights are allocated — the agreement between the config and the
// tensors of the checkpoint beside it. `FlavaConfig.load` and `FlavaCheckpoint` run these checks; a Swift
// program that builds a config by hand can call `validate()` itself.
import Foundation
import FlavaTensor
import FlavaNN

/// Bounds on single fields: far above any published model, low enough that nothing built from them hangs or
/// overflows (the whole model is bounded again by memory, below).
enum FlavaConfigBounds {
    static let hidden = 1...65_536
    static let heads = 1...1_024
    static let layers = 0...1_024
    static let intermediate = 1...1_048_576
    static let vocabulary = 1...4_194_304
    static let positions = 1...65_536
    static let tokenTypes = 1...1_024
    static let imageSide = 1...16_384
}

/// The fields every transformer section (image, text, multimodal) has.
protocol FlavaTransformerSection {
    var hiddenSize: Int { get }
    var numHiddenLayers: Int { get }
    var numAttentionHeads: Int { get }
    var intermediateSize: Int { get }
    var hiddenAct: String { get }
    var hiddenDropoutProb: Double { get }
    var attentionProbsDropoutProb: Double { get }
    var initializerRange: Double { get }
    var layerNormEps: Double { get }
}
extension FlavaImageConfig: FlavaTransformerSection {}
extension FlavaTextConfig: FlavaTransformerSection {}
extension FlavaMultimodalConfig: FlavaTransformerSection {}

extension FlavaTransformerSection {
    /// The checks every transformer section shares.
    func validateTransformer(_ k: ConfigChecker) throws {
        try k.int("hidden_size", hiddenSize, in: FlavaConfigBounds.hidden)
        try k.int("num_hidden_layers", numHiddenLayers, in: FlavaConfigBounds.layers)
        try k.int("num_attention_heads", numAttentionHeads, in: FlavaConfigBounds.heads)
        try k.require(hiddenSize % numAttentionHeads == 0, "hidden_size", hiddenSize, "must be a multiple of num_attention_heads (\(numAttentionHeads))")
        try k.int("intermediate_size", intermediateSize, in: FlavaConfigBounds.intermediate)
        try k.oneOf("hidden_act", hiddenAct, ["gelu"], "the activation this implementation computes")
        try k.number("hidden_dropout_prob", hiddenDropoutProb, in: 0...0.999)
        try k.number("attention_probs_dropout_prob", attentionProbsDropoutProb, in: 0...0.999)
        try k.number("initializer_range", initializerRange, in: 0...10)
        try k.number("layer_norm_eps", layerNormEps, in: 0...1, aboveLower: true)
    }
}

/// Exact parameter counts of the modules, from the sizes alone (tested against the built modules).
enum FlavaParameterCount {
    static func linear(_ i: Int, _ o: Int, bias: Bool = true) -> Int { i * o + (bias ? o : 0) }
    static func layer(_ s: FlavaLayerSizes) -> Int {
        let h = s.hiddenSize, m = s.intermediateSize
        return 3 * linear(h, h, bias: s.qkvBias) + linear(h, h) + linear(h, m) + linear(m, h) + 4 * h
    }
    /// Encoder layers + final layernorm + pooler.
    static func trunk(_ s: FlavaLayerSizes, layers: Int) -> Int {
        layers * layer(s) + 2 * s.hiddenSize + linear(s.hiddenSize, s.hiddenSize)
    }
    static func maskedPredictionHead(hidden: Int, vocab: Int) -> Int { linear(hidden, hidden) + 2 * hidden + vocab * hidden + vocab }
}

extension FlavaImageConfig {
    /// Checks every field; errors name `file` and the field under `section`.
    public func validate(_ k: ConfigChecker) throws {
        try validateTransformer(k)
        try k.int("image_size", imageSize, in: FlavaConfigBounds.imageSide)
        try k.int("patch_size", patchSize, in: 1...imageSize)
        try k.require(numChannels == 3, "num_channels", numChannels, "must be 3 (images are decoded to RGB)")
        try k.int("vocab_size", vocabSize, in: FlavaConfigBounds.vocabulary)
    }

    /// Parameters of FlavaImageModel built from this config.
    public var parameterCount: Int {
        let h = hiddenSize, n = patchesPerSide * patchesPerSide
        let embeddings = h * (maskToken ? 2 : 1) + numChannels * h * patchSize * patchSize + h + (n + 1) * h
        return embeddings + FlavaParameterCount.trunk(layerSizes, layers: numHiddenLayers)
    }
}

extension FlavaTextConfig {
    /// Checks every field; errors name `file` and the field under `section`.
    public func validate(_ k: ConfigChecker) throws {
        try validateTransformer(k)
        try k.int("vocab_size", vocabSize, in: FlavaConfigBounds.vocabulary)
        try k.int("type_vocab_size", typeVocabSize, in: FlavaConfigBounds.tokenTypes)
        // At least room for [CLS] and [SEP].
        try k.int("max_position_embeddings", maxPositionEmbeddings, in: 2...FlavaConfigBounds.positions.upperBound)
        try k.oneOf("position_embedding_type", positionEmbeddingType, ["absolute"], "the only kind implemented")
        try k.int("pad_token_id", padTokenId, in: 0...(vocabSize - 1))
    }

    /// Parameters of FlavaTextModel built from this config.
    public var parameterCount: Int {
        let h = hiddenSize
        let embeddings = (vocabSize + maxPositionEmbeddings + typeVocabSize) * h + 2 * h
        return embeddings + FlavaParameterCount.trunk(layerSizes, layers: numHiddenLayers)
    }
}

extension FlavaMultimodalConfig {
    /// Checks every field; errors name `file` and the field under `section`.
    public func validate(_ k: ConfigChecker) throws {
        try validateTransformer(k)
    }

    /// Parameters of FlavaMultimodalModel built from this config.
    public var parameterCount: Int {
        (useClsToken ? hiddenSize : 0) + FlavaParameterCount.trunk(layerSizes, layers: numHiddenLayers)
    }
}

extension FlavaImageCodebookConfig {
    /// The largest vocabulary a codebook config may have.
    public static let maximumVocabulary = FlavaConfigBounds.vocabulary.upperBound

    /// Checks every field; errors name `file` and the field under `section`.
    public func validate(_ k: ConfigChecker) throws {
        try k.int("num_groups", numGroups, in: 1...64)
        try k.require(inputChannels == 3, "input_channels", inputChannels, "must be 3 (images are decoded to RGB)")
        try k.int("num_blocks_per_group", numBlocksPerGroup, in: 1...64)
        // Each residual path is a quarter of its block's width, so a hidden size under 4 has empty paths.
        try k.int("hidden_size", hiddenSize, in: 4...8_192)
        try k.int("vocab_size", vocabSize, in: FlavaConfigBounds.vocabulary)
        try k.number("initializer_range", initializerRange, in: 0...10)
    }

    /// Parameters of FlavaImageCodebook built from this config.
    public var parameterCount: Int {
        func conv(_ i: Int, _ o: Int, _ kernel: Int) -> Int { i * o * kernel * kernel + o }
        func block(_ i: Int, _ o: Int) -> Int {
            let m = o / 4
            return (i != o ? conv(i, o, 1) : 0) + conv(i, m, 3) + 2 * conv(m, m, 3) + conv(m, o, 1)
        }
        func group(_ i: Int, _ o: Int) -> Int { block(i, o) + (numBlocksPerGroup - 1) * block(o, o) }
        let h = hiddenSize
        return conv(inputChannels, h, 7) + group(h, h) + group(h, 2 * h) + group(2 * h, 4 * h) + group(4 * h, 8 * h)
            + conv(8 * h, vocabSize, 1)
    }
}

extension FlavaConfig {
    /// Checks every section and the agreement between them, then the size of the whole model against this
    /// machine's memory. Errors name `file` and the offending field.
    public func validate(file: String = "config.json") throws {
        let k = ConfigChecker(file: file)
        try imageConfig.validate(k.nested("image_config"))
        try textConfig.validate(k.nested("text_config"))
        try multimodalConfig.validate(k.nested("multimodal_config"))
        try imageCodebookConfig.validate(k.nested("image_codebook_config"))
        try k.int("hidden_size", hiddenSize, in: FlavaConfigBounds.hidden)
        // The ITM head pools the multimodal encoder's output with a `hidden_size` pooler (as in transformers).
        try k.require(hiddenSize == multimodalConfig.hiddenSize, "hidden_size", hiddenSize,
                      "must equal multimodal_config.hidden_size (\(multimodalConfig.hiddenSize)): the ITM head reads the multimodal encoder")
        try k.int("projection_dim", projectionDim, in: FlavaConfigBounds.hidden)
        try k.number("layer_norm_eps", layerNormEps, in: 0...1, aboveLower: true)
        try k.number("logit_scale_init_value", logitScaleInitValue, in: -100...100)
        try k.number("initializer_range", initializerRange, in: 0...10)
        for (name, w) in [("mim_weight", mimWeight), ("mlm_weight", mlmWeight), ("global_contrastive_weight", globalContrastiveWeight),
                          ("itm_weight", itmWeight), ("mmm_image_weight", mmmImageWeight), ("mmm_text_weight", mmmTextWeight)] {
            try k.number(name, w, in: 0...1e6)
        }
        let bytes = Double(parameterCount) * 4
        let memory = Double(ResourceLimits.physicalMemory)
        guard bytes <= memory else {
            throw ConfigError(file, "describes a model of \(parameterCount) parameters (\(ResourceLimits.bytes(bytes)) in float32), "
                              + "more than this machine's memory (\(ResourceLimits.bytes(memory)))")
        }
        // The image's token count is fixed by the config (texts are cut to their input length): one image's
        // attention probabilities [heads, n, n] must fit in half the memory, or every forward pass would fail.
        let imageTokens = Double(imageConfig.patchesPerSide * imageConfig.patchesPerSide + 1)
        let multimodalTokens = imageTokens + 1 + Double(min(77, textConfig.maxPositionEmbeddings))
        for (section, heads, tokens) in [("image_config", imageConfig.numAttentionHeads, imageTokens),
                                         ("multimodal_config", multimodalConfig.numAttentionHeads, multimodalTokens)] {
            let attention = Double(heads) * tokens * tokens * 4
            guard attention <= memory / 2 else {
                throw ConfigError(file, "\(section): one image makes \(Int(tokens)) tokens (image_size \(imageConfig.imageSize) / "
                                  + "patch_size \(imageConfig.patchSize)), whose attention (\(ResourceLimits.bytes(attention))) "
                                  + "would not fit in this machine's memory (\(ResourceLimits.bytes(memory)))")
            }
        }
    }

    /// Parameters of FlavaModel (the three encoders, the projections and the logit scale).
    public var modelParameterCount: Int {
        let hi = imageConfig.hiddenSize, ht = textConfig.hiddenSize, hm = multimodalConfig.hiddenSize
        return imageConfig.parameterCount + textConfig.parameterCount + multimodalConfig.parameterCount
            + FlavaParameterCount.linear(hi, projectionDim) + FlavaParameterCount.linear(ht, projectionDim)
            + FlavaParameterCount.linear(hi, hm) + FlavaParameterCount.linear(ht, hm) + 1
    }

    /// Parameters of FlavaForPreTraining (FlavaModel, the five heads and, with `init_codebook`, the codebook).
    public var parameterCount: Int {
        let ic = imageConfig, tc = textConfig, hm = multimodalConfig.hiddenSize
        let heads = FlavaParameterCount.maskedPredictionHead(hidden: ic.hiddenSize, vocab: ic.vocabSize)
            + FlavaParameterCount.maskedPredictionHead(hidden: tc.hiddenSize, vocab: tc.vocabSize)
            + FlavaParameterCount.maskedPredictionHead(hidden: hm, vocab: ic.vocabSize)
            + FlavaParameterCount.maskedPredictionHead(hidden: hm, vocab: tc.vocabSize)
            + FlavaParameterCount.linear(hiddenSize, hiddenSize) + FlavaParameterCount.linear(hiddenSize, 2)
        return modelParameterCount + heads + (initCodebook ? imageCodebookConfig.parameterCount : 0)
    }

    /// Checks, from the checkpoint's header alone, that each encoder's tensors hold as many values as this
    /// config's encoder has parameters — so a config that does not belong to the weights (say hidden size
    /// 8192 beside 768-wide tensors) is refused before the model it describes is allocated. `prefix` is the
    /// FlavaModel's key prefix ("flava." in the FlavaForPreTraining layout, "" in the FlavaModel layout).
    public func checkAgainst(_ source: TensorSource, prefix: String, configFile: String) throws {
        var held: [String: Int] = [:]
        for key in source.keys where !key.hasSuffix("position_ids") {
            guard let info = source.info(key) else { continue }
            for part in ["image_model.", "text_model.", "multimodal_model."] where key.hasPrefix(prefix + part) {
                held[part, default: 0] += info.shape.reduce(1, *)
            }
            if key.hasPrefix("image_codebook.") || (prefix.isEmpty && key.hasPrefix("blocks.")) {
                held["image_codebook.", default: 0] += info.shape.reduce(1, *)
            }
        }
        let expected: [(part: String, section: String, count: Int)] = [
            ("image_model.", "image_config", imageConfig.parameterCount),
            ("text_model.", "text_config", textConfig.parameterCount),
            ("multimodal_model.", "multimodal_config", multimodalConfig.parameterCount),
            ("image_codebook.", "image_codebook_config", imageCodebookConfig.parameterCount),
        ]
        for e in expected {
            guard let n = held[e.part], n != e.count else { continue }
            let keys = e.part == "image_codebook." ? e.part : prefix + e.part
            throw CheckpointError(source.sourcePath, "its \(keys)* tensors hold \(n) values, but \(configFile)'s \(e.section) "
                                  + "describes \(e.count) parameters: the config and the weights do not belong together")
        }
    }
}
