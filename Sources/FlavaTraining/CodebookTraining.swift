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
import FlavaDistributed

/// Settings of a codebook training run.
public struct CodebookTrainingConfig: Codable, Sendable {
    public var codebook = FlavaImageCodebookConfig()
    public var decoder = DVAEDecoderConfig()
    /// Side of the training images (the codebook input: one code per 8×8 pixels).
    public var imageSize = 64
    public var batchSize = 32
    public var steps = 700
    public var learningRate: Float = 3e-3
    public var warmupSteps = 30
    public var weightDecay: Float = 0.0
    public var temperatureStart: Double = 1.0
    public var temperatureEnd: Double = 1.0 / 16
    public var klWeightMax: Double = 1.0
    /// Straight-through Gumbel-softmax: the decoder sees the hard one-hot sample (as at tokenization time) while
    /// gradients flow through the relaxed sample.
    public var straightThrough = true
    /// Every this many steps, codes unused since the last check take over half of a busy code: its encoder
    /// output row and decoder embedding are copied with a little noise (0 disables).
    public var restartEvery = 25
    /// The encoder's learning rate relative to `learningRate`. The k-means start already gives a good encoder
    /// (the mean 8×8 patch of each of its codes reconstructs held-out images at ≈22.7 dB); at the decoder's rate
    /// the noisy straight-through gradients wear it down (to ≈21.5 dB in 200 steps), at 1/30 of it they do not.
    public var encoderLearningRateScale: Double = 1.0 / 30
    /// Initialize the vocabulary projection by k-means over this many training images' encoder features (0: random).
    public var kmeansImages = 512
    /// Logit margin of the nearest k-means centre over the second at the median position.
    public var initialMargin: Double = 4
    /// Weight of the code-usage term −I(x; code) = H(q|x) − H(q̄): many codes in use across the batch (q̄ near
    /// uniform) while each position commits to one (q confident), which prevents both collapse to one code
    /// and uninformative uniform posteriors on short runs.
    public var usageWeight: Double = 1.0
    /// Steps over which the KL weight rises from 0 to its maximum.
    public var klWarmupSteps = 200
    public var seed: UInt64 = 0
    public var evalImages = 256

    /// The small-model default: 512 codes, encoder hidden 16 with one block per group (the small FLAVA's
    /// codebook), 64-pixel images, and the mirrored decoder.
    public static var small: CodebookTrainingConfig {
        var c = CodebookTrainingConfig()
        c.codebook.vocabSize = 512; c.codebook.hiddenSize = 16; c.codebook.numBlocksPerGroup = 1
        c.codebook.freeze = false
        c.decoder = mirroredDecoder(c.codebook)
        return c
    }

    /// The decoder for an encoder: DALL-E's decoder structure with the same vocabulary and blocks per group, twice
    /// the encoder's hidden width (4× that at its input), residual gain 1, MSE reconstruction.
    ///
    /// Measured on the synthetic world (held-out PSNR, learning rate 3e-3): after 300 steps, the decoder at the
    /// encoder's width 21.45 dB, at twice the width 21.69 dB (at about the same speed, with convolutions split over
    /// the batch); logit-Laplace reconstruction at the encoder's width 21.48 dB after 600 steps. DALL-E's residual
    /// gain 1/(4·blocks)² (1/16 here) damps the residual branches that draw detail inside a code's 8×8 pixels.
    /// The default run (700 steps) reaches 22.4 dB.
    public static func mirroredDecoder(_ c: FlavaImageCodebookConfig, reconstruction: String = "mse") -> DVAEDecoderConfig {
        var d = DVAEDecoderConfig(vocabSize: c.vocabSize, hiddenSize: 2 * c.hiddenSize, initSize: 8 * c.hiddenSize,
                                  numBlocksPerGroup: c.numBlocksPerGroup, reconstruction: reconstruction)
        d.postGain = 1
        return d
    }

