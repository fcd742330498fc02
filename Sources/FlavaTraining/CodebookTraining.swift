// Training our own visual tokenizer (the dVAE behind MIM and MMM targets): FlavaImageCodebook as the encoder,
// DVAEDecoder as the decoder, trained as DALL-E's dVAE is — Gumbel-softmax relaxation with an annealed
// temperature, a KL term towards the uniform prior with an annealed weight, and the logit-Laplace
// reconstruction loss on pixels mapped by 0.8x + 0.1 (MSE as an option).
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN
import FlavaModel
import FlavaData

/// Settings of a codebook training run.
public struct CodebookTrainingConfig: Codable, Sendable {
    public var codebook = FlavaImageCodebookConfig()
    public var decoder = DVAEDecoderConfig()
    /// Side of the training images (the codebook input: one code per 8×8 pixels).
    public var imageSize = 64
    public var batchSize = 32
    public var steps = 600
    public var learningRate: Float = 1e-3
    public var warmupSteps = 30
    public var weightDecay: Float = 0.0
    public var temperatureStart: Double = 1.0
    public var temperatureEnd: Double = 1.0 / 16
    public var klWeightMax: Double = 1.0
    /// Straight-through Gumbel-softmax: the decoder sees the hard one-hot sample (as at tokenization time) while
    /// gradients flow through the relaxed sample.
    public var straightThrough = true
    /// Weight of the code-usage term −I(x; code) = H(q|x) − H(q̄): many codes in use across the batch (q̄ near
    /// uniform) while each position commits to one (q confident), which prevents both collapse to one code
    /// and uninformative uniform posteriors on short runs.
    public var usageWeight: Double = 1.0
    /// Steps over which the KL weight rises from 0 to its maximum.
    public var klWarmupSteps = 200
    public var seed: UInt64 = 0
    public var evalImages = 256

    /// The small-model default: 512 codes, hidden 16, one block per group, 64-pixel images.
    public static var small: CodebookTrainingConfig {
        var c = CodebookTrainingConfig()
        c.codebook.vocabSize = 512; c.codebook.hiddenSize = 16; c.codebook.numBlocksPerGroup = 1
        c.codebook.freeze = false
        c.decoder = DVAEDecoderConfig(vocabSize: 512, hiddenSize: 16, initSize: 64, numBlocksPerGroup: 1)
        return c
    }

    enum CodingKeys: String, CodingKey {
        case codebook, decoder, imageSize = "image_size", batchSize = "batch_size", steps, learningRate = "learning_rate"
        case warmupSteps = "warmup_steps", weightDecay = "weight_decay", temperatureStart = "temperature_start"
        case temperatureEnd = "temperature_end", klWeightMax = "kl_weight_max", klWarmupSteps = "kl_warmup_steps", seed
        case usageWeight = "usage_weight", straightThrough = "straight_through"
        case evalImages = "eval_images"
    }
    public init() {}
    public init(from d: Decoder) throws {
        let c = try d.container(keyedBy: CodingKeys.self)
        let s = CodebookTrainingConfig.small
        codebook = try c.value(.codebook, s.codebook); decoder = try c.value(.decoder, s.decoder)
        imageSize = try c.value(.imageSize, s.imageSize); batchSize = try c.value(.batchSize, s.batchSize)
        steps = try c.value(.steps, s.steps); learningRate = try c.value(.learningRate, s.learningRate)
        warmupSteps = try c.value(.warmupSteps, s.warmupSteps); weightDecay = try c.value(.weightDecay, s.weightDecay)
        temperatureStart = try c.value(.temperatureStart, s.temperatureStart); temperatureEnd = try c.value(.temperatureEnd, s.temperatureEnd)
        klWeightMax = try c.value(.klWeightMax, s.klWeightMax); klWarmupSteps = try c.value(.klWarmupSteps, s.klWarmupSteps)
        seed = try c.value(.seed, s.seed); evalImages = try c.value(.evalImages, s.evalImages)
        usageWeight = try c.value(.usageWeight, s.usageWeight)
        straightThrough = try c.value(.straightThrough, s.straightThrough)
    }
}

/// Held-out quality of a codebook.
public struct CodebookMetrics: Codable, Sendable {
    public var psnrDB: Double
    public var codesUsed: Int
    public var vocabSize: Int
    public var perplexity: Double

    enum CodingKeys: String, CodingKey { case psnrDB = "psnr_db", codesUsed = "codes_used", vocabSize = "vocab_size", perplexity }
}

