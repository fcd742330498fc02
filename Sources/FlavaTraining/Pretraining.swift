// Joint FLAVA pretraining (paper §3.3–3.5, Table A.2): every step draws one dataset by probability (image-text
// pairs → global contrastive + ITM + MMM-image + MMM-text; images → MIM; text → MLM) and takes a full batch
// from it; AdamW without decay on biases and norms, linear warmup then cosine decay, gradient accumulation,
// global-norm clipping, the logit-scale clamp (training mode); checkpoints written atomically with optimizer
// and trainer state so that a run resumes exactly; zero-shot evaluation on held-out data.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN
import FlavaModel
import FlavaData
import FlavaEval

/// Which objectives a run optimizes (the paper's ablations and the CLIP baseline are subsets).
public struct PretrainingObjectives: Codable, Sendable, Equatable {
    public var contrastive = true, itm = true, mmmImage = true, mmmText = true, mim = true, mlm = true

    /// Parses "contrastive,itm,mmm_image,mmm_text,mim,mlm" (or "all").
    public init(_ spec: String = "all") throws {
        guard spec != "all" else { return }
        let names = Set(spec.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let known: Set<String> = ["contrastive", "itm", "mmm_image", "mmm_text", "mim", "mlm"]
        if let bad = names.subtracting(known).first { throw DataError("unknown objective '\(bad)' (known: \(known.sorted().joined(separator: ", ")))") }
        contrastive = names.contains("contrastive"); itm = names.contains("itm"); mmmImage = names.contains("mmm_image")
        mmmText = names.contains("mmm_text"); mim = names.contains("mim"); mlm = names.contains("mlm")
    }

    /// Applies to the config's loss weights (0 turns a loss off).
    public func apply(to c: inout FlavaConfig) {
        if !contrastive { c.globalContrastiveWeight = 0 }
        if !itm { c.itmWeight = 0 }
        if !mmmImage { c.mmmImageWeight = 0 }
        if !mmmText { c.mmmTextWeight = 0 }
        if !mim { c.mimWeight = 0 }
        if !mlm { c.mlmWeight = 0 }
    }

    public var needsPairs: Bool { contrastive || itm || mmmImage || mmmText }
    public var needsCodebook: Bool { mmmImage || mim }
}

/// Everything a pretraining run is configured by (also saved in each checkpoint).
public struct PretrainingConfig: Codable, Sendable {
    // Decoding fills absent fields with the defaults below.

    public var steps = 1200
    public var batchSize = 32
    public var accumulation = 1
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 0.1
    public var warmupSteps = 100
    public var maxGradNorm: Float = 1.0
    /// Sampling probabilities of pairs / images / text (Table A.2: 0.70 / 0.15 / 0.15).
    public var probabilities: [Double] = [0.70, 0.15, 0.15]
    public var objectives = try! PretrainingObjectives()
    public var seed: UInt64 = 0
    public var checkpointEvery = 400
    public var evalEvery = 200
    public var data = PretrainingDataConfig()
    /// Recompute each encoder layer's activations in backward (less memory, one more forward of the encoders).
    public var gradientCheckpointing = false
    public init() {}

    enum CodingKeys: String, CodingKey {
        case steps, batchSize, accumulation, learningRate, weightDecay, warmupSteps, maxGradNorm, probabilities, objectives
        case seed, checkpointEvery, evalEvery, data, gradientCheckpointing
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PretrainingConfig()
        steps = try c.value(.steps, d.steps); batchSize = try c.value(.batchSize, d.batchSize)
        accumulation = try c.value(.accumulation, d.accumulation); learningRate = try c.value(.learningRate, d.learningRate)
        weightDecay = try c.value(.weightDecay, d.weightDecay); warmupSteps = try c.value(.warmupSteps, d.warmupSteps)
        maxGradNorm = try c.value(.maxGradNorm, d.maxGradNorm); probabilities = try c.value(.probabilities, d.probabilities)
        objectives = try c.value(.objectives, d.objectives); seed = try c.value(.seed, d.seed)
        checkpointEvery = try c.value(.checkpointEvery, d.checkpointEvery); evalEvery = try c.value(.evalEvery, d.evalEvery)
        data = try c.value(.data, d.data)
        gradientCheckpointing = try c.value(.gradientCheckpointing, d.gradientCheckpointing)
    }

