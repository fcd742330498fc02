// Mirrors transformers/models/flava/configuration_flava.py: FlavaImageConfig, FlavaTextConfig,
// FlavaMultimodalConfig, FlavaImageCodebookConfig and FlavaConfig. Field names are the JSON keys of a
// Hugging Face config.json; a missing key takes Hugging Face's default (FLAVA_REFERENCE.md §1), and the
// legacy `*_config_dict` keys are merged in as transformers does.
import Foundation
import FlavaTensor

/// FlavaImageConfig (`model_type` "flava_image_model").
public struct FlavaImageConfig: Codable, Sendable, Equatable {
    public var hiddenSize = 768, numHiddenLayers = 12, numAttentionHeads = 12, intermediateSize = 3072
    public var hiddenAct = "gelu"
    public var hiddenDropoutProb: Double = 0, attentionProbsDropoutProb: Double = 0
    public var initializerRange: Double = 0.02, layerNormEps: Double = 1e-12
    public var imageSize = 224, patchSize = 16, numChannels = 3
    public var qkvBias = true, maskToken = true
    public var vocabSize = 8192

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size", hiddenAct = "hidden_act", hiddenDropoutProb = "hidden_dropout_prob"
        case attentionProbsDropoutProb = "attention_probs_dropout_prob", initializerRange = "initializer_range"
        case layerNormEps = "layer_norm_eps", imageSize = "image_size", patchSize = "patch_size"
        case numChannels = "num_channels", qkvBias = "qkv_bias", maskToken = "mask_token", vocabSize = "vocab_size"
        case modelType = "model_type"
    }

    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.value(.hiddenSize, hiddenSize); numHiddenLayers = try c.value(.numHiddenLayers, numHiddenLayers)
        numAttentionHeads = try c.value(.numAttentionHeads, numAttentionHeads)
        intermediateSize = try c.value(.intermediateSize, intermediateSize); hiddenAct = try c.value(.hiddenAct, hiddenAct)
        hiddenDropoutProb = try c.value(.hiddenDropoutProb, hiddenDropoutProb)
        attentionProbsDropoutProb = try c.value(.attentionProbsDropoutProb, attentionProbsDropoutProb)
        initializerRange = try c.value(.initializerRange, initializerRange); layerNormEps = try c.value(.layerNormEps, layerNormEps)
        imageSize = try c.value(.imageSize, imageSize); patchSize = try c.value(.patchSize, patchSize)
        numChannels = try c.value(.numChannels, numChannels); qkvBias = try c.value(.qkvBias, qkvBias)
        maskToken = try c.value(.maskToken, maskToken); vocabSize = try c.value(.vocabSize, vocabSize)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hiddenSize, forKey: .hiddenSize); try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads); try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(hiddenAct, forKey: .hiddenAct); try c.encode(hiddenDropoutProb, forKey: .hiddenDropoutProb)
        try c.encode(attentionProbsDropoutProb, forKey: .attentionProbsDropoutProb)
        try c.encode(initializerRange, forKey: .initializerRange); try c.encode(layerNormEps, forKey: .layerNormEps)
        try c.encode(imageSize, forKey: .imageSize); try c.encode(patchSize, forKey: .patchSize)
        try c.encode(numChannels, forKey: .numChannels); try c.encode(qkvBias, forKey: .qkvBias)
        try c.encode(maskToken, forKey: .maskToken); try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode("flava_image_model", forKey: .modelType)
    }

    /// Sizes of each transformer layer.
    public var layerSizes: FlavaLayerSizes {
        FlavaLayerSizes(hiddenSize: hiddenSize, numAttentionHeads: numAttentionHeads, intermediateSize: intermediateSize,
                        layerNormEps: Float(layerNormEps), qkvBias: qkvBias)
    }
    /// Patches per side at the configured image size.
    public var patchesPerSide: Int { imageSize / patchSize }
}