/// One training step's numbers.
public struct CodebookStepLog: Codable, Sendable {
    public var step: Int, loss: Double, reconstruction: Double, kl: Double, usage: Double, temperature: Double, klWeight: Double, learningRate: Double
}

/// Trains an encoder/decoder pair.
public final class CodebookTrainer {
    public let config: CodebookTrainingConfig
    public let encoder: FlavaImageCodebook
    public let decoder: DVAEDecoder
    let optimizer: AdamW
    var generator: SeededGenerator

    public init(config: CodebookTrainingConfig) {
        precondition(config.codebook.vocabSize == config.decoder.vocabSize, "codebook and decoder vocabularies differ")
        self.config = config
        var ini = Initializer(range: Float(config.codebook.initializerRange), seed: config.seed)
        encoder = FlavaImageCodebook(config.codebook, trainable: true, init: &ini)
        decoder = DVAEDecoder(config.decoder, init: &ini)
        // DALL-E initializes convolutions with N(0, 1/sqrt(fan_in)); N(0, 0.02) starves the small model.
        var g = SeededGenerator(seed: config.seed &+ 99)
        for (_, p) in encoder.namedParameters() + decoder.namedParameters() where p.shape.count == 4 {
            let fanIn = p.shape[1] * p.shape[2] * p.shape[3]
            p.value = Tensor.randomNormal(p.shape, std: 1 / Float(fanIn).squareRoot(), using: &g)
        }
        let named = encoder.namedParameters(prefix: "encoder") + decoder.namedParameters(prefix: "decoder")
        optimizer = AdamW(namedParameters: named, .init(learningRate: config.learningRate, beta1: 0.9, beta2: 0.999,
                                                        eps: 1e-8, weightDecay: config.weightDecay))
        generator = SeededGenerator(seed: config.seed &+ 7)
    }

    public func temperature(at step: Int) -> Double {
        let t = Double(step) / Double(max(1, config.steps - 1))
        return config.temperatureStart * pow(config.temperatureEnd / config.temperatureStart, t)
    }

    public func klWeight(at step: Int) -> Double {
        config.klWeightMax * min(1, Double(step) / Double(max(1, config.klWarmupSteps)))
    }

    /// Logits [B, V, h, w] → codes along the last dimension [B·h·w, V].
    static func positionsLast(_ z: Variable) -> Variable {
        let (b, v, h, w) = (z.shape[0], z.shape[1], z.shape[2], z.shape[3])
        return z.permuted([0, 2, 3, 1]).reshaped([b * h * w, v])
    }

    static func channelsFirst(_ q: Variable, b: Int, h: Int, w: Int) -> Variable {
        let v = q.shape[1]
        return q.reshaped([b, h, w, v]).permuted([0, 3, 1, 2])
    }

    /// One optimizer step on a batch of codebook pixels (already mapped to [0.1, 0.9]), [B, 3, S, S].
    public func step(_ pixels: Tensor, step: Int) -> CodebookStepLog {
        let tau = temperature(at: step), beta = klWeight(at: step)
        let z = encoder(Variable(pixels))                                               // [B, V, h, w]
        let (b, v, h, w) = (z.shape[0], z.shape[1], z.shape[2], z.shape[3])
        let flat = CodebookTrainer.positionsLast(z)                                     // [P, V]
        // Gumbel-softmax relaxation: softmax((z + g)/τ).
        let noise = Tensor(shape: flat.shape, (0..<flat.value.count).map { _ in
            -Float(log(-log(max(Double(generator.nextUniform()), 1e-10) + 1e-10)))
        })
        var soft = softmax((flat + Variable(noise)) * Float(1 / tau))                   // [P, V]
        if config.straightThrough {
            // y_hard − sg(y_soft) + y_soft: hard codes forward, relaxed gradients backward.
            let sv = soft.value
            let hard = Tensor.zeros(sv.shape)
            let (rows, cols) = (sv.shape[0], sv.shape[1])
            for r in 0..<rows {
                let row = sv.storage.pointer + r * cols
                var best = 0
                for c in 1..<cols where row[c] > row[best] { best = c }
                hard.storage.pointer[r * cols + best] = 1
            }
            soft = soft + Variable(hard - sv)
        }
        let out = decoder(CodebookTrainer.channelsFirst(soft, b: b, h: h, w: w))        // [B, 2C, S, S]
        let rec = config.decoder.reconstruction == "mse" ? mseLoss(out, pixels) : logitLaplaceLoss(out, target: pixels)
        // KL(q ‖ uniform) per position, = Σ q log q + log V, scaled to the reconstruction's per-sub-pixel units.
        let logq = logSoftmax(flat)
        let q = softmax(flat)                                                           // [P, V]
        let kl = (q * logq).sum() * Float(1 / Double(b * h * w)) + Float(log(Double(v)))
        let klPerSubpixel = kl * Float(Double(h * w) / Double(pixels.count / b))
        // Usage: KL(mean over positions of q ‖ uniform) = log V − H(q̄).
        let qbar = matmul(Variable(Tensor(shape: [1, q.shape[0]], repeating: 1 / Float(q.shape[0]))), q)  // [1, V]
        let usage = (qbar * log(qbar + Float(1e-8))).sum() + Float(log(Double(v)))
        let loss = rec + klPerSubpixel * Float(beta) + (usage - kl) * Float(config.usageWeight)
        encoder.zeroGrad(); decoder.zeroGrad()
        loss.backward()
        let schedule = LearningRateSchedule.cosine(warmup: config.warmupSteps, total: config.steps)
        optimizer.learningRateScale = Float(schedule.multiplier(at: step))
        Gradients.clipGlobalNorm(encoder.parameters + decoder.parameters, maxNorm: 1.0)
        optimizer.step()
        return CodebookStepLog(step: step, loss: Double(loss.value.scalarValue), reconstruction: Double(rec.value.scalarValue),
                               kl: Double(kl.value.scalarValue), usage: Double(usage.value.scalarValue), temperature: tau, klWeight: beta,
                               learningRate: Double(config.learningRate * optimizer.learningRateScale))
    }

