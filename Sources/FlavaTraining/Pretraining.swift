// Joint FLAVA pretraining (paper §3.3–3.5, Table A.2) as a task of the training engine: every step draws one
// dataset by probability (image-text pairs → global contrastive + ITM + MMM-image + MMM-text; images → MIM;
// text → MLM) and takes a full batch from it; the engine gives AdamW without decay on biases and norms, linear
// warmup then cosine decay, gradient accumulation, global-norm clipping and atomic checkpoints that resume
// exactly; the logit-scale clamp comes with training mode. Zero-shot evaluation on held-out data.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN
import FlavaDistributed
import FlavaModel
import FlavaData
import FlavaEval

/// Which objectives a run optimizes (the paper's ablations and the CLIP baseline are subsets), or DINO, the
/// image-only stage of its own (DINO.swift).
public struct PretrainingObjectives: Codable, Sendable, Equatable {
    public var contrastive = true, itm = true, mmmImage = true, mmmText = true, mim = true, mlm = true
    /// DINO self-distillation of the image encoder (alone: no other objective with it).
    public var dino = false

    static let known: Set<String> = ["contrastive", "itm", "mmm_image", "mmm_text", "mim", "mlm", "dino"]

    /// Parses "contrastive,itm,mmm_image,mmm_text,mim,mlm" (or "all"), or "dino".
    public init(_ spec: String = "all") throws {
        guard spec != "all" else { return }
        let names = Set(spec.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        if let bad = names.subtracting(PretrainingObjectives.known).first {
            throw DataError("unknown objective '\(bad)' (known: \(PretrainingObjectives.known.sorted().joined(separator: ", ")))")
        }
        guard names.isEmpty == false else { throw DataError("no objective given (known: \(PretrainingObjectives.known.sorted().joined(separator: ", ")))") }
        dino = names.contains("dino")
        if dino && names.count > 1 {
            throw DataError("objective 'dino' is an image-encoder stage of its own: give it alone (not with \(names.subtracting(["dino"]).sorted().joined(separator: ", ")))")
        }
        contrastive = names.contains("contrastive"); itm = names.contains("itm"); mmmImage = names.contains("mmm_image")
        mmmText = names.contains("mmm_text"); mim = names.contains("mim"); mlm = names.contains("mlm")
    }

    enum CodingKeys: String, CodingKey { case contrastive, itm, mmmImage, mmmText, mim, mlm, dino }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        contrastive = try c.decode(Bool.self, forKey: .contrastive); itm = try c.decode(Bool.self, forKey: .itm)
        mmmImage = try c.decode(Bool.self, forKey: .mmmImage); mmmText = try c.decode(Bool.self, forKey: .mmmText)
        mim = try c.decode(Bool.self, forKey: .mim); mlm = try c.decode(Bool.self, forKey: .mlm)
        dino = try c.decodeIfPresent(Bool.self, forKey: .dino) ?? false   // absent in checkpoints from before DINO
        if dino && (contrastive || itm || mmmImage || mmmText || mim || mlm) {
            throw DecodingError.dataCorruptedError(forKey: .dino, in: c, debugDescription: "dino goes alone, without the other objectives")
        }
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
    /// Whether a source of images alone is read (MIM, DINO).
    public var needsImages: Bool { mim || dino }
}

/// Everything a pretraining run is configured by (also saved in each checkpoint).
public struct PretrainingConfig: Codable, Sendable, Equatable {
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
    /// DINO's settings, used with `objectives` dino (default: `DINOConfig.small`; a run re-sizes the default to
    /// its model's image and patch size).
    public var dino = DINOConfig.smallDefault
    public init() {}