/// FlavaTextConfig (`model_type` "flava_text_model").
public struct FlavaTextConfig: Codable, Sendable, Equatable {
    public var vocabSize = 30522, typeVocabSize = 2, maxPositionEmbeddings = 512
    public var positionEmbeddingType = "absolute"
    public var hiddenSize = 768, numHiddenLayers = 12, numAttentionHeads = 12, intermediateSize = 3072
    public var hiddenAct = "gelu"
    public var hiddenDropoutProb: Double = 0, attentionProbsDropoutProb: Double = 0
    public var initializerRange: Double = 0.02, layerNormEps: Double = 1e-12
    public var padTokenId = 0
    public var qkvBias = true

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", typeVocabSize = "type_vocab_size", maxPositionEmbeddings = "max_position_embeddings"
        case positionEmbeddingType = "position_embedding_type"
        case hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size", hiddenAct = "hidden_act", hiddenDropoutProb = "hidden_dropout_prob"
        case attentionProbsDropoutProb = "attention_probs_dropout_prob", initializerRange = "initializer_range"
        case layerNormEps = "layer_norm_eps", padTokenId = "pad_token_id", qkvBias = "qkv_bias", modelType = "model_type"
    }

    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.value(.vocabSize, vocabSize); typeVocabSize = try c.value(.typeVocabSize, typeVocabSize)
        maxPositionEmbeddings = try c.value(.maxPositionEmbeddings, maxPositionEmbeddings)
        positionEmbeddingType = try c.value(.positionEmbeddingType, positionEmbeddingType)
        hiddenSize = try c.value(.hiddenSize, hiddenSize); numHiddenLayers = try c.value(.numHiddenLayers, numHiddenLayers)
        numAttentionHeads = try c.value(.numAttentionHeads, numAttentionHeads)
        intermediateSize = try c.value(.intermediateSize, intermediateSize); hiddenAct = try c.value(.hiddenAct, hiddenAct)
        hiddenDropoutProb = try c.value(.hiddenDropoutProb, hiddenDropoutProb)
        attentionProbsDropoutProb = try c.value(.attentionProbsDropoutProb, attentionProbsDropoutProb)
        initializerRange = try c.value(.initializerRange, initializerRange); layerNormEps = try c.value(.layerNormEps, layerNormEps)
        padTokenId = try c.value(.padTokenId, padTokenId); qkvBias = try c.value(.qkvBias, qkvBias)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize); try c.encode(typeVocabSize, forKey: .typeVocabSize)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(positionEmbeddingType, forKey: .positionEmbeddingType)
        try c.encode(hiddenSize, forKey: .hiddenSize); try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads); try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(hiddenAct, forKey: .hiddenAct); try c.encode(hiddenDropoutProb, forKey: .hiddenDropoutProb)
        try c.encode(attentionProbsDropoutProb, forKey: .attentionProbsDropoutProb)
        try c.encode(initializerRange, forKey: .initializerRange); try c.encode(layerNormEps, forKey: .layerNormEps)
        try c.encode(padTokenId, forKey: .padTokenId); try c.encode(qkvBias, forKey: .qkvBias)
        try c.encode("flava_text_model", forKey: .modelType)
    }

    public var layerSizes: FlavaLayerSizes {
        FlavaLayerSizes(hiddenSize: hiddenSize, numAttentionHeads: numAttentionHeads, intermediateSize: intermediateSize,
                        layerNormEps: Float(layerNormEps), qkvBias: qkvBias)
    }
}

/// FlavaMultimodalConfig (`model_type` "flava_multimodal_model").
public struct FlavaMultimodalConfig: Codable, Sendable, Equatable {
    public var hiddenSize = 768, numHiddenLayers = 6, numAttentionHeads = 12, intermediateSize = 3072
    public var hiddenAct = "gelu"
    public var hiddenDropoutProb: Double = 0, attentionProbsDropoutProb: Double = 0
    public var initializerRange: Double = 0.02, layerNormEps: Double = 1e-12
    public var qkvBias = true, useClsToken = true

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size", hiddenAct = "hidden_act", hiddenDropoutProb = "hidden_dropout_prob"
        case attentionProbsDropoutProb = "attention_probs_dropout_prob", initializerRange = "initializer_range"
        case layerNormEps = "layer_norm_eps", qkvBias = "qkv_bias", useClsToken = "use_cls_token", modelType = "model_type"
    }

    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.value(.hiddenSize, hiddenSize); numHiddenLayers = try c.value(.numHiddenLayers, numHiddenLayers)
        numAttentionHeads = try c.value(.numAttentionHeads, numAttentionHeads)
        intermediateSize = try c.value(.intermediateSize, intermediateSize); hiddenAct = try c.value(.hiddenAct, hiddenAct)
        hiddenDropoutProb = try c.value(.hiddenDropoutProb, hiddenDropoutProb)
        attentionProbsDropoutProb = try c.value(.attentionProbsDropoutProb, attentionProbsDropoutProb)
        initializerRange = try c.value(.initializerRange, initializerRange); layerNormEps = try c.value(.layerNormEps, layerNormEps)
        qkvBias = try c.value(.qkvBias, qkvBias); useClsToken = try c.value(.useClsToken, useClsToken)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hiddenSize, forKey: .hiddenSize); try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads); try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(hiddenAct, forKey: .hiddenAct); try c.encode(hiddenDropoutProb, forKey: .hiddenDropoutProb)
        try c.encode(attentionProbsDropoutProb, forKey: .attentionProbsDropoutProb)
        try c.encode(initializerRange, forKey: .initializerRange); try c.encode(layerNormEps, forKey: .layerNormEps)
        try c.encode(qkvBias, forKey: .qkvBias); try c.encode(useClsToken, forKey: .useClsToken)
        try c.encode("flava_multimodal_model", forKey: .modelType)
    }

    public var layerSizes: FlavaLayerSizes {
        FlavaLayerSizes(hiddenSize: hiddenSize, numAttentionHeads: numAttentionHeads, intermediateSize: intermediateSize,
                        layerNormEps: Float(layerNormEps), qkvBias: qkvBias)
    }
}

