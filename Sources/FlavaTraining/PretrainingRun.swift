// A whole pretraining run, as `flava pretrain` does it and a Swift program can: check every setting and open
// every data source first; a WordPiece vocabulary trained on the run's own text (unless one is given); the
// model from a preset, from any config.json, or continued from a checkpoint folder; a visual codebook for the
// MIM / MMM-image targets (given, taken from that folder, or trained on the run's images); the training loop
// with held-out evaluation, the best checkpoint, periodic atomic checkpoints, metrics.jsonl and TensorBoard.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN
import FlavaDistributed
import FlavaModel
import FlavaData
import FlavaEval

/// What a pretraining run is made of.
public struct PretrainingRunOptions: Sendable {
    /// Where the model comes from.
    public enum Model: Sendable, Equatable {
        /// A named size (`FlavaTrainingPresets`: "small", "tiny"), freshly initialized.
        case preset(String)
        /// Any FlavaConfig (a config.json path, the paper's full size say), freshly initialized.
        case config(String)
        /// Continue pretraining a checkpoint folder: its config, weights, vocab.txt and, when it has them, its codebook.
        case from(String)
    }

    /// Run folder (checkpoints, metrics.jsonl, tensorboard/, vocab.txt, codebook/).
    public var output = "runs/pretrain"
    /// Steps, batch, schedule, objectives, probabilities, data settings.
    public var settings = PretrainingConfig()
    /// Where `settings` came from, for error messages.
    public var settingsOrigin = "pretraining settings"
    public var model = Model.preset("small")
    /// Source specs (`dataSource(spec:)`) of image–text pairs, images alone and text alone.
    public var pairs = "synthetic:pairs", images = "synthetic:images", text = "synthetic:text"
    /// Held-out pairs for retrieval evaluation (default: the synthetic world's held-out split when training on it).
    public var evalPairs: String?
    /// Unimodal initialization (paper §3.3): encoders from MLM-only / MIM-only checkpoints.
    public var initText: String?, initImage: String?
    /// An existing codebook folder; otherwise one is taken from `.from` or trained for `codebookSteps`.
    public var codebook: String?
    public var codebookSteps = 100
    /// A vocab.txt; otherwise `.from`'s, a resumed checkpoint's, or one trained on the run's own text.
    public var vocab: String?
    /// Size of a trained vocabulary (nil: 400 on the synthetic world, 8,000 on other text).
    public var vocabularySize: Int?
    /// Continue this run from a checkpoint folder written by it (exact resume).
    public var resume: String?
    /// Loss weights set in the model config (mim, mlm, global_contrastive, itm, mmm_image, mmm_text).
    public var lossWeights: [String: Double] = [:]
    /// Data-parallel runs: shard AdamW's state across the ranks (ZeRO stage 1).
    public var shardOptimizer = false

    public init() {}
}

/// What a run reports.
public struct PretrainingResult: Sendable {
    /// The best checkpoint's held-out metrics (the last evaluation when none was better).
    public var evaluation: [String: Double]
    /// The chance level of each metric on the evaluation set used.
    public var chance: [String: Double]
    public var steps: Int
    public var seconds: Double
    /// The folder of the best checkpoint, if any evaluation ran.
    public var bestCheckpoint: String?
    /// The evaluation of the starting model, where a run measures it (DINO: the encoder before training).
    public var startEvaluation: [String: Double]? = nil
    /// The last step's logged values (DINO: the teacher's entropies against log K).
    public var lastValues: [String: Double]? = nil
}

/// What a run tells its caller while it works.
public enum PretrainingEvent {
    case message(String)
    case codebookStep(Int, total: Int)
    case step(TrainingLogEntry, total: Int)
}

/// A pretraining run.
public final class PretrainingRun {
    public let options: PretrainingRunOptions
    /// The job's ranks (one process by default; `DataParallel.world()` under mpirun). Every rank runs the same
    /// run; rank 0 prepares the vocabulary and codebook, writes the run folder and reports.
    public let communicator: Communicator
    public static let lossWeightNames = ["mim", "mlm", "global_contrastive", "itm", "mmm_image", "mmm_text"]

