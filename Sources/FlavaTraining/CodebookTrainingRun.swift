// Codebook training on the training engine (CodebookTrainingTask), the whole run as `flava codebook train` does
// it (CodebookTrainingRun), and the pictures of inputs beside their reconstructions.
import Foundation
import FlavaTensor
import FlavaNN
import FlavaAutograd
import FlavaModel
import FlavaData
import FlavaDistributed

/// Codebook training as a task of the training engine: batches from `CodebookImages`, the dVAE loss, dead-code
/// restarts after each update, held-out figures as the evaluation (best: highest PSNR).
public final class CodebookTrainingTask: TrainingTask {
    public let trainer: CodebookTrainer
    public let images: CodebookImages
    let heldOut: Tensor?
    let communicator: Communicator

    public struct State: Codable, Sendable {
        public var generator: SeededGenerator
        public var usageCounts: [Int]
        public var images: CodebookImages.Position
    }

    /// `heldOut`: codebook pixels to evaluate on (nil: no evaluation). Data-parallel: `images` hands this rank its
    /// slice of each global batch (`CodebookImages.shard`), and `communicator` is the engine's.
    public init(trainer: CodebookTrainer, images: CodebookImages, heldOut: Tensor? = nil,
                communicator: Communicator = LocalCommunicator.shared) {
        self.trainer = trainer; self.images = images; self.heldOut = heldOut; self.communicator = communicator
    }

    public var trainableParameters: [(key: String, variable: Variable)] { trainer.namedParameters }
    public func makeOptimizer(_ settings: TrainingSettings) -> AdamW { trainer.makeOptimizer() }

    public func microBatch(step: Int, kind: String?, generator: inout SeededGenerator) throws -> MicroBatchLoss {
        trainer.loss(try images.trainingBatch(trainer.config.batchSize / communicator.size), step: step, communicator: communicator)
    }

    public func endStep(_ step: Int) throws { trainer.didStep(step) }

    public func evaluate(step: Int) throws -> [String: Double]? {
        guard let heldOut, heldOut.shape[0] > 0 else { return nil }
        return trainer.evaluate(heldOut).dictionary
    }

    public func score(_ e: [String: Double]) -> Double { e["psnr_db"] ?? 0 }
    public func saveModel(to dir: String) throws { try trainer.write(into: dir) }
    public func loadModel(from dir: String) throws { try trainer.load(from: dir) }

    public func state() throws -> State {
        State(generator: trainer.generator, usageCounts: trainer.usageCounts, images: images.position)
    }

    public func restore(_ s: State, from dir: String) throws {
        guard s.usageCounts.count == trainer.config.codebook.vocabSize, s.usageCounts.allSatisfy({ $0 >= 0 }) else {
            throw ConfigError(dir + "/trainer_state.json", "usageCounts does not have one non-negative count per code (\(trainer.config.codebook.vocabSize))")
        }
        trainer.generator = s.generator
        trainer.usageCounts = s.usageCounts
        try images.restore(s.images)
    }
}

extension CodebookMetrics {
    /// As metrics.jsonl and summaries name them.
    public var dictionary: [String: Double] {
        ["psnr_db": psnrDB, "codes_used": Double(codesUsed), "vocab_size": Double(vocabSize), "perplexity": perplexity]
    }
    public init?(_ d: [String: Double]) {
        guard let p = d["psnr_db"], let c = d["codes_used"], let v = d["vocab_size"], let x = d["perplexity"] else { return nil }
        self.init(psnrDB: p, codesUsed: Int(c), vocabSize: Int(v), perplexity: x)
    }
}

/// Pictures of codebook inputs beside their reconstructions.
public enum CodebookPictures {
    /// Codebook pixels [B, 3, S, S] (mapped to [0.1, 0.9] when `mapped`) and reconstructions in [0, 1] → one
    /// picture: each input beside its reconstruction, with a caption.
    public static func sideBySide(originals: Tensor, mapped: Bool, reconstructions: Tensor, tokens: IntTensor, captions: [String]) -> RGBImage {
        var items: [(image: RGBImage, caption: String)] = []
        for i in 0..<originals.shape[0] {
            let o = ShapeKernel.slice(originals, axis: 0, start: i, end: i + 1)
            let r = ShapeKernel.slice(reconstructions, axis: 0, start: i, end: i + 1)
            items.append((image(o, mapped: mapped), captions[i]))
            let distinct = Set(tokens.values[(i * tokens.shape[1])..<((i + 1) * tokens.shape[1])]).count
            items.append((image(r, mapped: false), "reconstruction (\(distinct) distinct codes)"))
        }
        return ImageGrid.compose(items, columns: 4, tile: 128, captionLines: 2)
    }

    /// [1, 3, S, S] → RGB image.
    public static func image(_ t: Tensor, mapped: Bool) -> RGBImage {
        let (h, w) = (t.shape[2], t.shape[3])
        var img = RGBImage(width: w, height: h, fill: (0, 0, 0))
        let p = t.storage.pointer
        for c in 0..<3 { for y in 0..<h { for x in 0..<w {
            var v = p[(c * h + y) * w + x]
            if mapped { v = (v - 0.1) / 0.8 }
            img.pixels[(y * w + x) * 3 + c] = UInt8(max(0, min(255, (v * 255).rounded())))
        } } }
        return img
    }
}

/// What a codebook training run tells its caller while it works: a message, or a step with the latest
/// held-out figures.
public enum CodebookTrainingEvent {
    case message(String)
    case step(TrainingLogEntry, total: Int, lastEvaluation: CodebookMetrics)
}