/// FlavaImageCodebookConfig (`model_type` "flava_image_codebook"): the DALL-E dVAE encoder.
public struct FlavaImageCodebookConfig: Codable, Sendable, Equatable {
    public var numGroups = 4, inputChannels = 3, numBlocksPerGroup = 2, hiddenSize = 256, vocabSize = 8192
    public var freeze = true
    public var initializerRange: Double = 0.02

    enum CodingKeys: String, CodingKey {
        case numGroups = "num_groups", inputChannels = "input_channels", numBlocksPerGroup = "num_blocks_per_group"
        case hiddenSize = "hidden_size", vocabSize = "vocab_size", freeze, initializerRange = "initializer_range"
        case modelType = "model_type"
    }

    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        numGroups = try c.value(.numGroups, numGroups); inputChannels = try c.value(.inputChannels, inputChannels)
        numBlocksPerGroup = try c.value(.numBlocksPerGroup, numBlocksPerGroup); hiddenSize = try c.value(.hiddenSize, hiddenSize)
        vocabSize = try c.value(.vocabSize, vocabSize); freeze = try c.value(.freeze, freeze)
        initializerRange = try c.value(.initializerRange, initializerRange)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(numGroups, forKey: .numGroups); try c.encode(inputChannels, forKey: .inputChannels)
        try c.encode(numBlocksPerGroup, forKey: .numBlocksPerGroup); try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(vocabSize, forKey: .vocabSize); try c.encode(freeze, forKey: .freeze)
        try c.encode(initializerRange, forKey: .initializerRange); try c.encode("flava_image_codebook", forKey: .modelType)
    }
}

/// FlavaConfig (`model_type` "flava").
public struct FlavaConfig: Codable, Sendable, Equatable {
    public var imageConfig = FlavaImageConfig()
    public var textConfig = FlavaTextConfig()
    public var multimodalConfig = FlavaMultimodalConfig()
    public var imageCodebookConfig = FlavaImageCodebookConfig()
    public var hiddenSize = 768
    public var layerNormEps: Double = 1e-12
    public var projectionDim = 768
    public var initCodebook = true
    public var logitScaleInitValue: Double = 2.6592
    public var initializerRange: Double = 0.02
    public var ceIgnoreIndex = -100
    public var mimWeight: Double = 1, mlmWeight: Double = 1, globalContrastiveWeight: Double = 1, itmWeight: Double = 1
    public var mmmImageWeight: Double = 1, mmmTextWeight: Double = 1
    public var globalBackpropContrastive = true
    public var skipUnmaskedMultimodalEncoder = true
    public var returnLoss = true

    enum CodingKeys: String, CodingKey {
        case imageConfig = "image_config", textConfig = "text_config", multimodalConfig = "multimodal_config"
        case imageCodebookConfig = "image_codebook_config"
        case imageConfigDict = "image_config_dict", textConfigDict = "text_config_dict"
        case multimodalConfigDict = "multimodal_config_dict", imageCodebookConfigDict = "image_codebook_config_dict"
        case hiddenSize = "hidden_size", layerNormEps = "layer_norm_eps", projectionDim = "projection_dim"
        case initCodebook = "init_codebook", logitScaleInitValue = "logit_scale_init_value"
        case initializerRange = "initializer_range", ceIgnoreIndex = "ce_ignore_index"
        case mimWeight = "mim_weight", mlmWeight = "mlm_weight", globalContrastiveWeight = "global_contrastive_weight"
        case itmWeight = "itm_weight", mmmImageWeight = "mmm_image_weight", mmmTextWeight = "mmm_text_weight"
        case globalBackpropContrastive = "global_backprop_contrastive"
        case skipUnmaskedMultimodalEncoder = "skip_unmasked_multimodal_encoder", returnLoss = "return_loss"
        case modelType = "model_type", architectures
    }