    /// The text stage (paper §3.3, App. B: the text encoder pretrained alone with MLM, RoBERTa's recipe) scaled to
    /// the small model: MLM on text alone, sequences of 40 tokens (the small preset's every position; pairs'
    /// captions get 32), twice the joint run's learning rate, weight decay 0.01 and warm-up over the first 6 %
    /// as RoBERTa's; masking is drawn afresh every time a text is read (RoBERTa's dynamic masking) and there
    /// is no next-sentence objective. RoBERTa's β₂ 0.98 and ε 1e-6 are not taken (AdamW here keeps 0.999, 1e-8).
    public static func textStage(steps: Int) -> PretrainingConfig {
        var c = PretrainingConfig()
        c.steps = steps
        c.objectives.contrastive = false; c.objectives.itm = false; c.objectives.mmmImage = false
        c.objectives.mmmText = false; c.objectives.mim = false
        c.probabilities = [0, 0, 1]
        c.learningRate = 2e-3
        c.weightDecay = 0.01
        c.warmupSteps = max(1, steps * 6 / 100)
        c.data.maxTextLength = 40
        c.evalEvery = steps
        c.checkpointEvery = steps
        return c
    }

    /// The settings of a DINO run of `steps` steps: DINO's optimizer recipe (AdamW, weight decay 0.04, gradient
    /// clip 3.0, warm-up over the first 10 %) with a learning rate of 1e-3 for the small model's batch of 32
    /// (DINO's 5e-4 · batch/256 would be 6e-5, far too slow for a few hundred steps; 5e-4 gave a shape probe of
    /// 0.500 after 300 steps, 1e-3 0.533, 2e-3 0.483), evaluation and checkpoints every quarter of the run.
    public static func dino(steps: Int) -> PretrainingConfig {
        var c = PretrainingConfig()
        c.steps = steps
        c.objectives.dino = true
        c.objectives.contrastive = false; c.objectives.itm = false; c.objectives.mmmImage = false
        c.objectives.mmmText = false; c.objectives.mim = false; c.objectives.mlm = false
        c.probabilities = [0, 1, 0]
        c.learningRate = 1e-3
        c.weightDecay = 0.04
        c.maxGradNorm = 3
        c.warmupSteps = max(1, steps / 10)
        c.evalEvery = max(1, steps / 4)
        c.checkpointEvery = max(1, steps / 4)
        return c
    }

    /// The settings a run starts from: joint pretraining (`nil`), "text-stage" or "dino" (`textStage`, `dino`),
    /// with schedules sized for `steps` (default: the recipe's own: 1,200 for the text stage, 300 for DINO).
    /// `syntheticImages`: whether the images are the built-in synthetic world's, whose DINO colour augmentations
    /// are toned down (`DINOConfig.small`); on other images DINO's own (jitter 0.4/0.4/0.2/0.1, grayscale 0.2,
    /// solarization 0.2).
    public static func recipe(_ name: String?, steps: Int? = nil, syntheticImages: Bool = true) throws -> PretrainingConfig {
        var c: PretrainingConfig
        switch name {
        case nil: c = PretrainingConfig(); if let steps { c.steps = steps }
        case "text-stage": c = .textStage(steps: steps ?? 1200)
        case "dino": c = .dino(steps: steps ?? 300)
        case let r?: throw DataError("recipe must be text-stage or dino, not '\(r)'")
        }
        if !syntheticImages { c.dino.augmentation = c.dino.augmentation.withColour(of: DINOAugmentationConfig()) }
        return c
    }

    /// Settings from the JSON file at `path` laid over `recipe`'s (`PretrainingConfig.recipe`): the fields the
    /// file gives replace the recipe's, nested sections field by field, the rest keep the recipe's values (so a
    /// file with only `{"dino": {...}}` still trains with DINO's optimizer settings). The recipe's schedules are
    /// sized for `steps`, else the file's `steps`, and its DINO colour augmentations follow `syntheticImages`.
    /// Errors name the file and the field.
    public static func load(_ path: String, recipe name: String?, steps: Int? = nil, syntheticImages: Bool = true) throws -> PretrainingConfig {
        let patch = try ConfigError.decode(JSONValue.self, fromFile: path)
        guard case .object(let fields) = patch else { throw ConfigError(path, "expected a JSON object of settings") }
        var fileSteps: Int? = nil
        if case .number(let n)? = fields["steps"], n == n.rounded(), n >= 1, n <= 1e9 { fileSteps = Int(n) }
        let base = try recipe(name, steps: steps ?? fileSteps, syntheticImages: syntheticImages)
        return try ConfigError.decode(PretrainingConfig.self, from: JSONValue.overlaying(patch, on: base), file: path)
    }