    /// Checks every setting; the error names `file`, the field and its value.
    public func validate(file: String = "pretraining settings") throws {
        let k = ConfigChecker(file: file)
        try k.int("steps", steps, in: 1...100_000_000)
        try k.int("batchSize", batchSize, in: 1...1_048_576)
        try k.int("accumulation", accumulation, in: 1...65_536)
        try k.number("learningRate", Double(learningRate), in: 0...10, aboveLower: true)
        try k.number("weightDecay", Double(weightDecay), in: 0...10)
        try k.int("warmupSteps", warmupSteps, in: 0...100_000_000)
        try k.number("maxGradNorm", Double(maxGradNorm), in: 0...1e9, aboveLower: true)
        try k.require(probabilities.count == 3, "probabilities", probabilities, "must be three numbers (pairs, images, text)")
        for p in probabilities { try k.number("probabilities", p, in: 0...1e9) }
        try k.require(probabilities.reduce(0, +) > 0, "probabilities", probabilities, "must not all be 0")
        try k.int("checkpointEvery", checkpointEvery, in: 1...100_000_000)
        try k.int("evalEvery", evalEvery, in: 1...100_000_000)
        try data.validate(k.nested("data"))
    }
}

/// One row of the metrics log.
public struct PretrainingLogEntry: Codable, Sendable {
    public var step: Int
    public var kind: String
    public var losses: [String: Double]
    public var learningRate: Double
    public var samplesPerSecond: Double
    public var eval: [String: Double]?
}

/// The state saved beside the model so that a run resumes exactly.
public struct TrainerState: Codable, Sendable {
    public var step: Int
    public var rng: SeededGenerator
    public var positions: [String: LoaderPosition]
    public var bestScore: Double?
    public var config: PretrainingConfig
}

/// Runs joint pretraining.
public final class Pretrainer {
    public let model: FlavaForPreTraining
    public let tokenizer: BertTokenizer
    public var config: PretrainingConfig
    let optimizer: AdamW
    let named: [(key: String, variable: Variable)]
    public private(set) var step = 0
    var rng: SeededGenerator
    var loaders: [String: DataLoader<PretrainingItem, PretrainingBatch>] = [:]
    let sources: [String: DataSource]
    public var bestScore: Double?

    /// `sources`: "pairs", "images", "text" (missing kinds are never drawn).
    public init(model: FlavaForPreTraining, tokenizer: BertTokenizer, config: PretrainingConfig, sources: [String: DataSource]) {
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.sources = sources
        named = model.namedParameters().filter { $0.variable.requiresGrad }
        optimizer = AdamW(namedParameters: named, .init(learningRate: config.learningRate, weightDecay: config.weightDecay))
        rng = SeededGenerator(seed: config.seed)
        model.train()
    }

    func loader(_ kind: String, from position: LoaderPosition) throws -> DataLoader<PretrainingItem, PretrainingBatch> {
        guard let src = sources[kind] else { throw DataError("no \(kind) data source") }
        let batcher = PretrainingBatcher(config: config.data, tokenizer: tokenizer)
        let o = LoaderOptions(batchSize: config.batchSize, shuffleBuffer: 256, seed: config.seed &+ (kind == "pairs" ? 1 : kind == "images" ? 2 : 3))
        let pairs = kind == "pairs"
        return try DataLoader(source: src, options: o, resumeFrom: position,
            transform: { r, g in try batcher.item(r, needImage: kind != "text", needText: kind != "images", wholeWord: pairs, &g) },
            collate: { items, g in batcher.collate(items, pairs: pairs, &g) })
    }

    /// The data kinds this run draws from, with their probabilities (renormalized over what is available).
    var kinds: [(String, Double)] {
        let o = config.objectives
        var k: [(String, Double)] = []
        if o.needsPairs && sources["pairs"] != nil { k.append(("pairs", config.probabilities[0])) }
        if o.mim && sources["images"] != nil { k.append(("images", config.probabilities[1])) }
        if o.mlm && sources["text"] != nil { k.append(("text", config.probabilities[2])) }
        let total = k.reduce(0) { $0 + $1.1 }
        return k.map { ($0.0, $0.1 / max(total, 1e-12)) }
    }

    /// Starts (or resumes) the loaders.
    public func start(positions: [String: LoaderPosition] = [:]) throws {
        guard !kinds.isEmpty else { throw DataError("no data for the selected objectives") }
        for (k, _) in kinds { loaders[k] = try loader(k, from: positions[k] ?? LoaderPosition()) }
    }

