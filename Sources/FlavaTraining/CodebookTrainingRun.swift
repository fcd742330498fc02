// A whole codebook training run in the library (what `flava codebook train` does), its metrics log entries and
// the pictures of inputs beside their reconstructions.
import Foundation
import FlavaTensor
import FlavaNN
import FlavaModel
import FlavaData

/// One line of metrics.jsonl.
public struct CodebookLogEntry: Codable, Sendable {
    public var step: Int, loss: Double, reconstruction: Double, kl: Double, usage: Double, temperature: Double, klWeight: Double, learningRate: Double
    public var eval: CodebookMetrics?
    public init(step e: CodebookStepLog) {
        step = e.step; loss = e.loss; reconstruction = e.reconstruction; kl = e.kl; usage = e.usage
        temperature = e.temperature; klWeight = e.klWeight; learningRate = e.learningRate
    }
    enum CodingKeys: String, CodingKey {
        case step, loss, reconstruction, kl, usage, temperature, klWeight = "kl_weight", learningRate = "learning_rate", eval
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
    case step(CodebookStepLog, lastEvaluation: CodebookMetrics)
}

/// What a codebook training run reports.
public struct CodebookTrainingResult: Sendable {
    /// Held-out figures after the last step.
    public var metrics: CodebookMetrics
    public var heldOutImages: Int
    public var seconds: Double
}

/// A whole codebook training run, as `flava codebook train` does it: images from a source (or the synthetic
/// world) with a held-out part, the k-means start, the steps with held-out evaluation every `evalEvery`, and
/// OUTPUT with the codebook, its decoder, metrics.jsonl and reconstructions.png.
public enum CodebookTrainingRun {
    public static func run(config cfg: CodebookTrainingConfig, images: String?, heldOut: String?, evalEvery: Int, output: String,
                           events: (CodebookTrainingEvent) -> Void = { _ in }) throws -> CodebookTrainingResult {
        let start = Date()
        try cfg.validate()
        try ConfigChecker(file: "codebook training").int("eval_every", evalEvery, in: 1...100_000_000)
        // Data: pixels for the codebook in [0.1, 0.9], [3, S, S] per image.
        let s = cfg.imageSize
        var pc = FlavaImageProcessorConfig(imageSize: 2 * s)
        pc.codebookSize = s
        let proc = FlavaImageProcessor(pc)
        let data = try CodebookImages(images: images, heldOut: heldOut, size: s, seed: cfg.seed, evalCount: cfg.evalImages, processor: proc)
        let held = try data.heldOutPixels()
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)

        events(.message("codebook: \(cfg.codebook.vocabSize) codes, hidden \(cfg.codebook.hiddenSize), \(s)-pixel images (\(s / 8)×\(s / 8) codes each), "
                        + "\(cfg.steps) steps of \(cfg.batchSize); \(data.description); \(held.shape[0]) held-out images"))
        let trainer = CodebookTrainer(config: cfg)
        if cfg.kmeansImages > 0 { trainer.initializeCodes(from: try data.trainingBatch(cfg.kmeansImages)) }

        let log = try FileHandle.forAppending(output + "/metrics.jsonl")
        defer { try? log.close() }
        try log.truncate(atOffset: 0)
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        var last = trainer.evaluate(held)
        for step in 0..<cfg.steps {
            let batch = try data.trainingBatch(cfg.batchSize)
            let entry = trainer.step(batch, step: step)
            var record = CodebookLogEntry(step: entry)
            if (step + 1) % evalEvery == 0 || step + 1 == cfg.steps {
                last = trainer.evaluate(held)
                record.eval = last
            }
            log.write(try enc.encode(record) + Data("\n".utf8))
            events(.step(entry, lastEvaluation: last))
        }
        try trainer.save(to: output)
        let shown = ShapeKernel.slice(held, axis: 0, start: 0, end: min(8, held.shape[0]))
        let (tokens, recon) = trainer.reconstruct(shown)
        try CodebookPictures.sideBySide(originals: shown, mapped: true, reconstructions: recon, tokens: tokens,
                                        captions: (0..<shown.shape[0]).map { "held-out \($0)" }).savePNG(output + "/reconstructions.png")
        return CodebookTrainingResult(metrics: last, heldOutImages: held.shape[0], seconds: Date().timeIntervalSince(start))
    }
}