    /// Checks every setting (and the encoder and decoder sections); the error names `file`, the field and its
    /// value.
    public func validate(file: String = "codebook training config") throws {
        let k = ConfigChecker(file: file)
        try codebook.validate(k.nested("codebook"))
        try k.int("codebook.vocab_size", codebook.vocabSize, in: 2...FlavaImageCodebookConfig.maximumVocabulary)
        try decoder.validate(k.nested("decoder"))
        try k.require(decoder.vocabSize == codebook.vocabSize, "decoder.vocab_size", decoder.vocabSize,
                      "must equal codebook.vocab_size (\(codebook.vocabSize))")
        try k.int("image_size", imageSize, in: 8...4_096)
        try k.require(imageSize % 8 == 0, "image_size", imageSize, "must be a multiple of 8 (one code per 8×8 pixels)")
        try k.int("batch_size", batchSize, in: 1...65_536)
        try k.int("steps", steps, in: 1...100_000_000)
        try k.number("learning_rate", Double(learningRate), in: 0...10, aboveLower: true)
        try k.int("warmup_steps", warmupSteps, in: 0...100_000_000)
        try k.number("weight_decay", Double(weightDecay), in: 0...10)
        try k.number("temperature_start", temperatureStart, in: 0...1_000, aboveLower: true)
        try k.number("temperature_end", temperatureEnd, in: 0...1_000, aboveLower: true)
        try k.number("kl_weight_max", klWeightMax, in: 0...1e6)
        try k.int("kl_warmup_steps", klWarmupSteps, in: 0...100_000_000)
        try k.number("usage_weight", usageWeight, in: 0...1e6)
        try k.int("restart_every", restartEvery, in: 0...100_000_000)
        try k.number("encoder_learning_rate_scale", encoderLearningRateScale, in: 0...1_000)
        try k.number("initial_margin", initialMargin, in: 0...1e6)
        try k.int("eval_images", evalImages, in: 1...1_000_000)
        try k.int("kmeans_images", kmeansImages, in: 0...1_000_000)
        try k.require(kmeansImages == 0 || kmeansImages * (imageSize / 8) * (imageSize / 8) >= codebook.vocabSize, "kmeans_images",
                      kmeansImages, "gives fewer positions than the \(codebook.vocabSize) codes; raise it or set 0")
    }