    public init() {}

    /// Decodes a sub-config: `X_config` updated with the legacy `X_config_dict` (the dict wins, as in
    /// transformers, which logs a warning and takes its values).
    private static func sub<T: Decodable>(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys, _ legacy: CodingKeys,
                                          _ fallback: T) throws -> T {
        guard c.contains(key) || c.contains(legacy) else { return fallback }
        // Without a legacy dict the section decodes in place, so errors carry the field's full path.
        if try !c.contains(legacy) || c.decodeNil(forKey: legacy) {
            return try c.decodeNil(forKey: key) ? fallback : c.decode(T.self, forKey: key)
        }
        var merged: [String: JSONValue] = [:]
        // A null section is an empty one, as transformers reads it (`if text_config is None: text_config = {}`).
        if let base = try c.decodeIfPresent([String: JSONValue].self, forKey: key) { merged = base }
        if let dict = try c.decodeIfPresent([String: JSONValue].self, forKey: legacy) { merged.merge(dict) { _, new in new } }
        let data = try JSONEncoder().encode(merged)
        do { return try JSONDecoder().decode(T.self, from: data) }
        catch DecodingError.typeMismatch(let t, let ctx) {
            throw DecodingError.typeMismatch(t, .init(codingPath: c.codingPath + [key] + ctx.codingPath, debugDescription: ctx.debugDescription))
        } catch DecodingError.valueNotFound(let t, let ctx) {
            throw DecodingError.valueNotFound(t, .init(codingPath: c.codingPath + [key] + ctx.codingPath, debugDescription: ctx.debugDescription))
        } catch DecodingError.dataCorrupted(let ctx) {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [key] + ctx.codingPath, debugDescription: ctx.debugDescription))
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        imageConfig = try FlavaConfig.sub(c, .imageConfig, .imageConfigDict, imageConfig)
        textConfig = try FlavaConfig.sub(c, .textConfig, .textConfigDict, textConfig)
        multimodalConfig = try FlavaConfig.sub(c, .multimodalConfig, .multimodalConfigDict, multimodalConfig)
        imageCodebookConfig = try FlavaConfig.sub(c, .imageCodebookConfig, .imageCodebookConfigDict, imageCodebookConfig)
        hiddenSize = try c.value(.hiddenSize, hiddenSize); layerNormEps = try c.value(.layerNormEps, layerNormEps)
        projectionDim = try c.value(.projectionDim, projectionDim); initCodebook = try c.value(.initCodebook, initCodebook)
        logitScaleInitValue = try c.value(.logitScaleInitValue, logitScaleInitValue)
        initializerRange = try c.value(.initializerRange, initializerRange); ceIgnoreIndex = try c.value(.ceIgnoreIndex, ceIgnoreIndex)
        mimWeight = try c.value(.mimWeight, mimWeight); mlmWeight = try c.value(.mlmWeight, mlmWeight)
        globalContrastiveWeight = try c.value(.globalContrastiveWeight, globalContrastiveWeight)
        itmWeight = try c.value(.itmWeight, itmWeight); mmmImageWeight = try c.value(.mmmImageWeight, mmmImageWeight)
        mmmTextWeight = try c.value(.mmmTextWeight, mmmTextWeight)
        globalBackpropContrastive = try c.value(.globalBackpropContrastive, globalBackpropContrastive)
        skipUnmaskedMultimodalEncoder = try c.value(.skipUnmaskedMultimodalEncoder, skipUnmaskedMultimodalEncoder)
        returnLoss = try c.value(.returnLoss, returnLoss)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(["FlavaForPreTraining"], forKey: .architectures)
        try c.encode(imageConfig, forKey: .imageConfig); try c.encode(textConfig, forKey: .textConfig)
        try c.encode(multimodalConfig, forKey: .multimodalConfig); try c.encode(imageCodebookConfig, forKey: .imageCodebookConfig)
        try c.encode(hiddenSize, forKey: .hiddenSize); try c.encode(layerNormEps, forKey: .layerNormEps)
        try c.encode(projectionDim, forKey: .projectionDim); try c.encode(initCodebook, forKey: .initCodebook)
        try c.encode(logitScaleInitValue, forKey: .logitScaleInitValue); try c.encode(initializerRange, forKey: .initializerRange)
        try c.encode(ceIgnoreIndex, forKey: .ceIgnoreIndex)
        try c.encode(mimWeight, forKey: .mimWeight); try c.encode(mlmWeight, forKey: .mlmWeight)
        try c.encode(globalContrastiveWeight, forKey: .globalContrastiveWeight); try c.encode(itmWeight, forKey: .itmWeight)
        try c.encode(mmmImageWeight, forKey: .mmmImageWeight); try c.encode(mmmTextWeight, forKey: .mmmTextWeight)
        try c.encode(globalBackpropContrastive, forKey: .globalBackpropContrastive)
        try c.encode(skipUnmaskedMultimodalEncoder, forKey: .skipUnmaskedMultimodalEncoder)
        try c.encode(returnLoss, forKey: .returnLoss); try c.encode("flava", forKey: .modelType)
    }

    /// Reads a Hugging Face `config.json` and validates it (`validate(file:)`).
    public static func load(_ path: String) throws -> FlavaConfig {
        let config = try ConfigError.decode(FlavaConfig.self, fromFile: path)
        try config.validate(file: path)
        return config
    }

    /// Writes `config.json` (pretty-printed, keys sorted) atomically.
    public func save(_ path: String) throws { try ConfigJSON.write(self, to: path) }
}

