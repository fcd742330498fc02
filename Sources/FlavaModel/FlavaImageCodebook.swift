// Mirrors FlavaImageCodebook, FlavaImageCodebookLayerGroup, FlavaImageCodebookBlock and
// FlavaImageCodebookResPath (modeling_flava.py): the DALL-E dVAE encoder that turns an image into a grid of
// visual tokens (one per 8×8 pixels), the targets of MIM and MMM-image (FLAVA_REFERENCE.md §4).
import FlavaTensor
import FlavaAutograd
import FlavaNN

/// FlavaImageCodebookResPath: (ReLU → conv) × 4 with 3×3, 3×3, 3×3, 1×1 kernels.
public final class FlavaImageCodebookResPath: Module {
    @Child("path.conv_1") public var conv1: Conv2d
    @Child("path.conv_2") public var conv2: Conv2d
    @Child("path.conv_3") public var conv3: Conv2d
    @Child("path.conv_4") public var conv4: Conv2d

    public init(inSize: Int, hiddenSize: Int, outSize: Int, init ini: inout Initializer) {
        super.init()
        conv1 = Conv2d(inSize, hiddenSize, kernelSize: 3, padding: 1, init: &ini)
        conv2 = Conv2d(hiddenSize, hiddenSize, kernelSize: 3, padding: 1, init: &ini)
        conv3 = Conv2d(hiddenSize, hiddenSize, kernelSize: 3, padding: 1, init: &ini)
        conv4 = Conv2d(hiddenSize, outSize, kernelSize: 1, init: &ini)
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        conv4(relu(conv3(relu(conv2(relu(conv1(relu(x))))))))
    }
}

/// FlavaImageCodebookBlock: id_path(x) + post_gain · res_path(x), post_gain = 1/num_layers².
public final class FlavaImageCodebookBlock: Module {
    @OptionalChild("id_path") public var idPath: Conv2d?
    @Child("res_path") public var resPath: FlavaImageCodebookResPath
    public let postGain: Float

    public init(inSize: Int, outSize: Int, numLayers: Int, init ini: inout Initializer) {
        postGain = 1 / Float(numLayers * numLayers)
        super.init()
        if inSize != outSize { idPath = Conv2d(inSize, outSize, kernelSize: 1, init: &ini) }
        resPath = FlavaImageCodebookResPath(inSize: inSize, hiddenSize: outSize / 4, outSize: outSize, init: &ini)
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        (idPath.map { $0(x) } ?? x) + resPath(x) * postGain
    }
}

/// FlavaImageCodebookLayerGroup: blocks `group.block_1…`, then an optional 2×2 max pool.
public final class FlavaImageCodebookLayerGroup: Module {
    @ChildList("group.block_", first: 1, dotted: false) public var blocks: [FlavaImageCodebookBlock]
    public let usePool: Bool

    public init(numBlocks: Int, numLayers: Int, inSize: Int, outSize: Int, usePool: Bool, init ini: inout Initializer) {
        self.usePool = usePool
        super.init()
        blocks = (0..<numBlocks).map { i in
            FlavaImageCodebookBlock(inSize: i == 0 ? inSize : outSize, outSize: outSize, numLayers: numLayers, init: &ini)
        }
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        var h = x
        for b in blocks { h = b(h) }
        return usePool ? maxPool2x2(h) : h
    }
}

/// FlavaImageCodebook: pixels mapped to [0.1, 0.9] (0.8x + 0.1), [B, C, H, W] → logits [B, V, H/8, W/8].
public final class FlavaImageCodebook: Module {
    @Child("blocks.input") public var input: Conv2d
    @Child("blocks.group_1") public var group1: FlavaImageCodebookLayerGroup
    @Child("blocks.group_2") public var group2: FlavaImageCodebookLayerGroup
    @Child("blocks.group_3") public var group3: FlavaImageCodebookLayerGroup
    @Child("blocks.group_4") public var group4: FlavaImageCodebookLayerGroup
    @Child("blocks.output.conv") public var output: Conv2d
    public let config: FlavaImageCodebookConfig

