// The dVAE decoder that mirrors FlavaImageCodebook the way DALL-E's Decoder mirrors its Encoder
// (openai/DALL-E dall_e/decoder.py): a 1×1 convolution from the (relaxed one-hot) codes, four groups of
// residual blocks with 2× nearest upsampling after the first three, and an output convolution giving, per
// pixel and channel, a logit-Laplace μ and ln b (or the pixel itself for MSE). Only used to train our own
// visual tokenizer; Hugging Face has no decoder, so its keys follow the encoder's naming.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN

/// Decoder settings (saved as `decoder_config.json` beside the codebook).
public struct DVAEDecoderConfig: Codable, Sendable, Equatable {
    public var vocabSize = 8192
    public var hiddenSize = 256
    public var initSize = 128
    public var numBlocksPerGroup = 2
    public var outputChannels = 3
    /// "logit_laplace" (μ and ln b per channel, as DALL-E) or "mse" (the pixel).
    public var reconstruction = "logit_laplace"
    /// Residual-branch gain of every block; nil: DALL-E's 1 / (4 · blocks per group)².
    public var postGain: Double? = nil

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", initSize = "init_size"
        case numBlocksPerGroup = "num_blocks_per_group", outputChannels = "output_channels", reconstruction, postGain = "post_gain"
    }

    public init(vocabSize: Int = 8192, hiddenSize: Int = 256, initSize: Int = 128, numBlocksPerGroup: Int = 2,
                reconstruction: String = "logit_laplace") {
        self.vocabSize = vocabSize; self.hiddenSize = hiddenSize; self.initSize = initSize
        self.numBlocksPerGroup = numBlocksPerGroup; self.reconstruction = reconstruction
    }

    public init(from d: Decoder) throws {
        let c = try d.container(keyedBy: CodingKeys.self)
        vocabSize = try c.value(.vocabSize, vocabSize); hiddenSize = try c.value(.hiddenSize, hiddenSize)
        initSize = try c.value(.initSize, initSize); numBlocksPerGroup = try c.value(.numBlocksPerGroup, numBlocksPerGroup)
        outputChannels = try c.value(.outputChannels, outputChannels); reconstruction = try c.value(.reconstruction, reconstruction)
        postGain = try c.decodeIfPresent(Double.self, forKey: .postGain)
    }

    /// Checks every field; errors name the file and the field under the checker's section.
    public func validate(_ k: ConfigChecker) throws {
        try k.int("vocab_size", vocabSize, in: 1...FlavaImageCodebookConfig.maximumVocabulary)
        // Each residual path is a quarter of its block's width.
        try k.int("hidden_size", hiddenSize, in: 4...8_192)
        try k.int("init_size", initSize, in: 1...65_536)
        try k.int("num_blocks_per_group", numBlocksPerGroup, in: 1...64)
        try k.require(outputChannels == 3, "output_channels", outputChannels, "must be 3 (RGB)")
        try k.oneOf("reconstruction", reconstruction, ["logit_laplace", "mse"])
        if let g = postGain { try k.number("post_gain", g, in: 0...1_000) }
    }
}

/// DALL-E DecoderBlock: id_path(x) + post_gain · res_path(x); res_path = ReLU→1×1, ReLU→3×3, ReLU→3×3, ReLU→3×3.
public final class DVAEDecoderBlock: Module {
    @OptionalChild("id_path") public var idPath: Conv2d?
    @Child("res_path.path.conv_1") public var conv1: Conv2d
    @Child("res_path.path.conv_2") public var conv2: Conv2d
    @Child("res_path.path.conv_3") public var conv3: Conv2d
    @Child("res_path.path.conv_4") public var conv4: Conv2d
    public let postGain: Float

    public init(inSize: Int, outSize: Int, numLayers: Int, postGain gain: Double? = nil, init ini: inout Initializer) {
        postGain = gain.map(Float.init) ?? 1 / Float(numLayers * numLayers)
        super.init()
        let hid = max(1, outSize / 4)
        if inSize != outSize { idPath = Conv2d(inSize, outSize, kernelSize: 1, init: &ini) }
        conv1 = Conv2d(inSize, hid, kernelSize: 1, init: &ini)
        conv2 = Conv2d(hid, hid, kernelSize: 3, padding: 1, init: &ini)
        conv3 = Conv2d(hid, hid, kernelSize: 3, padding: 1, init: &ini)
        conv4 = Conv2d(hid, outSize, kernelSize: 3, padding: 1, init: &ini)
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        let r = conv4(relu(conv3(relu(conv2(relu(conv1(relu(x))))))))
        return (idPath.map { $0(x) } ?? x) + r * postGain
    }
}

