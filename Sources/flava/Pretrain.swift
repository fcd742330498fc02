// flava pretrain: joint FLAVA pretraining; with no options, a small FLAVA on the built-in synthetic world
// (first a vocabulary and a codebook), then held-out zero-shot results against chance.
import ArgumentParser
import Foundation
import FlavaKit

struct Pretrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pretrain FLAVA (contrastive, ITM, MMM, MIM, MLM); by default a small model on the synthetic world.",
        discussion: """
        Each step draws pairs / images / text by --probabilities and takes a full batch. Checkpoints (Hugging Face \
        layout + optimizer and trainer state) go to OUTPUT/checkpoint-STEP, written atomically; --resume DIR \
        continues a run exactly. Metrics go to OUTPUT/metrics.jsonl.
        """)

    @Option(help: "Run folder.") var output = "runs/pretrain"
    @Option(help: "A JSON file of PretrainingConfig fields (steps, batchSize, learningRate, probabilities, objectives, …); flags override it.") var config: String?
    @Option(help: "Optimizer steps (default 1200).") var steps: Int?
    @Option(help: "Batch size (default 32).") var batchSize: Int?
    @Option(help: "Micro-batches accumulated per step (default 1).") var accumulation: Int?
    @Option(help: "Peak learning rate (default 1e-3).") var learningRate: Float?
    @Option(help: "Warmup steps, then cosine decay (default 100).") var warmup: Int?
    @Option(help: "Comma-separated objectives (contrastive,itm,mmm_image,mmm_text,mim,mlm) or all.") var objectives: String?
    @Option(help: "Probabilities of pairs,images,text (default 0.70,0.15,0.15).") var probabilities: String?
    @Option(help: "Image-text pairs source spec (default: the synthetic world).") var pairs = "synthetic:pairs"
    @Option(help: "Images-alone source spec.") var images = "synthetic:images"
    @Option(help: "Text-alone source spec.") var text = "synthetic:text"
    @Option(help: "Held-out pairs for retrieval evaluation (default: the synthetic world's held-out split when training on it).") var evalPairs: String?
    @Option(help: "Initialize the text encoder from this checkpoint (e.g. an MLM-only run).") var initText: String?
    @Option(help: "Initialize the image encoder from this checkpoint (e.g. a MIM-only run).") var initImage: String?
    @Option(help: "An existing codebook folder (default: train one first).") var codebook: String?
    @Option(help: "Codebook training steps when none is given.") var codebookSteps = 100
    @Option(help: "A vocab.txt (default: train a WordPiece vocabulary on the data).") var vocab: String?
    @Option(help: "Evaluate every N steps (default 200).") var evalEvery: Int?
    @Option(help: "Checkpoint every N steps (default 400).") var checkpointEvery: Int?
    @Option(help: "Continue from this checkpoint folder.") var resume: String?
    @Option(help: "Seed (default 0).") var seed: UInt64?
    @Option(help: "Write a JSON summary here.") var summary: String?
    @Option(help: "Model size: small (default) or tiny (for smoke tests).") var size = "small"
    @Option(help: "Loss weights of the model config, e.g. mim=0.5,itm=2 (names: mim, mlm, global_contrastive, itm, mmm_image, mmm_text).") var lossWeights: String?

    func run() throws {
        let start = Date()
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        var cfg = PretrainingConfig()
        if let path = config { cfg = try ConfigError.decode(PretrainingConfig.self, fromFile: path) }
        if let p = probabilities {
            let probs = p.split(separator: ",").compactMap { Double($0) }
            guard probs.count == 3, probs.allSatisfy({ $0 >= 0 }), probs.reduce(0, +) > 0 else {
                throw ValidationError("--probabilities needs three non-negative numbers (pairs,images,text)")
            }
            cfg.probabilities = probs
        }
        if let v = steps { cfg.steps = v }
        if let v = batchSize { cfg.batchSize = v }
        if let v = accumulation { cfg.accumulation = v }
        if let v = learningRate { cfg.learningRate = v }
        if let v = warmup { cfg.warmupSteps = v }
        if let v = objectives { cfg.objectives = try PretrainingObjectives(v) }
        if let v = seed { cfg.seed = v }
        if let v = evalEvery { cfg.evalEvery = v }
        if let v = checkpointEvery { cfg.checkpointEvery = v }
        try cfg.validate(file: config ?? "pretraining settings")
        let steps = cfg.steps, seed = cfg.seed, evalEvery = cfg.evalEvery, checkpointEvery = cfg.checkpointEvery
        var world = SyntheticWorld(seed: seed, imageSize: cfg.data.imageSize)

        // 1. Vocabulary.
        let vocabFile = output + "/vocab.txt"
        if let v = vocab { if v != vocabFile { try? FileManager.default.removeItem(atPath: vocabFile); try FileManager.default.copyItem(atPath: v, toPath: vocabFile) } }
        else if !FileManager.default.fileExists(atPath: vocabFile) {
            let trainer = WordPieceTrainer(vocabSize: 400, minFrequency: 2)
            let corpus = (0..<4000).flatMap { world.sample($0).captions } + (0..<2000).map { world.unpairedText($0) }
            let words = trainer.train(wordCounts: trainer.countWords(corpus))
            try (words.joined(separator: "\n") + "\n").write(toFile: vocabFile, atomically: true, encoding: .utf8)
            print("vocabulary: \(words.count) WordPiece tokens trained on the synthetic captions")
        }
        let tokenizer = try BertTokenizer(vocabFile: vocabFile)

        // 2. Model (and codebook).
        guard var config = FlavaTrainingPresets.config(named: size, vocabSize: tokenizer.count) else {
            throw ValidationError("--size must be small or tiny")
        }
        cfg.data = PretrainingDataConfig(imageSize: config.imageConfig.imageSize, patchSize: config.imageConfig.patchSize, maxTextLength: 32)
        cfg.objectives.apply(to: &config)
        for pair in (lossWeights ?? "").split(separator: ",") where !pair.isEmpty {
            let kv = pair.split(separator: "=")
            guard kv.count == 2, let w = Double(kv[1]), w >= 0 else { throw ValidationError("--loss-weights: '\(pair)' is not name=weight") }
            switch kv[0] {
            case "mim": config.mimWeight = w
            case "mlm": config.mlmWeight = w
            case "global_contrastive": config.globalContrastiveWeight = w
            case "itm": config.itmWeight = w
            case "mmm_image": config.mmmImageWeight = w
            case "mmm_text": config.mmmTextWeight = w
            default: throw ValidationError("--loss-weights: unknown loss '\(kv[0])'")
            }
        }
        world = SyntheticWorld(seed: seed, imageSize: cfg.data.imageSize)
        var ini = Initializer(seed: seed)
        let model = FlavaForPreTraining(config, init: &ini)
        if cfg.objectives.needsCodebook && resume == nil {
            if let cb = codebook {
                let loaded = try FlavaCheckpoint.loadCodebook(cb)
                guard loaded.config.vocabSize == config.imageConfig.vocabSize else {
                    throw ValidationError("codebook has \(loaded.config.vocabSize) codes, the model predicts \(config.imageConfig.vocabSize)")
                }
                model.imageCodebook = loaded
            } else {
                var cc = CodebookTrainingConfig.small
                cc.steps = codebookSteps; cc.seed = seed
                cc.codebook = config.imageCodebookConfig; cc.codebook.freeze = false
                cc.decoder = CodebookTrainingConfig.mirroredDecoder(cc.codebook)
                cc.imageSize = cfg.data.codebookSize
                try cc.validate()
                let ct = CodebookTrainer(config: cc)
                let proc = cfg.data.processor
                func images(_ range: Range<Int>) -> Tensor {
                    ShapeKernel.stack(range.map { proc.codebookPixelValues(world.unpairedImage($0)) })
                }
                // k-means start on images the training steps below do not use.
                ct.initializeCodes(from: images(1_000_000..<(1_000_000 + cc.kmeansImages)))
                let bar = ProgressBar(total: cc.steps, label: "codebook")
                for s in 0..<cc.steps {
                    let batch = images((s * cc.batchSize)..<((s + 1) * cc.batchSize))
                    _ = ct.step(batch, step: s)
                    bar.update(s + 1)
                }
                try ct.save(to: output + "/codebook")
                let cb = try FlavaCheckpoint.loadCodebook(output + "/codebook")
                model.imageCodebook = cb
            }
            for (_, p) in model.imageCodebook!.namedParameters() { p.freeze() }
        }
        func source(_ spec: String, _ kind: SyntheticSource.Kind) throws -> DataSource {
            spec.hasPrefix("synthetic") ? SyntheticSource(world: world, kind: kind, length: 20_000)
                : try dataSource(spec: spec, imageSize: cfg.data.imageSize, seed: seed)
        }
        let sources: [String: DataSource] = ["pairs": try source(pairs, .pairs), "images": try source(images, .images),
                                             "text": try source(text, .text)]
        let syntheticEval = pairs.hasPrefix("synthetic") && evalPairs == nil
        // Unimodal initialization (paper §3.3): encoders from MLM-only / MIM-only runs, the rest fresh.
        for (dir, pick) in [(initText, { (m: FlavaModel) -> Module in m.textModel }), (initImage, { (m: FlavaModel) -> Module in m.imageModel })] {
            guard let dir else { continue }
            let (src, _) = try FlavaCheckpoint.loadPreTraining(dir)
            let from = pick(src.flava).namedParameters(), to = pick(model.flava).namedParameters()
            guard from.map(\.key) == to.map(\.key), zip(from, to).allSatisfy({ $0.variable.shape == $1.variable.shape }) else {
                throw ConfigError(dir, "its encoder does not have this model's shape (same --size and vocabulary needed)")
            }
            for (a, b) in zip(to, from) { a.variable.value = b.variable.value.copy() }
            print("initialized the \(pick(model.flava) === model.flava.textModel ? "text" : "image") encoder from \(dir)")
        }
        let trainer = Pretrainer(model: model, tokenizer: tokenizer, config: cfg, sources: sources)
        if let r = resume {
            let (m, _) = try FlavaCheckpoint.loadPreTraining(r)
            let to = model.namedParameters(), from = m.namedParameters()
            guard to.map(\.key) == from.map(\.key), zip(to, from).allSatisfy({ $0.variable.shape == $1.variable.shape }) else {
                throw ConfigError(r, "was trained with another model (its config.json differs from this run's --size and vocabulary)")
            }
            for ((_, a), (_, b)) in zip(to, from) { a.value = b.value.copy() }
            try trainer.resume(from: r)
            print("resumed from \(r) at step \(trainer.step)")
        } else {
            try trainer.start()
        }
        defer { trainer.stop() }

        // 3. Train.
        let log = try FileHandle.appending(output + "/metrics.jsonl")
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        let board = try TensorBoardWriter(directory: output + "/tensorboard")
        let bar = ProgressBar(total: steps, label: "pretrain")
        var lastEval: [String: Double] = [:], bestEval: [String: Double] = [:]
        var best = trainer.bestScore ?? -1
        var bestPath: String? = nil
        while trainer.step < steps {
            var entry = try trainer.trainStep()
            let summaryLosses = entry.losses.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.3f", $0.value))" }.joined(separator: " ")
            bar.update(trainer.step, extra: summaryLosses)
            if (trainer.step % evalEvery == 0 || trainer.step == steps) && (syntheticEval || evalPairs != nil) {
                lastEval = try withNoGrad {
                    syntheticEval ? try SyntheticEvaluation.run(model: model.flava, tokenizer: tokenizer, world: world, data: cfg.data)
                        : try RetrievalEvaluation.run(model: model.flava, tokenizer: tokenizer, source: try dataSource(spec: evalPairs!, imageSize: cfg.data.imageSize), data: cfg.data)
                }
                entry.eval = lastEval
                let score = (lastEval["image_to_text_R@1"] ?? 0) + (lastEval["zero_shot_accuracy"] ?? 0)
                if score > best {
                    best = score; trainer.bestScore = best; bestEval = lastEval
                    bestPath = try trainer.saveCheckpoint(in: output, name: "best", vocabFile: vocabFile)
                }
            }
            if trainer.step % checkpointEvery == 0 || trainer.step == steps {
                _ = try trainer.saveCheckpoint(in: output, vocabFile: vocabFile)
            }
            log.write(try enc.encode(entry) + Data("\n".utf8))
            var scalars = Dictionary(uniqueKeysWithValues: entry.losses.map { ("loss/" + $0.key, $0.value) })
            scalars["train/learning_rate"] = entry.learningRate
            scalars["train/samples_per_second"] = entry.samplesPerSecond
            for (k, v) in entry.eval ?? [:] { scalars["eval/" + k] = v }
            board.scalars(scalars, step: trainer.step)
        }
        try log.close()

        // 4. Report: the best checkpoint's held-out results (the checkpoint is chosen by them).
        let seconds = Date().timeIntervalSince(start)
        if !bestEval.isEmpty { lastEval = bestEval }
        var t = TextTable(["held-out metric", "value", "chance"])
        for k in ["image_to_text_R@1", "image_to_text_R@5", "text_to_image_R@1", "text_to_image_R@5"] {
            t.add([k, String(format: "%.3f", lastEval[k] ?? 0), String(format: "%.3f", k.hasSuffix("@1") ? 0.01 : 0.05)])
        }
        t.add(["zero_shot_accuracy", String(format: "%.3f", lastEval["zero_shot_accuracy"] ?? 0), String(format: "%.3f", 1.0 / 48)])
        print(t.render())
        print(String(format: "%d steps in %.0f s; best checkpoint: %@", trainer.step, seconds, bestPath ?? output + "/best"))
        try PretrainReport.write(metrics: output + "/metrics.jsonl", to: output + "/report.svg")
        if let summary {
            var s: [String: Any] = lastEval.mapValues { $0 as Any }
            s["steps"] = trainer.step; s["seconds"] = seconds; s["checkpoint"] = bestPath ?? output + "/best"
            try writeSummary(s, to: summary)
        }
    }
}

extension FileHandle {
    /// Opens (creating if needed) a file for appending.
    static func appending(_ path: String) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw DataError("\(path): cannot open for writing") }
        h.seekToEndOfFile()
        return h
    }
}

/// The end-of-run picture: each objective's loss curve and the evaluation curve, as SVG.
enum PretrainReport {
    static func write(metrics: String, to path: String) throws {
        guard let entries = SVGCharts.entries(PretrainingLogEntry.self, in: metrics) else { return }
        var series: [String: [(Int, Double)]] = [:]
        for e in entries {
            for (k, v) in e.losses where v.isFinite { series[k, default: []].append((e.step, v)) }
            for (k, v) in e.eval ?? [:] where k.hasSuffix("R@1") || k == "zero_shot_accuracy" { series["eval " + k, default: []].append((e.step, v)) }
        }
        try SVGCharts.write(series, to: path)
    }
}
