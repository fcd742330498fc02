// Model sizes used by the pretraining command and the benchmarks.
import FlavaModel

/// Named FLAVA configurations.
public enum FlavaTrainingPresets {
    /// A small FLAVA for the synthetic world: hidden 128, 4 heads, MLP 256; 64-pixel images in 8-pixel
    /// patches (8×8 = 64 patches); image 3 layers, text 3 layers, multimodal 2 layers; projection 128;
    /// a 512-code visual vocabulary.
    public static func smallConfig(vocabSize: Int) -> FlavaConfig {
        var c = FlavaConfig()
        for h in [128] {
            c.hiddenSize = h
            c.imageConfig.hiddenSize = h; c.textConfig.hiddenSize = h; c.multimodalConfig.hiddenSize = h
        }
        c.imageConfig.numAttentionHeads = 4; c.textConfig.numAttentionHeads = 4; c.multimodalConfig.numAttentionHeads = 4
        c.imageConfig.intermediateSize = 256; c.textConfig.intermediateSize = 256; c.multimodalConfig.intermediateSize = 256
        c.imageConfig.numHiddenLayers = 3; c.textConfig.numHiddenLayers = 3; c.multimodalConfig.numHiddenLayers = 2
        c.imageConfig.imageSize = 64; c.imageConfig.patchSize = 8; c.imageConfig.vocabSize = 512
        c.textConfig.vocabSize = vocabSize; c.textConfig.maxPositionEmbeddings = 40
        c.projectionDim = 128
        c.imageCodebookConfig.vocabSize = 512; c.imageCodebookConfig.hiddenSize = 16; c.imageCodebookConfig.numBlocksPerGroup = 1
        return c
    }
}

extension FlavaTrainingPresets {
    /// A tiny FLAVA for tests and smoke runs: hidden 32, 2 heads, one layer per encoder, 32-pixel images in
    /// 8-pixel patches, a 64-code visual vocabulary.
    public static func tinyConfig(vocabSize: Int) -> FlavaConfig {
        var c = smallConfig(vocabSize: vocabSize)
        c.hiddenSize = 32
        for h in [32] { c.imageConfig.hiddenSize = h; c.textConfig.hiddenSize = h; c.multimodalConfig.hiddenSize = h }
        c.imageConfig.numAttentionHeads = 2; c.textConfig.numAttentionHeads = 2; c.multimodalConfig.numAttentionHeads = 2
        c.imageConfig.intermediateSize = 64; c.textConfig.intermediateSize = 64; c.multimodalConfig.intermediateSize = 64
        c.imageConfig.numHiddenLayers = 1; c.textConfig.numHiddenLayers = 1; c.multimodalConfig.numHiddenLayers = 1
        c.imageConfig.imageSize = 32; c.imageConfig.vocabSize = 64
        c.projectionDim = 32
        c.imageCodebookConfig.vocabSize = 64; c.imageCodebookConfig.hiddenSize = 4
        return c
    }

    /// A preset by name ("small" or "tiny").
    public static func config(named name: String, vocabSize: Int) -> FlavaConfig? {
        switch name {
        case "small": return smallConfig(vocabSize: vocabSize)
        case "tiny": return tinyConfig(vocabSize: vocabSize)
        default: return nil
        }
    }
}