/// A decoder group: blocks `group.block_1…`, then optional 2× nearest upsampling.
public final class DVAEDecoderGroup: Module {
    @ChildList("group.block_", first: 1, dotted: false) public var blocks: [DVAEDecoderBlock]
    public let upsample: Bool

    public init(numBlocks: Int, numLayers: Int, inSize: Int, outSize: Int, upsample: Bool, postGain: Double? = nil, init ini: inout Initializer) {
        self.upsample = upsample
        super.init()
        blocks = (0..<numBlocks).map { DVAEDecoderBlock(inSize: $0 == 0 ? inSize : outSize, outSize: outSize, numLayers: numLayers, postGain: postGain, init: &ini) }
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        var h = x
        for b in blocks { h = b(h) }
        return upsample ? upsampleNearest2x(h) : h
    }
}

/// The dVAE decoder: codes [B, V, h, w] (one-hot or relaxed) → [B, 2C (or C), 8h, 8w].
public final class DVAEDecoder: Module {
    @Child("blocks.input") public var input: Conv2d
    @Child("blocks.group_1") public var group1: DVAEDecoderGroup
    @Child("blocks.group_2") public var group2: DVAEDecoderGroup
    @Child("blocks.group_3") public var group3: DVAEDecoderGroup
    @Child("blocks.group_4") public var group4: DVAEDecoderGroup
    @Child("blocks.output.conv") public var output: Conv2d
    public let config: DVAEDecoderConfig

    public init(_ c: DVAEDecoderConfig, init ini: inout Initializer) {
        config = c
        super.init()
        let h = c.hiddenSize, n = c.numBlocksPerGroup, layers = 4 * n
        input = Conv2d(c.vocabSize, c.initSize, kernelSize: 1, init: &ini)
        group1 = DVAEDecoderGroup(numBlocks: n, numLayers: layers, inSize: c.initSize, outSize: 8 * h, upsample: true, postGain: c.postGain, init: &ini)
        group2 = DVAEDecoderGroup(numBlocks: n, numLayers: layers, inSize: 8 * h, outSize: 4 * h, upsample: true, postGain: c.postGain, init: &ini)
        group3 = DVAEDecoderGroup(numBlocks: n, numLayers: layers, inSize: 4 * h, outSize: 2 * h, upsample: true, postGain: c.postGain, init: &ini)
        group4 = DVAEDecoderGroup(numBlocks: n, numLayers: layers, inSize: 2 * h, outSize: h, upsample: false, postGain: c.postGain, init: &ini)
        output = Conv2d(h, (c.reconstruction == "mse" ? 1 : 2) * c.outputChannels, kernelSize: 1, init: &ini)
    }

    public func callAsFunction(_ codes: Variable) -> Variable {
        output(relu(group4(group3(group2(group1(input(codes)))))))
    }

    /// Images in [0, 1] [B, C, 8·side, 8·side] from token grids [B, side·side] (row-major), without gradients.
    public func decode(tokens: IntTensor, side: Int) -> Tensor {
        let (b, hw, v) = (tokens.shape[0], tokens.shape[1], config.vocabSize)
        precondition(hw == side * side, "token grid \(hw) is not \(side)×\(side)")
        let onehot = Tensor.zeros([b, v, side, side])
        let p = onehot.storage.pointer
        for i in 0..<b { for s in 0..<hw { p[(i * v + tokens.values[i * hw + s]) * hw + s] = 1 } }
        return reconstruction(withNoGrad { self(Variable(onehot)).value })
    }

    /// Pixels in [0, 1] [B, C, H, W] from the decoder output (logit-Laplace μ through the sigmoid, then the
    /// inverse of 0.8x + 0.1, clipped).
    public func reconstruction(_ out: Tensor) -> Tensor {
        let c = config.outputChannels
        let mu = config.reconstruction == "mse" ? out : ShapeKernel.slice(out, axis: 1, start: 0, end: c)
        return mu.map { v in
            let s = config.reconstruction == "mse" ? v : 1 / (1 + Foundation.exp(-v))
            return min(1, max(0, (s - 0.1) / 0.8))
        }
    }
}