/// Any JSON value, to merge legacy config dictionaries without knowing their fields.
public enum JSONValue: Codable, Sendable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): if n == n.rounded() && abs(n) < 1e15 { try c.encode(Int(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

extension JSONValue {
    /// `self` with `patch` laid over it: objects merge key by key (recursively), anything else is replaced.
    public func overlaid(with patch: JSONValue) -> JSONValue {
        guard case .object(var base) = self, case .object(let top) = patch else { return patch }
        for (k, v) in top { base[k] = base[k].map { $0.overlaid(with: v) } ?? v }
        return .object(base)
    }

    /// `base`'s JSON form with `patch` laid over it (`overlaid`), as JSON bytes to decode.
    public static func overlaying<T: Encodable>(_ patch: JSONValue, on base: T) throws -> Data {
        try JSONEncoder().encode(JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(base)).overlaid(with: patch))
    }
}

extension KeyedDecodingContainer {
    /// The section at `key` laid over `base`: the fields it gives replace base's, the ones it leaves out keep
    /// base's (nested sections likewise), so a partial section means "these changes to the default" rather than
    /// the type's own defaults. Absent: `base`. Errors name the field with the section's path in front.
    public func overlay<T: Codable>(_ key: Key, on base: T) throws -> T {
        guard contains(key) else { return base }
        let merged = try JSONValue.overlaying(try value(key, JSONValue.null), on: base)
        do { return try JSONDecoder().decode(T.self, from: merged) }
        catch let DecodingError.dataCorrupted(ctx) {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [key] + ctx.codingPath, debugDescription: ctx.debugDescription))
        } catch let DecodingError.typeMismatch(t, ctx) {
            throw DecodingError.typeMismatch(t, .init(codingPath: codingPath + [key] + ctx.codingPath, debugDescription: ctx.debugDescription))
        } catch let DecodingError.valueNotFound(t, ctx) {
            throw DecodingError.valueNotFound(t, .init(codingPath: codingPath + [key] + ctx.codingPath, debugDescription: ctx.debugDescription))
        } catch let DecodingError.keyNotFound(k, ctx) {
            throw DecodingError.keyNotFound(k, .init(codingPath: codingPath + [key] + ctx.codingPath, debugDescription: ctx.debugDescription))
        } catch let e as DecodingError { throw e }
        catch {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [key], debugDescription: "not a valid \(T.self) (\(error))"))
        }
    }
}

/// Writing Hugging Face config files. transformers validates float fields strictly (`mim_weight: 1` is
/// refused, `1.0` accepted) while JSONEncoder writes an integral Double as `1`; the float fields are known by
/// name, so their integral values get their `.0` back.
public enum ConfigJSON {
    /// Every float-typed field of the FLAVA configs.
    static let floatKeys = ["layer_norm_eps", "initializer_range", "initializer_factor", "logit_scale_init_value",
                            "hidden_dropout_prob", "attention_probs_dropout_prob", "mim_weight", "mlm_weight",
                            "global_contrastive_weight", "itm_weight", "mmm_image_weight", "mmm_text_weight"]

    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        var text = String(decoding: try enc.encode(value), as: UTF8.self)
        let pattern = "(\"(?:" + floatKeys.joined(separator: "|") + ")\"\\s*:\\s*)(-?\\d+)(\\s*[,\\n}])"
        let re = try NSRegularExpression(pattern: pattern)
        text = re.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "$1$2.0$3")
        return Data(text.utf8)
    }

    /// Writes atomically.
    public static func write<T: Encodable>(_ value: T, to path: String) throws {
        try encode(value).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