    public init(_ options: PretrainingRunOptions, communicator: Communicator = LocalCommunicator.shared) {
        self.options = options; self.communicator = communicator
    }

    /// Whether a source spec names the built-in synthetic world.
    public static func isSynthetic(_ spec: String) -> Bool { spec.hasPrefix("synthetic") }

    /// Runs everything; `events` sees progress.
    public func run(_ events: @escaping (PretrainingEvent) -> Void = { _ in }) throws -> PretrainingResult {
        let start = Date()
        let o = options
        var cfg = o.settings
        try cfg.validate(file: o.settingsOrigin)
        for (name, w) in o.lossWeights {
            guard PretrainingRun.lossWeightNames.contains(name) else {
                throw ConfigError("loss weights", "unknown loss '\(name)' (names: \(PretrainingRun.lossWeightNames.joined(separator: ", ")))")
            }
            try ConfigChecker(file: "loss weights").number(name, w, in: 0...1e6)
        }
        let comm = communicator
        guard cfg.batchSize % comm.size == 0 else {
            throw DataParallelError("--batch-size \(cfg.batchSize) (the global batch) does not divide evenly among \(comm.size) ranks")
        }
        guard comm.agree(cfg.batchSize), comm.agree(cfg.steps), comm.agree(Int(truncatingIfNeeded: cfg.seed)) else {
            throw DataParallelError("the ranks were started with different settings (batch size, steps or seed)")
        }
        let needed = (pairs: cfg.objectives.needsPairs, images: cfg.objectives.needsImages, text: cfg.objectives.mlm)
        // 0. Every source and file is opened and checked before any work.
        for (spec, used) in [(o.pairs, needed.pairs), (o.images, needed.images), (o.text, needed.text)] where used && !PretrainingRun.isSynthetic(spec) {
            try PretrainingRun.checkNotEmpty(spec, seed: cfg.seed)
        }
        if let e = o.evalPairs { try PretrainingRun.checkNotEmpty(e, seed: cfg.seed) }
        if let r = o.resume { _ = try TrainingCheckpoint.statePath(in: r) }
        for path in [o.initText, o.initImage, o.codebook].compactMap({ $0 }) {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
                throw ConfigError(path, "no such checkpoint folder")
            }
        }
        if case .preset(let name) = o.model, FlavaTrainingPresets.config(named: name, vocabSize: 2) == nil {
            throw ConfigError("model size", "'\(name)' is not a preset (small, tiny)")
        }
        if case .config(let path) = o.model { _ = try FlavaConfig.load(path) }
        if case .from(let dir) = o.model { _ = try FlavaCheckpoint.config(in: dir) }
        try FileManager.default.createDirectory(atPath: o.output, withIntermediateDirectories: true)
        let seed = cfg.seed
        let world = SyntheticWorld(seed: seed, imageSize: cfg.data.imageSize)

        // 1. Vocabulary.
        let vocabFile = o.output + "/vocab.txt"
        if comm.isRoot { try prepareVocabulary(at: vocabFile, world: world, events) }
        comm.barrier()
        let tokenizer = try BertTokenizer(vocabFile: vocabFile)