    /// Hard-code reconstructions of `pixels` ([0.1, 0.9]-mapped codebook inputs): tokens and images in [0, 1].
    public func reconstruct(_ pixels: Tensor) -> (tokens: IntTensor, images: Tensor) {
        let tokens = encoder.codebookIndices(pixels)                                    // [B, h·w]
        let (b, hw, v) = (tokens.shape[0], tokens.shape[1], config.codebook.vocabSize)
        let side = Int(Double(hw).squareRoot())
        let onehot = Tensor.zeros([b, v, side, side])
        let p = onehot.storage.pointer
        for i in 0..<b { for s in 0..<hw { p[(i * v + tokens.values[i * hw + s]) * hw + s] = 1 } }
        let out = withNoGrad { decoder(Variable(onehot)).value }
        return (tokens, decoder.reconstruction(out))
    }

    /// PSNR (against the unmapped pixels), codes used and code perplexity over `pixels`.
    public func evaluate(_ pixels: Tensor, batchSize: Int = 32) -> CodebookMetrics {
        var counts = [Int](repeating: 0, count: config.codebook.vocabSize)
        var se: Double = 0, n = 0
        for start in stride(from: 0, to: pixels.shape[0], by: batchSize) {
            let batch = ShapeKernel.slice(pixels, axis: 0, start: start, end: min(pixels.shape[0], start + batchSize))
            let (tokens, images) = reconstruct(batch)
            for t in tokens.values { counts[t] += 1 }
            for i in 0..<batch.count {
                let original = (batch[flat: i] - 0.1) / 0.8
                let d = Double(images[flat: i] - original)
                se += d * d
            }
            n += batch.count
        }
        let mse = se / Double(max(n, 1))
        let total = Double(counts.reduce(0, +))
        let entropy = counts.filter { $0 > 0 }.reduce(0.0) { $0 - Double($1) / total * log(Double($1) / total) }
        return CodebookMetrics(psnrDB: 10 * log10(1 / max(mse, 1e-12)), codesUsed: counts.filter { $0 > 0 }.count,
                               vocabSize: config.codebook.vocabSize, perplexity: exp(entropy))
    }

    /// Saves the encoder as a Hugging Face FlavaImageCodebook folder and the decoder beside it.
    public func save(to dir: String) throws {
        try FlavaCheckpoint.saveCodebook(encoder, to: dir)
        try decoder.saveSafeTensors(to: dir + "/decoder.safetensors")
        try ConfigJSON.write(decoder.config, to: dir + "/decoder_config.json")
    }

    /// Loads a decoder saved by `save(to:)`.
    public static func loadDecoder(_ dir: String) throws -> DVAEDecoder {
        let path = dir + "/decoder_config.json"
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigError(path, "missing: no decoder beside this codebook") }
        let c = try JSONDecoder().decode(DVAEDecoderConfig.self, from: data)
        var ini = Initializer(mode: .zeros)
        let d = DVAEDecoder(c, init: &ini)
        try d.load(from: try SafeTensorsFile(path: dir + "/decoder.safetensors"))
        return d
    }
}