    func input(_ b: PretrainingBatch) -> FlavaPreTrainingInput {
        FlavaPreTrainingInput(inputIds: b.inputIds, inputIdsMasked: b.inputIdsMasked, attentionMask: b.attentionMask,
                              pixelValues: b.pixelValues, codebookPixelValues: b.codebookPixelValues,
                              boolMaskedPos: b.boolMaskedPos, mlmLabels: b.mlmLabels, itmLabels: b.itmLabels)
    }

    /// One optimizer step (with `accumulation` micro-batches of the drawn kind).
    public func trainStep() throws -> PretrainingLogEntry {
        let t0 = Date()
        let u = Double(rng.nextUniform())
        var acc = 0.0
        var kind = kinds.last!.0
        for (k, p) in kinds { acc += p; if u < acc { kind = k; break } }
        model.zeroGrad()
        var losses: [String: Double] = [:]
        var samples = 0
        for _ in 0..<config.accumulation {
            guard let batch = try loaders[kind]!.next() else { throw DataError("\(kind) data ran out") }
            let out = model(input(batch))
            guard let loss = out.loss else { throw DataError("no loss for a \(kind) batch with the selected objectives") }
            let scaled = config.accumulation > 1 ? loss * Float(1 / Double(config.accumulation)) : loss
            scaled.backward()
            for (k, v) in out.losses { losses[k, default: 0] += Double(v.value.scalarValue) / Double(config.accumulation) }
            samples += batch.count
        }
        let schedule = LearningRateSchedule.cosine(warmup: config.warmupSteps, total: config.steps)
        optimizer.learningRateScale = Float(schedule.multiplier(at: step))
        Gradients.clipGlobalNorm(named.map(\.variable), maxNorm: config.maxGradNorm)
        optimizer.step()
        step += 1
        for (k, v) in losses where !v.isFinite { throw DataError("loss \(k) became \(v) at step \(step)") }
        return PretrainingLogEntry(step: step, kind: kind, losses: losses,
                                   learningRate: Double(config.learningRate * optimizer.learningRateScale),
                                   samplesPerSecond: Double(samples) / Date().timeIntervalSince(t0), eval: nil)
    }

    // MARK: checkpoints

    /// Writes checkpoint-STEP atomically (a temporary folder renamed into place): the model in the Hugging Face
    /// layout, vocab.txt, the optimizer moments and the trainer state.
    @discardableResult
    public func saveCheckpoint(in runDir: String, name: String? = nil, vocabFile: String) throws -> String {
        let final = runDir + "/" + (name ?? "checkpoint-\(step)")
        try AtomicFolder.write(to: final) { tmp in
            try FlavaCheckpoint.save(model, to: tmp)
            try FileManager.default.copyItem(atPath: vocabFile, toPath: tmp + "/vocab.txt")
            var tensors: [(String, StoredTensor)] = []
            for (key, v) in named {
                guard let s = optimizer.state(of: v) else { continue }
                tensors.append(("\(key).exp_avg", .float(s.m))); tensors.append(("\(key).exp_avg_sq", .float(s.v)))
                tensors.append(("\(key).step", .int(IntTensor(shape: [], [s.step]))))
            }
            try SafeTensors.write(tensors, to: tmp + "/optimizer.safetensors")
            let state = TrainerState(step: step, rng: rng, positions: loaders.mapValues { $0.position }, bestScore: bestScore, config: config)
            let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(state).write(to: URL(fileURLWithPath: tmp + "/trainer_state.json"), options: .atomic)
        }
        return final
    }

    /// Restores optimizer moments, step, RNG and data positions from a checkpoint written by `saveCheckpoint`
    /// (the model weights are loaded by the caller) and restarts the loaders there.
    public func resume(from dir: String) throws {
        let statePath = dir + "/trainer_state.json"
        let state = try ConfigError.decode(TrainerState.self, fromFile: statePath)
        try state.config.validate(file: statePath)
        let optPath = dir + "/optimizer.safetensors"
        let opt = try SafeTensorsFile(path: optPath)
        var list: [(parameter: Variable, state: (m: Tensor, v: Tensor, step: Int))] = []
        for (key, v) in named {
            guard opt.info("\(key).exp_avg") != nil else { continue }
            for moment in ["exp_avg", "exp_avg_sq"] {
                guard let info = opt.info("\(key).\(moment)"), info.shape == v.shape else {
                    throw CheckpointError(optPath, "\(key).\(moment) is missing or not of the parameter's shape \(v.shape)")
                }
            }
            let count = try opt.intTensor("\(key).step")
            guard count.count == 1, count.values[0] >= 0 else { throw CheckpointError(optPath, "\(key).step is not one non-negative count") }
            list.append((v, (try opt.floatTensor("\(key).exp_avg").copy(), try opt.floatTensor("\(key).exp_avg_sq").copy(), count.values[0])))
        }
        guard state.step >= 0 else { throw ConfigError(statePath, "field 'step' = \(state.step): must not be negative") }
        optimizer.restore(list)
        step = state.step
        rng = state.rng
        bestScore = state.bestScore
        loaders.values.forEach { $0.stop() }
        loaders = [:]
        try start(positions: state.positions)
    }