        // 2. Model (and codebook).
        var fromReport: LoadReport? = nil
        let model: FlavaForPreTraining
        func adjust(_ c: inout FlavaConfig) {
            cfg.objectives.apply(to: &c)
            for (name, w) in o.lossWeights {
                switch name {
                case "mim": c.mimWeight = w
                case "mlm": c.mlmWeight = w
                case "global_contrastive": c.globalContrastiveWeight = w
                case "itm": c.itmWeight = w
                case "mmm_image": c.mmmImageWeight = w
                default: c.mmmTextWeight = w
                }
            }
        }
        switch o.model {
        case .preset(let name):
            var c = FlavaTrainingPresets.config(named: name, vocabSize: tokenizer.count)!   // the name was checked above
            adjust(&c)
            var ini = Initializer(seed: seed)
            model = FlavaForPreTraining(c, init: &ini)
        case .config(let path):
            var c = try FlavaConfig.load(path)
            adjust(&c)
            var ini = Initializer(range: Float(c.initializerRange), seed: seed)
            model = FlavaForPreTraining(c, init: &ini)
        case .from(let dir):
            let (m, report) = try FlavaCheckpoint.loadPreTraining(dir, seed: seed, adjust: adjust)
            model = m; fromReport = report
            events(.message("continuing from \(dir) (\(model.parameterCount) parameters)"))
        }
        model.setGradientCheckpointing(cfg.gradientCheckpointing)
        let tc = model.config.textConfig
        try tokenizer.checkFits(vocabularySize: tc.vocabSize)
        cfg.data.imageSize = model.config.imageConfig.imageSize
        cfg.data.patchSize = model.config.imageConfig.patchSize
        cfg.data.maxTextLength = min(cfg.data.maxTextLength, tc.maxPositionEmbeddings)
        try cfg.data.validate(ConfigChecker(file: "the model's image size").nested("data"))

        // The world at the model's image size (the vocabulary above needs only its text).
        let world2 = SyntheticWorld(seed: seed, imageSize: cfg.data.imageSize)
        if cfg.objectives.needsCodebook && o.resume == nil {
            try prepareCodebook(model, fromReport: fromReport, data: cfg.data, world: world2, seed: seed, events)
        }
        func source(_ spec: String, _ kind: SyntheticSource.Kind) throws -> DataSource {
            PretrainingRun.isSynthetic(spec) ? SyntheticSource(world: world2, kind: kind, length: 20_000)
                : try dataSource(spec: spec, imageSize: cfg.data.imageSize, seed: seed)
        }
        let sources: [String: DataSource] = ["pairs": try source(o.pairs, .pairs), "images": try source(o.images, .images),
                                             "text": try source(o.text, .text)]
        let syntheticEval = PretrainingRun.isSynthetic(o.pairs) && o.evalPairs == nil
        try initializeEncoders(model, events)
        if cfg.objectives.dino {
            return try runDINO(model, config: cfg, world: world2, source: sources["images"]!, vocabFile: vocabFile, start: start, events)
        }