    enum CodingKeys: String, CodingKey {
        case codebook, decoder, imageSize = "image_size", batchSize = "batch_size", steps, learningRate = "learning_rate"
        case warmupSteps = "warmup_steps", weightDecay = "weight_decay", temperatureStart = "temperature_start"
        case temperatureEnd = "temperature_end", klWeightMax = "kl_weight_max", klWarmupSteps = "kl_warmup_steps", seed
        case usageWeight = "usage_weight", straightThrough = "straight_through", restartEvery = "restart_every"
        case encoderLearningRateScale = "encoder_learning_rate_scale", kmeansImages = "kmeans_images", initialMargin = "initial_margin"
        case evalImages = "eval_images"
    }
    public init() {}
    public init(from d: Decoder) throws {
        let c = try d.container(keyedBy: CodingKeys.self)
        let s = CodebookTrainingConfig.small
        codebook = try c.value(.codebook, s.codebook)
        // The decoder mirrors the encoder unless given.
        decoder = try c.value(.decoder, CodebookTrainingConfig.mirroredDecoder(codebook))
        imageSize = try c.value(.imageSize, s.imageSize); batchSize = try c.value(.batchSize, s.batchSize)
        steps = try c.value(.steps, s.steps); learningRate = try c.value(.learningRate, s.learningRate)
        warmupSteps = try c.value(.warmupSteps, s.warmupSteps); weightDecay = try c.value(.weightDecay, s.weightDecay)
        temperatureStart = try c.value(.temperatureStart, s.temperatureStart); temperatureEnd = try c.value(.temperatureEnd, s.temperatureEnd)
        klWeightMax = try c.value(.klWeightMax, s.klWeightMax); klWarmupSteps = try c.value(.klWarmupSteps, s.klWarmupSteps)
        seed = try c.value(.seed, s.seed); evalImages = try c.value(.evalImages, s.evalImages)
        usageWeight = try c.value(.usageWeight, s.usageWeight)
        straightThrough = try c.value(.straightThrough, s.straightThrough)
        restartEvery = try c.value(.restartEvery, s.restartEvery)
        encoderLearningRateScale = try c.value(.encoderLearningRateScale, s.encoderLearningRateScale)
        kmeansImages = try c.value(.kmeansImages, s.kmeansImages); initialMargin = try c.value(.initialMargin, s.initialMargin)
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

/// An encoder/decoder pair being trained, with the dVAE's loss (`loss(_:step:)`), its k-means start, dead-code
/// restarts, held-out figures and saving. `CodebookTrainingTask` runs it on the training engine.
public final class CodebookTrainer {
    public let config: CodebookTrainingConfig
    public let encoder: FlavaImageCodebook
    public let decoder: DVAEDecoder
    /// Draws the Gumbel noise and the restarts' jitter.
    var generator: SeededGenerator
    /// Hard-code usage since the last dead-code check.
    var usageCounts: [Int]

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
        generator = SeededGenerator(seed: config.seed &+ 7)
        usageCounts = [Int](repeating: 0, count: config.codebook.vocabSize)
    }

    /// Encoder and decoder parameters, keyed "encoder.…" and "decoder.…".
    public var namedParameters: [(key: String, variable: Variable)] {
        encoder.namedParameters().map { ("encoder." + $0.key, $0.variable) } + decoder.namedParameters().map { ("decoder." + $0.key, $0.variable) }
    }

    /// AdamW with the encoder at `encoderLearningRateScale` of the decoder's rate.
    public func makeOptimizer() -> AdamW {
        let hyper = AdamWHyperParameters(learningRate: config.learningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: config.weightDecay)
        var encoderHyper = hyper
        encoderHyper.learningRate = config.learningRate * Float(config.encoderLearningRateScale)
        return AdamW(groups: [ParameterGroup(encoder.parameters, encoderHyper), ParameterGroup(decoder.parameters, hyper)])
    }

    /// The engine settings of this config (its steps, rate, warmup and decay; clipping at 1; seed).
    public static func settings(_ c: CodebookTrainingConfig) -> TrainingSettings {
        TrainingSettings(steps: c.steps, learningRate: c.learningRate, weightDecay: c.weightDecay, warmupSteps: c.warmupSteps,
                         maxGradNorm: 1, seed: c.seed)
    }

    /// Data-dependent start (k-means, as VQ-VAE codebooks are often initialized): the encoder trunk's features
    /// of `pixels` are clustered into `vocabSize` centres e_k, and the output projection is set so that its logits
    /// are −s·‖h − e_k‖² up to a per-position constant (weight 2s·e_k, bias −s·‖e_k‖²). Every code then starts
    /// in use, and the scale s makes the nearest centre win over the Gumbel noise, so the decoder sees
    /// informative codes from the first step instead of learning to ignore noise.
    public func initializeCodes(from pixels: Tensor, iterations: Int = 10) {
        let feats = withNoGrad { () -> Tensor in
            var parts = [Tensor]()
            for start in stride(from: 0, to: pixels.shape[0], by: 32) {
                let batch = ShapeKernel.slice(pixels, axis: 0, start: start, end: min(pixels.shape[0], start + 32))
                let f = encoder.features(Variable(batch)).value                           // [b, C, h, w]
                parts.append(ShapeKernel.permute(f, [0, 2, 3, 1]).reshaped([-1, f.shape[1]]))
            }
            return ShapeKernel.concat(parts, axis: 0)                                       // [N, C]
        }
        let (n, c, v) = (feats.shape[0], feats.shape[1], config.codebook.vocabSize)
        precondition(n >= v, "k-means needs at least \(v) feature vectors, got \(n)")
        var g = SeededGenerator(seed: config.seed &+ 1234)
        let x = feats.storage.pointer
        // Random distinct rows as the starting centres.
        var order = Array(0..<n); for i in 0..<v { order.swapAt(i, i + Int(g.next() % UInt64(n - i))) }
        var centres = [Float](repeating: 0, count: v * c)
        for k in 0..<v { for j in 0..<c { centres[k * c + j] = x[order[k] * c + j] } }
        var assign = [Int](repeating: 0, count: n), gap = [Float](repeating: 0, count: n)
        var cn = [Float](repeating: 0, count: v)                                            // ‖e_k‖²
        for it in 0...iterations {
            let ct = Tensor(shape: [v, c], centres)
            let dots = LinearKernel.matmul(feats, ct, transB: true)                         // [N, V]
            for k in 0..<v { var t: Float = 0; for j in 0..<c { t += centres[k * c + j] * centres[k * c + j] }; cn[k] = t }
            let d = dots.storage.pointer
            for i in 0..<n {
                var best = Float.infinity, second = Float.infinity, arg = 0
                for k in 0..<v {
                    let dist = cn[k] - 2 * d[i * v + k]
                    if dist < best { second = best; best = dist; arg = k } else if dist < second { second = dist }
                }
                assign[i] = arg; gap[i] = second - best
            }
            if it == iterations { break }                                                   // centres and cn stay paired
            var sums = [Float](repeating: 0, count: v * c), counts = [Int](repeating: 0, count: v)
            for i in 0..<n { counts[assign[i]] += 1; for j in 0..<c { sums[assign[i] * c + j] += x[i * c + j] } }
            for k in 0..<v {
                if counts[k] > 0 { for j in 0..<c { centres[k * c + j] = sums[k * c + j] / Float(counts[k]) } }
                else { let r = Int(g.next() % UInt64(n)); for j in 0..<c { centres[k * c + j] = x[r * c + j] } }   // empty: reseed
            }
        }
        // Scale: the median nearest-vs-second gap becomes `initialMargin` logits.
        let median = gap.sorted()[n / 2]
        let s = Float(config.initialMargin) / max(median, 1e-6)
        let w = encoder.output.weight, b = encoder.output.bias!                             // [V, C, 1, 1], [V]
        w.value = Tensor(shape: w.shape, centres.map { 2 * s * $0 })
        b.value = Tensor(shape: b.shape, cn.map { -s * $0 })
    }

    /// Splits busy codes into dead ones (see `restartEvery`).
    func restartDeadCodes() {
        let dead = usageCounts.indices.filter { usageCounts[$0] == 0 }
        let busy = usageCounts.indices.sorted { usageCounts[$0] > usageCounts[$1] }.prefix(max(1, usageCounts.filter { $0 > 0 }.count))
        guard !dead.isEmpty, !busy.isEmpty else { return }
        let w = encoder.output.weight, b = encoder.output.bias!, emb = decoder.input.weight   // [V, C, 1, 1], [V], [D, V, 1, 1]
        let c = w.shape[1], v = w.shape[0], d = emb.shape[0]
        for (k, target) in dead.enumerated() {
            let source = busy[k % busy.count]
            w.value.withMutableBuffer { p in for j in 0..<c { p[target * c + j] = p[source * c + j] * (1 + 0.02 * generator.nextNormal()) } }
            b.value.withMutableBuffer { p in p[target] = p[source] }
            emb.value.withMutableBuffer { p in for j in 0..<d { p[j * v + target] = p[j * v + source] + 0.01 * generator.nextNormal() } }
        }
        usageCounts = [Int](repeating: 0, count: v)
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

    /// The loss of step `step` (0-based) on a batch of codebook pixels (already mapped to [0.1, 0.9]), [B, 3, S, S]:
    /// "loss", "reconstruction", "kl" and "usage" among the losses, "temperature" and "kl_weight" among the values.
    ///
    /// Data-parallel (`communicator` of several ranks, each with its slice of the global batch in rank order, the
    /// same size everywhere): each rank draws its rows of the global batch's Gumbel noise (skipping the others'
    /// draws, so every rank's generator stays in step with one process's), the usage term is of the global mean
    /// code distribution (an all-gather), and the hard-code usage counts are summed across ranks — so the mean of
    /// the ranks' losses is one process's loss on the whole batch.
    public func loss(_ pixels: Tensor, step: Int, communicator comm: Communicator = LocalCommunicator.shared) -> MicroBatchLoss {
        let tau = temperature(at: step), beta = klWeight(at: step)
        let z = encoder(Variable(pixels))                                               // [B, V, h, w]
        let (b, v, h, w) = (z.shape[0], z.shape[1], z.shape[2], z.shape[3])
        let flat = CodebookTrainer.positionsLast(z)                                     // [P, V]
        // Gumbel-softmax relaxation: softmax((z + g)/τ).
        let rows = flat.value.count
        func skip(_ n: Int) { for _ in 0..<n { _ = generator.next() } }   // nextUniform draws one value each
        skip(comm.rank * rows)
        let noise = Tensor(shape: flat.shape, (0..<rows).map { _ in
            -Float(log(-log(max(Double(generator.nextUniform()), 1e-10) + 1e-10)))
        })
        skip((comm.size - 1 - comm.rank) * rows)
        let countsBefore = comm.size > 1 ? usageCounts : []
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
                usageCounts[best] += 1
            }
            soft = soft + Variable(hard - sv)
            if comm.size > 1 {
                let local = usageCounts.indices.map { Int32(usageCounts[$0] - countsBefore[$0]) }
                let summed = comm.allReduce(local, .sum)
                usageCounts = usageCounts.indices.map { countsBefore[$0] + Int(summed[$0]) }
            }
        }
        let out = decoder(CodebookTrainer.channelsFirst(soft, b: b, h: h, w: w))        // [B, 2C, S, S]
        let rec = config.decoder.reconstruction == "mse" ? mseLoss(out, pixels) : logitLaplaceLoss(out, target: pixels)
        // KL(q ‖ uniform) per position, = Σ q log q + log V, scaled to the reconstruction's per-sub-pixel units.
        let logq = logSoftmax(flat)
        let q = softmax(flat)                                                           // [P, V]
        let kl = (q * logq).sum() * Float(1 / Double(b * h * w)) + Float(log(Double(v)))
        let klPerSubpixel = kl * Float(Double(h * w) / Double(pixels.count / b))
        // Usage: KL(mean over positions of q ‖ uniform) = log V − H(q̄).
        var qbar = matmul(Variable(Tensor(shape: [1, q.shape[0]], repeating: 1 / Float(q.shape[0]))), q)  // [1, V]
        if comm.size > 1 {   // the global batch's: the mean of the ranks' (equal-sized) means
            qbar = matmul(Variable(Tensor(shape: [1, comm.size], repeating: 1 / Float(comm.size))), allGatherRows(qbar, comm))
        }
        let usage = (qbar * log(qbar + Float(1e-8))).sum() + Float(log(Double(v)))
        let loss = rec + klPerSubpixel * Float(beta) + (usage - kl) * Float(config.usageWeight)
        return MicroBatchLoss(loss: loss, losses: ["loss": Double(loss.value.scalarValue), "reconstruction": Double(rec.value.scalarValue),
                                                 "kl": Double(kl.value.scalarValue), "usage": Double(usage.value.scalarValue)],
                              values: ["temperature": tau, "kl_weight": beta], samples: b)
    }