    public func stop() { loaders.values.forEach { $0.stop() } }
}

/// Held-out zero-shot evaluation of a FLAVA on the synthetic world: retrieval over `candidates` pairs both ways
/// and classification over the world's 48 colour–shape classes.
public enum SyntheticEvaluation {
    public static func run(model: FlavaModel, tokenizer: BertTokenizer, world: SyntheticWorld, data: PretrainingDataConfig,
                           candidates: Int = 100, classificationImages: Int = 240) throws -> [String: Double] {
        let embedder = try FlavaEmbedder(model: model, tokenizer: tokenizer, processor: data.processor)
        let samples = (0..<candidates).map { world.sample($0, split: .heldOut) }
        let pixels = embedder.pixelValues(samples.map(\.image))
        let images = embedder.imageEmbeddings(pixels, batchSize: 50)
        let text = try! embedder.tokenize(samples.map { $0.captions[0] }, maxLength: data.maxTextLength)
        let texts = embedder.textEmbeddings(text, batchSize: 50)
        let r = ZeroShot.retrieval(images: images, texts: texts, textImage: Array(0..<candidates), ks: [1, 5])
        // Zero-shot classification: prompts per class, held-out scenes whose first object defines the class.
        let templates = ["a {}", "a picture of a {}", "a small {}", "a large {}"]
        let prompts = SyntheticWorld.classNames.flatMap { c in templates.map { $0.replacingOccurrences(of: "{}", with: c) } }
        let classes = ZeroShot.classEmbeddings(promptEmbeddings: embedder.textEmbeddings(try! embedder.tokenize(prompts, maxLength: data.maxTextLength), batchSize: 64),
                                               templatesPerClass: templates.count)
        let cls = (0..<classificationImages).map { world.sample(10_000 + $0, split: .heldOut) }
        let clsEmb = embedder.imageEmbeddings(embedder.pixelValues(cls.map(\.image)), batchSize: 60)
        let z = ZeroShot.classify(images: clsEmb, classes: classes, labels: cls.map(\.label))
        var out = r.summary.filter { ["image_to_text_R@1", "image_to_text_R@5", "text_to_image_R@1", "text_to_image_R@5"].contains($0.key) }
        out["zero_shot_accuracy"] = z.top1
        out["zero_shot_chance"] = 1 / Double(SyntheticWorld.classNames.count)
        out["retrieval_candidates"] = Double(candidates)
        return out
    }
}

/// Retrieval evaluation on held-out pairs from any source (the first `candidates` records).
public enum RetrievalEvaluation {
    public static func run(model: FlavaModel, tokenizer: BertTokenizer, source: DataSource, data: PretrainingDataConfig,
                           candidates: Int = 100) throws -> [String: Double] {
        let stream = try source.stream(epoch: 0, seed: 0)
        var images: [RGBImage] = [], captions: [String] = []
        while images.count < candidates, let r = try stream.next() {
            guard let ref = r.image, let t = r.text, let img = try? ref.load() else { continue }
            images.append(img); captions.append(t)
        }
        guard !images.isEmpty else { throw DataError("\(source.name): no usable image-text pairs to evaluate on") }
        let embedder = try FlavaEmbedder(model: model, tokenizer: tokenizer, processor: data.processor)
        let i = embedder.imageEmbeddings(embedder.pixelValues(images), batchSize: 50)
        let t = embedder.textEmbeddings(try embedder.tokenize(captions, maxLength: data.maxTextLength), batchSize: 50)
        var out = ZeroShot.retrieval(images: i, texts: t, textImage: Array(0..<images.count), ks: [1, 5]).summary
            .filter { $0.key.contains("R@") }
        out["retrieval_candidates"] = Double(images.count)
        return out
    }
}