        let evalSource = try o.evalPairs.map { try dataSource(spec: $0, imageSize: cfg.data.imageSize) }
        let data = cfg.data
        let evaluation: ((FlavaModel) throws -> [String: Double])?
        if let evalSource {
            evaluation = { try RetrievalEvaluation.run(model: $0, tokenizer: tokenizer, source: evalSource, data: data) }
        } else if syntheticEval {
            evaluation = { try SyntheticEvaluation.run(model: $0, tokenizer: tokenizer, world: world2, data: data) }
        } else {
            evaluation = nil
        }
        let task = try PretrainingTask(model: model, tokenizer: tokenizer, vocabFile: vocabFile, config: cfg, sources: sources,
                                       evaluation: evaluation, communicator: comm)
        defer { task.stop() }
        // 3. Train, on the engine.
        return try train(task, config: cfg, start: start, events)
    }

    /// Runs `task` on the training engine to the end: metrics.jsonl, TensorBoard and the caller's events through
    /// its callbacks (rank 0's), resuming from `options.resume` when given; `fresh` runs before the first step of
    /// a run that does not resume and gives the result's `startEvaluation`. Used by joint pretraining and DINO.
    func train<Task: TrainingTask>(_ task: Task, config cfg: PretrainingConfig, start: Date,
                                   _ events: @escaping (PretrainingEvent) -> Void,
                                   fresh: () throws -> [String: Double]? = { nil }) throws -> PretrainingResult {
        let o = options, comm = communicator
        var settings = PretrainingTask.settings(cfg, output: o.output)
        settings.shardOptimizer = o.shardOptimizer
        var last: [String: Double]? = nil
        let callbacks: [TrainingCallback] = comm.isRoot ? [
            try MetricsLogCallback(path: o.output + "/metrics.jsonl"),
            try TensorBoardCallback(directory: o.output + "/tensorboard"),
            StepCallback { e, total in last = e.values; events(.step(e, total: total)) },
        ] : []
        let engine = try TrainingEngine(task: task, settings: settings, callbacks: callbacks, communicator: comm)
        var startEvaluation: [String: Double]? = nil
        if let r = o.resume {
            try engine.resume(from: r)   // restarts the loaders where the checkpoint left them
            events(.message("resumed from \(r) at step \(engine.step)"))
        } else if comm.isRoot {
            startEvaluation = try fresh()
        }
        let outcome = try engine.run()
        if let h = outcome.replicaChecksum {
            events(.message(String(format: "weights bit-identical on all %d ranks (checksum %016llx)", comm.size, h)))
        }
        let eval = outcome.bestEvaluation ?? outcome.lastEvaluation ?? [:]
        var result = PretrainingResult(evaluation: eval, chance: PretrainingRun.chance(of: eval), steps: outcome.steps,
                                       seconds: Date().timeIntervalSince(start), bestCheckpoint: outcome.bestCheckpoint)
        result.startEvaluation = startEvaluation
        result.lastValues = last
        return result
    }

    /// Chance levels of the evaluation metrics: recall@K among N candidates is K/N, zero-shot is 1/classes.
    static func chance(of eval: [String: Double]) -> [String: Double] {
        var out: [String: Double] = [:]
        if let n = eval["retrieval_candidates"], n > 0 {
            for (k, _) in eval where k.contains("_R@") {
                if let kk = Double(k.split(separator: "@").last ?? "") { out[k] = min(1, kk / n) }
            }
        }
        if let c = eval["zero_shot_chance"] { out["zero_shot_accuracy"] = c }
        if let c = eval["shape_probe_chance"] { out["shape_probe_accuracy"] = c }
        return out
    }

    /// A source spec that opens and yields at least one record, or an error naming it.
    static func checkNotEmpty(_ spec: String, seed: UInt64) throws {
        let source = try dataSource(spec: spec, seed: seed)
        guard try source.stream(epoch: 0, seed: seed).next() != nil else { throw DataError("\(spec): the dataset is empty") }
    }

    /// vocab.txt in the run folder: given, the checkpoint's, kept from an earlier start of this run, or trained.
    func prepareVocabulary(at vocabFile: String, world: SyntheticWorld, _ events: (PretrainingEvent) -> Void) throws {
        let o = options
        var given = o.vocab
        if given == nil, case .from(let dir) = o.model { given = dir + "/vocab.txt" }
        if given == nil, let r = o.resume, FileManager.default.fileExists(atPath: r + "/vocab.txt") { given = r + "/vocab.txt" }
        if let v = given {
            guard FileManager.default.fileExists(atPath: v) else { throw TokenizerError("\(v): no such vocabulary file") }
            if URL(fileURLWithPath: v).standardizedFileURL != URL(fileURLWithPath: vocabFile).standardizedFileURL {
                try? FileManager.default.removeItem(atPath: vocabFile)
                try FileManager.default.copyItem(atPath: v, toPath: vocabFile)
            }
            return
        }
        if FileManager.default.fileExists(atPath: vocabFile) { return }
        let needed = o.settings.objectives
        // Pairs' captions, then the text source's sentences, for the sources the objectives use.
        // An image-only run (MIM, DINO) still writes a whole FLAVA folder: its vocabulary comes from the captions.
        var specs = [(o.pairs, needed.needsPairs, false), (o.text, needed.mlm, true)].filter(\.1)
        if specs.isEmpty { specs = [(o.pairs, true, false)] }
        var corpus: [String] = []
        var describe: [String] = []
        for (spec, _, isText) in specs {
            if PretrainingRun.isSynthetic(spec) {
                // The synthetic world's text: every caption of 4,000 scenes, or 2,000 unpaired sentences.
                corpus += isText ? (0..<2000).map { world.unpairedText($0) } : (0..<4000).flatMap { world.sample($0).captions }
                describe.append(isText ? "the synthetic world's sentences" : "the synthetic world's captions")
            } else {
                let stream = try dataSource(spec: spec, seed: o.settings.seed).stream(epoch: 0, seed: 0)
                var n = 0
                while n < 50_000, let r = try stream.next() {
                    if let t = r.text { corpus.append(t); n += 1 }
                }
                describe.append("\(n) texts of \(spec)")
            }
        }
        guard !corpus.isEmpty else { throw DataError("no text to train a vocabulary on (give --vocab)") }
        let allSynthetic = specs.allSatisfy { PretrainingRun.isSynthetic($0.0) }
        let trainer = WordPieceTrainer(vocabSize: o.vocabularySize ?? (allSynthetic ? 400 : 8000), minFrequency: 2)
        let words = trainer.train(wordCounts: trainer.countWords(corpus))
        let text = Data((words.joined(separator: "\n") + "\n").utf8)
        try AtomicFile.write(to: vocabFile) { sink in try text.withUnsafeBytes { try sink.write($0) } }
        events(.message("vocabulary: \(words.count) WordPiece tokens trained on \(describe.joined(separator: " and "))"))
    }

    /// Gives the model its frozen codebook: given, kept from `.from`, or trained on the run's images.
    func prepareCodebook(_ model: FlavaForPreTraining, fromReport: LoadReport?, data: PretrainingDataConfig, world: SyntheticWorld,
                         seed: UInt64, _ events: @escaping (PretrainingEvent) -> Void) throws {
        let o = options
        let vocabulary = model.config.imageConfig.vocabSize
        if let cb = o.codebook {
            let loaded = try FlavaCheckpoint.loadCodebook(cb)
            guard loaded.config.vocabSize == vocabulary else {
                throw ConfigError(cb, "codebook has \(loaded.config.vocabSize) codes, the model predicts \(vocabulary)")
            }
            model.imageCodebook = loaded
        } else if let report = fromReport, model.imageCodebook != nil, !report.missing.contains(where: { $0.hasPrefix("image_codebook.") }) {
            events(.message("codebook: the one in the checkpoint"))
        } else {
            var cc = CodebookTrainingConfig.small
            cc.steps = o.codebookSteps; cc.seed = seed
            cc.codebook = model.config.imageCodebookConfig; cc.codebook.freeze = false
            cc.decoder = CodebookTrainingConfig.mirroredDecoder(cc.codebook)
            cc.imageSize = data.codebookSize
            try cc.validate(file: "the codebook for this run")
            guard communicator.isRoot else {
                // Rank 0 trains it (below) while the others wait, then every rank reads the same files.
                communicator.barrier()
                model.imageCodebook = try FlavaCheckpoint.loadCodebook(o.output + "/codebook")
                for (_, p) in model.imageCodebook!.namedParameters() { p.freeze() }
                return
            }
            let ct = CodebookTrainer(config: cc)
            // Synthetic: the world at the model's image size, k-means on images the training steps do not use.
            let images = PretrainingRun.isSynthetic(o.images)
                ? CodebookImages(world: world, processor: data.processor, evalCount: 0, kmeansStart: 1_000_000)
                : try CodebookImages(images: o.images, heldOut: nil, size: cc.imageSize, seed: seed, evalCount: 1, processor: data.processor)
            ct.initializeCodes(from: try images.kmeansBatch(cc.kmeansImages))
            let engine = try TrainingEngine(task: CodebookTrainingTask(trainer: ct, images: images), settings: CodebookTrainer.settings(cc),
                                            callbacks: [StepCallback { e, total in events(.codebookStep(e.step, total: total)) }])
            _ = try engine.run()
            try ct.save(to: o.output + "/codebook")
            communicator.barrier()
            model.imageCodebook = try FlavaCheckpoint.loadCodebook(o.output + "/codebook")
        }
        for (_, p) in model.imageCodebook!.namedParameters() { p.freeze() }
    }

    /// Unimodal initialization (paper §3.3): encoders from MLM-only / MIM-only runs, the rest as it is.
    func initializeEncoders(_ model: FlavaForPreTraining, _ events: (PretrainingEvent) -> Void) throws {
        for (dir, isText) in [(options.initText, true), (options.initImage, false)] {
            guard let dir else { continue }
            if !isText, DINOTask.isCheckpoint(dir) {
                try DINOTask.loadTeacherEncoder(model.flava.imageModel, fromCheckpoint: dir)
                events(.message("initialized the image encoder from the DINO teacher of \(dir)"))
                continue
            }
            let (src, _) = try FlavaCheckpoint.loadPreTraining(dir)
            let from: Module = isText ? src.flava.textModel : src.flava.imageModel
            let to: Module = isText ? model.flava.textModel : model.flava.imageModel
            guard to.copyParameters(from: from) else {
                throw ConfigError(dir, "its encoder does not have this model's shape (same model size and vocabulary needed)")
            }
            events(.message("initialized the \(isText ? "text" : "image") encoder from \(dir)"))
        }
    }
}