/// What a codebook training run reports.
public struct CodebookTrainingResult: Sendable {
    /// Held-out figures after the last step.
    public var metrics: CodebookMetrics
    public var heldOutImages: Int
    public var seconds: Double
}

/// A whole codebook training run, as `flava codebook train` does it: images from a source (or the synthetic
/// world) with a held-out part, the k-means start, the steps on the training engine with held-out evaluation
/// every `evalEvery`, checkpoints every `checkpointEvery` (OUTPUT/checkpoint-STEP, resumable with `resume`), and
/// OUTPUT with the codebook, its decoder, metrics.jsonl and reconstructions.png.
///
/// Data-parallel (`communicator` of several ranks, every rank calling with the same settings): each rank trains on
/// its slice of every batch (the batch must split evenly), gradients and code-usage counts are summed across the
/// ranks, and rank 0 evaluates and writes every file; events come on every rank (callers print on rank 0).
public enum CodebookTrainingRun {
    public static func run(config cfg: CodebookTrainingConfig, images: String?, heldOut: String?, evalEvery: Int, output: String,
                           checkpointEvery: Int? = nil, resume: String? = nil, shardOptimizer: Bool = false,
                           communicator comm: Communicator = LocalCommunicator.shared,
                           events: @escaping (CodebookTrainingEvent) -> Void = { _ in }) throws -> CodebookTrainingResult {
        let start = Date()
        try cfg.validate()
        guard cfg.batchSize % comm.size == 0 else {
            throw ConfigError("codebook training", "batch_size = \(cfg.batchSize) does not split evenly across \(comm.size) ranks")
        }
        let k = ConfigChecker(file: "codebook training")
        try k.int("eval_every", evalEvery, in: 1...100_000_000)
        if let c = checkpointEvery { try k.int("checkpoint_every", c, in: 1...100_000_000) }
        if let r = resume { _ = try TrainingCheckpoint.statePath(in: r) }
        // Data: pixels for the codebook in [0.1, 0.9], [3, S, S] per image.
        let s = cfg.imageSize
        var pc = FlavaImageProcessorConfig(imageSize: 2 * s)
        pc.codebookSize = s
        let proc = FlavaImageProcessor(pc)
        let data = try CodebookImages(images: images, heldOut: heldOut, size: s, seed: cfg.seed, evalCount: cfg.evalImages, processor: proc,
                                      globalBatch: cfg.batchSize, communicator: comm)
        let held = try data.heldOutPixels()
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)

        events(.message("codebook: \(cfg.codebook.vocabSize) codes, hidden \(cfg.codebook.hiddenSize), \(s)-pixel images (\(s / 8)×\(s / 8) codes each), "
                        + "\(cfg.steps) steps of \(cfg.batchSize); \(data.description); \(held.shape[0]) held-out images"))
        let trainer = CodebookTrainer(config: cfg)
        let task = CodebookTrainingTask(trainer: trainer, images: data, heldOut: held, communicator: comm)
        var settings = CodebookTrainer.settings(cfg)
        settings.evalEvery = evalEvery
        settings.checkpointEvery = checkpointEvery
        settings.output = output
        settings.saveBest = false   // the codebook written at the end is the run's result
        settings.shardOptimizer = shardOptimizer
        // The k-means start before the engine, which hands rank 0's weights to every rank.
        if resume == nil && cfg.kmeansImages > 0 { trainer.initializeCodes(from: try data.kmeansBatch(cfg.kmeansImages)) }
        let engine = try TrainingEngine(task: task, settings: settings, communicator: comm)
        if let resume {
            try engine.resume(from: resume)
            events(.message("resumed from \(resume) at step \(engine.step)"))
        }
        // The figures the progress shows until the first evaluation: the starting point's (rank 0 evaluates).
        var last = comm.isRoot ? trainer.evaluate(held) : CodebookMetrics(psnrDB: 0, codesUsed: 0, vocabSize: cfg.codebook.vocabSize, perplexity: 0)
        engine.callbacks = comm.isRoot ? [
            try MetricsLogCallback(path: output + "/metrics.jsonl", truncate: resume == nil),
            StepCallback { e, total in
                if let m = e.eval.flatMap(CodebookMetrics.init) { last = m }
                events(.step(e, total: total, lastEvaluation: last))
            },
        ] : []
        let outcome = try engine.run()
        if let m = outcome.lastEvaluation.flatMap(CodebookMetrics.init) { last = m }
        if let h = outcome.replicaChecksum {
            events(.message(String(format: "weights bit-identical on all %d ranks (checksum %016llx)", comm.size, h)))
        }
        guard comm.isRoot else {
            return CodebookTrainingResult(metrics: last, heldOutImages: held.shape[0], seconds: Date().timeIntervalSince(start))
        }
        try trainer.save(to: output)
        let shown = ShapeKernel.slice(held, axis: 0, start: 0, end: min(8, held.shape[0]))
        let (tokens, recon) = trainer.reconstruct(shown)
        try CodebookPictures.sideBySide(originals: shown, mapped: true, reconstructions: recon, tokens: tokens,
                                        captions: (0..<shown.shape[0]).map { "held-out \($0)" }).savePNG(output + "/reconstructions.png")
        return CodebookTrainingResult(metrics: last, heldOutImages: held.shape[0], seconds: Date().timeIntervalSince(start))
    }
}