    enum CodingKeys: String, CodingKey {
        case steps, batchSize, accumulation, learningRate, weightDecay, warmupSteps, maxGradNorm, probabilities, objectives
        case seed, checkpointEvery, evalEvery, data, gradientCheckpointing, dino
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
        // A partial dino section changes the small model's DINO settings (not DINOConfig()'s ViT-B/16 values).
        dino = try c.overlay(.dino, on: d.dino)
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
        // The DINO section is checked whatever the objectives (its defaults are valid); that its crops fit the
        // model's image size is checked when a DINO run has its model.
        if data.patchSize >= 1 { try dino.validate(k.nested("dino"), patchSize: data.patchSize) }
    }
}

/// What a pretraining task saves beside the engine's state so that a run resumes exactly.
public struct PretrainingTaskState: Codable, Sendable {
    /// Where each data kind's loader stands.
    public var positions: [String: LoaderPosition]
    /// The run's settings (checked when resuming).
    public var config: PretrainingConfig
}

/// Joint pretraining as a task of the training engine: each step draws one data kind by probability and takes
/// its micro-batches from that kind's loader; the model's own loss (the weighted sum of the objectives that
/// batch supports) is the loss.
public final class PretrainingTask: TrainingTask {
    public let model: FlavaForPreTraining
    public let tokenizer: BertTokenizer
    public let config: PretrainingConfig
    let vocabFile: String
    var loaders: [String: DataLoader<PretrainingItem, PretrainingBatch>] = [:]
    let sources: [String: DataSource]
    /// Held-out evaluation (nil: none).
    let evaluation: ((FlavaModel) throws -> [String: Double])?
    /// The job's ranks: each takes its slice of every global batch of `config.batchSize`.
    public let communicator: Communicator

    /// `sources`: "pairs", "images", "text" (missing kinds are never drawn); `vocabFile` is copied into every
    /// checkpoint; `evaluation` runs on the model's FlavaModel every `evalEvery` steps. Data-parallel
    /// (`communicator` of several ranks), `config.batchSize` is the global batch and must divide evenly.
    public init(model: FlavaForPreTraining, tokenizer: BertTokenizer, vocabFile: String, config: PretrainingConfig,
                sources: [String: DataSource], evaluation: ((FlavaModel) throws -> [String: Double])? = nil,
                communicator: Communicator = LocalCommunicator.shared) throws {
        guard config.batchSize % communicator.size == 0 else {
            throw DataParallelError("the batch size \(config.batchSize) (the global batch) does not divide evenly among \(communicator.size) ranks")
        }
        self.communicator = communicator
        self.model = model
        self.tokenizer = tokenizer
        self.vocabFile = vocabFile
        self.config = config
        self.sources = sources
        self.evaluation = evaluation
    }

    /// The engine settings of this task's PretrainingConfig, writing into `output`.
    public static func settings(_ c: PretrainingConfig, output: String?) -> TrainingSettings {
        var s = TrainingSettings(steps: c.steps, learningRate: c.learningRate, weightDecay: c.weightDecay,
                                 warmupSteps: c.warmupSteps, maxGradNorm: c.maxGradNorm, seed: c.seed)
        s.accumulation = c.accumulation
        s.evalEvery = c.evalEvery
        s.checkpointEvery = c.checkpointEvery
        s.output = output
        return s
    }

    public var trainableParameters: [(key: String, variable: Variable)] { model.namedParameters() }
    /// Each rank's losses are its shares of the global batch's (normalized by global counts).
    public var crossRankLoss: CrossRankLoss { .sum }
    public func setTraining(_ on: Bool) { model.train(on) }