extension PretrainingRun {
    /// The DINO stage (`objectives` dino) on the run's image source, on the training engine: the teacher's shape
    /// probe on held-out scenes before training and at every evaluation when the images are the synthetic world's.
    func runDINO(_ model: FlavaForPreTraining, config: PretrainingConfig, world: SyntheticWorld, source: DataSource, vocabFile: String,
                 start: Date, _ events: @escaping (PretrainingEvent) -> Void) throws -> PretrainingResult {
        var cfg = config
        let ic = model.config.imageConfig
        let preset = DINOConfig.smallDefault.augmentation
        // Crops left at the 64-pixel default follow the model's image size.
        if cfg.dino.augmentation.globalSize == preset.globalSize && cfg.dino.augmentation.localSize == preset.localSize {
            let sized = DINOAugmentationConfig(imageSize: ic.imageSize, patchSize: ic.patchSize)
            cfg.dino.augmentation.globalSize = sized.globalSize; cfg.dino.augmentation.localSize = sized.localSize
        }
        let synthetic = PretrainingRun.isSynthetic(options.images)
        let a = cfg.dino.augmentation
        events(.message("DINO crops: 2 × \(a.globalSize) px + \(a.localCrops) × \(a.localSize) px; colour jitter " +
                        "\(a.brightness)/\(a.contrast)/\(a.saturation)/\(a.hue) (p \(a.jitterProbability)), grayscale p " +
                        "\(a.grayscaleProbability), solarization p \(a.solarizationProbability)" +
                        (synthetic && a.hasColour(of: preset) ? " (toned down for the synthetic world)" : "")))
        let processor = cfg.data.processor
        let evaluation: ((FlavaImageModel) throws -> [String: Double])? = synthetic
            ? { DINOEvaluation.shapeProbe($0, world: world, processor: processor) } : nil
        let task = try DINOTask(model: model, config: cfg, source: source, vocabFile: vocabFile, evaluation: evaluation,
                                communicator: communicator)
        defer { task.stop() }
        return try train(task, config: cfg, start: start, events) {
            try evaluation.map { e in try withNoGrad { try e(task.teacher) } }
        }
    }
}

extension FileHandle {
    /// Opens (creating if needed) a file for appending.
    public static func forAppending(_ path: String) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw DataError("\(path): cannot open for writing") }
        h.seekToEndOfFile()
        return h
    }
}