    /// `trainable` overrides the config's `freeze` (HF freezes the codebook inside FlavaForPreTraining).
    public init(_ c: FlavaImageCodebookConfig, trainable: Bool? = nil, init ini: inout Initializer) {
        config = c
        super.init()
        let h = c.hiddenSize, layers = c.numGroups * c.numBlocksPerGroup, n = c.numBlocksPerGroup
        input = Conv2d(c.inputChannels, h, kernelSize: 7, padding: 3, init: &ini)
        group1 = FlavaImageCodebookLayerGroup(numBlocks: n, numLayers: layers, inSize: h, outSize: h, usePool: true, init: &ini)
        group2 = FlavaImageCodebookLayerGroup(numBlocks: n, numLayers: layers, inSize: h, outSize: 2 * h, usePool: true, init: &ini)
        group3 = FlavaImageCodebookLayerGroup(numBlocks: n, numLayers: layers, inSize: 2 * h, outSize: 4 * h, usePool: true, init: &ini)
        group4 = FlavaImageCodebookLayerGroup(numBlocks: n, numLayers: layers, inSize: 4 * h, outSize: 8 * h, usePool: false, init: &ini)
        output = Conv2d(8 * h, c.vocabSize, kernelSize: 1, init: &ini)
        if !(trainable ?? !c.freeze) {
            for (_, p) in namedParameters() { p.freeze() }
        }
    }

    /// z_logits [B, V, H/8, W/8].
    public func callAsFunction(_ pixels: Variable) -> Variable {
        precondition(pixels.shape.count == 4, "codebook input must be [B, C, H, W], got \(pixels.shape)")
        precondition(pixels.shape[1] == config.inputChannels, "codebook expects \(config.inputChannels) channels, got \(pixels.shape[1])")
        precondition(pixels.shape[2] % 8 == 0 && pixels.shape[3] % 8 == 0, "codebook input size must be a multiple of 8, got \(pixels.shape[2])×\(pixels.shape[3])")
        return output(features(pixels))
    }

    /// The trunk's output before the vocabulary projection: ReLU(group_4(…)) [B, 8·hidden, H/8, W/8].
    public func features(_ pixels: Variable) -> Variable {
        relu(group4(group3(group2(group1(input(pixels))))))
    }

    /// argmax over the vocabulary: token ids [B, (H/8)·(W/8)] row-major (HF `get_codebook_indices`, flattened).
    public func codebookIndices(_ pixels: Tensor) -> IntTensor {
        let z = withNoGrad { self(Variable(pixels)).value }                            // [B, V, h, w]
        let (b, v, hw) = (z.shape[0], z.shape[1], z.shape[2] * z.shape[3])
        var out = [Int](repeating: 0, count: b * hw)
        let p = z.storage.pointer
        for i in 0..<b { for s in 0..<hw {
            var best = 0, bv = -Float.infinity
            for k in 0..<v { let x = p[(i * v + k) * hw + s]; if x > bv { bv = x; best = k } }
            out[i * hw + s] = best
        } }
        return IntTensor(shape: [b, hw], out)
    }

    /// softmax over the vocabulary [B, V, h, w] (HF `get_codebook_probs`).
    public func codebookProbabilities(_ pixels: Tensor) -> Tensor {
        let z = withNoGrad { self(Variable(pixels)).value }                            // [B, V, h, w]
        let (b, v, h, w) = (z.shape[0], z.shape[1], z.shape[2], z.shape[3])
        let last = SoftmaxKernel.forward(ShapeKernel.permute(z, [0, 2, 3, 1]))          // [B, h, w, V]
        return ShapeKernel.permute(last, [0, 3, 1, 2]).reshaped([b, v, h, w])
    }
}