    func loader(_ kind: String, from position: LoaderPosition) throws -> DataLoader<PretrainingItem, PretrainingBatch> {
        guard let src = sources[kind] else { throw DataError("no \(kind) data source") }
        let batcher = PretrainingBatcher(config: config.data, tokenizer: tokenizer)
        var o = LoaderOptions(batchSize: config.batchSize, shuffleBuffer: 256, seed: config.seed &+ (kind == "pairs" ? 1 : kind == "images" ? 2 : 3))
        // Every rank reads the same stream and transforms its slice of each global batch (one process: all of it).
        o.shard = (communicator.rank, communicator.size)
        let pairs = kind == "pairs"
        return try DataLoader(source: src, options: o, resumeFrom: position,
            transform: { r, g in try batcher.item(r, needImage: kind != "text", needText: kind != "images", wholeWord: pairs, &g) },
            collate: { items, g in batcher.slice(items, pairs: pairs, g) })
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

    /// Starts (or restarts) the loaders at `positions`.
    public func start(positions: [String: LoaderPosition] = [:]) throws {
        guard !kinds.isEmpty else { throw DataError("no data for the selected objectives") }
        stop()
        for (k, _) in kinds { loaders[k] = try loader(k, from: positions[k] ?? LoaderPosition()) }
    }

    public func stop() { loaders.values.forEach { $0.stop() }; loaders = [:] }

    func input(_ b: PretrainingBatch) -> FlavaPreTrainingInput {
        FlavaPreTrainingInput(inputIds: b.inputIds, inputIdsMasked: b.inputIdsMasked, attentionMask: b.attentionMask,
                              pixelValues: b.pixelValues, codebookPixelValues: b.codebookPixelValues,
                              boolMaskedPos: b.boolMaskedPos, mlmLabels: b.mlmLabels, itmLabels: b.itmLabels)
    }

    public func beginStep(_ step: Int, generator: inout SeededGenerator) throws -> String? {
        if loaders.isEmpty { try start() }   // a fresh run starts from the beginning of every source
        let u = Double(generator.nextUniform())
        var acc = 0.0
        for (k, p) in kinds { acc += p; if u < acc { return k } }
        return kinds.last!.0
    }

    public func microBatch(step: Int, kind: String?, generator: inout SeededGenerator) throws -> MicroBatchLoss {
        let kind = kind!
        guard let slice = try loaders[kind]!.next() else { throw DataError("\(kind) data ran out") }
        let batch = PretrainingBatcher(config: config.data, tokenizer: tokenizer).finish(slice, communicator: communicator)
        var inp = input(batch)
        inp.communicator = communicator
        let out = model(inp)
        guard let loss = out.loss else { throw DataError("no loss for a \(kind) batch with the selected objectives") }
        return MicroBatchLoss(loss: loss, losses: out.losses.mapValues { Double($0.value.scalarValue) }, samples: batch.count)
    }

    public func evaluate(step: Int) throws -> [String: Double]? { try evaluation?(model.flava) }

    /// Image→text R@1 plus zero-shot accuracy (where the evaluation has them).
    public func score(_ e: [String: Double]) -> Double { (e["image_to_text_R@1"] ?? 0) + (e["zero_shot_accuracy"] ?? 0) }

    /// The model in the Hugging Face layout and vocab.txt.
    public func saveModel(to dir: String) throws {
        try FlavaCheckpoint.save(model, to: dir)
        try FileManager.default.copyItem(atPath: vocabFile, toPath: dir + "/vocab.txt")
    }

    public func loadModel(from dir: String) throws {
        let (m, _) = try FlavaCheckpoint.loadPreTraining(dir)
        guard model.copyParameters(from: m) else {
            throw ConfigError(dir, "was trained with another model (its config.json differs from this run's model and vocabulary)")
        }
    }

    public func state() throws -> PretrainingTaskState {
        PretrainingTaskState(positions: loaders.mapValues { $0.position }, config: config)
    }

    public func restore(_ state: PretrainingTaskState, from dir: String) throws {
        try state.config.validate(file: dir + "/trainer_state.json")
        try start(positions: state.positions)
    }
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