    /// After the optimizer update of step `step`: dead-code restarts every `restartEvery` steps (not in the last
    /// quarter of the run).
    public func didStep(_ step: Int) {
        if config.restartEvery > 0 && (step + 1) % config.restartEvery == 0 && step + 1 < config.steps * 3 / 4 { restartDeadCodes() }
    }

    /// Hard-code reconstructions of `pixels` ([0.1, 0.9]-mapped codebook inputs): tokens and images in [0, 1].
    public func reconstruct(_ pixels: Tensor) -> (tokens: IntTensor, images: Tensor) {
        let tokens = encoder.codebookIndices(pixels)                                    // [B, h·w]
        return (tokens, decoder.decode(tokens: tokens, side: Int(Double(tokens.shape[1]).squareRoot())))
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

    /// Saves, atomically, the encoder as a Hugging Face FlavaImageCodebook folder (config.json +
    /// model.safetensors), the decoder beside it (decoder_config.json + decoder.safetensors) and the training
    /// settings (codebook_training.json, whose image_size `flava codebook encode` uses by default). Other files
    /// already in the folder (a run's logs) are kept.
    public func save(to dir: String) throws {
        try AtomicFolder.write(to: dir, keepingOtherFiles: true) { tmp in try write(into: tmp) }
    }

    /// Writes the files of `save(to:)` into an existing folder.
    public func write(into dir: String) throws {
        try FlavaCheckpoint.saveCodebook(encoder, to: dir)
        try decoder.saveSafeTensors(to: dir + "/decoder.safetensors")
        try ConfigJSON.write(decoder.config, to: dir + "/decoder_config.json")
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(config).write(to: URL(fileURLWithPath: dir + "/codebook_training.json"), options: .atomic)
    }

    /// Reads weights a `save(to:)` wrote (of this config's shapes) back into the encoder and decoder.
    public func load(from dir: String) throws {
        try encoder.load(from: try SafeTensorsFile(path: dir + "/model.safetensors"))
        try decoder.load(from: try SafeTensorsFile(path: dir + "/decoder.safetensors"))
    }

    /// Loads a decoder saved by `save(to:)`.
    public static func loadDecoder(_ dir: String) throws -> DVAEDecoder {
        let path = dir + "/decoder_config.json"
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigError(path, "missing: no decoder beside this codebook") }
        let c = try ConfigError.decode(DVAEDecoderConfig.self, from: data, file: path)
        try c.validate(ConfigChecker(file: path))
        var ini = Initializer(mode: .zeros)
        let d = DVAEDecoder(c, init: &ini)
        try d.load(from: try SafeTensorsFile(path: dir + "/decoder.safetensors"))
        return d
    }
}
