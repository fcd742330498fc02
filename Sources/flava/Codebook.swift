// flava codebook: train our own visual tokenizer (the dVAE whose encoder gives MIM/MMM targets) and turn
// images into visual tokens, with reconstructions to look at.
import ArgumentParser
import Foundation
import FlavaKit

struct CodebookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codebook",
        abstract: "Train a visual tokenizer (dVAE) and turn images into visual tokens.",
        subcommands: [CodebookTrain.self, CodebookEncode.self])
}

struct CodebookTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a dVAE codebook; by default on the synthetic world's images at the small model's resolution.",
        discussion: """
        The encoder is Hugging Face's FlavaImageCodebook (one code per 8×8 pixels), the decoder mirrors it as \
        DALL-E's does. Training: k-means start of the code projection, Gumbel-softmax with an annealed temperature \
        (straight-through), KL to the uniform prior with an annealed weight, a code-usage term, dead-code restarts, \
        and the logit-Laplace reconstruction loss (or MSE). OUTPUT gets config.json + model.safetensors (loadable by \
        transformers' FlavaImageCodebook.from_pretrained), decoder_config.json + decoder.safetensors, \
        codebook_training.json, metrics.jsonl, report.svg and reconstructions.png. Held-out figures: PSNR, codes \
        used and code perplexity.
        """)

    @Option(help: "Training images: a source spec (manifest, WebDataset shards, folder:DIR, coco:ANN:ROOT; default: the synthetic world).") var images: String?
    @Option(help: "Held-out images for the figures (default: the synthetic world's held-out split, or 1 in 20 records of --images).") var heldOut: String?
    @Option(help: "A JSON file of codebook training settings (codebook, decoder, image_size, steps, …); flags override it.") var config: String?
    @Option(help: "Optimizer steps (default 600).") var steps: Int?
    @Option(help: "Batch size (default 32).") var batchSize: Int?
    @Option(help: "Peak learning rate (default 1e-3).") var learningRate: Float?
    @Option(help: "Training image side in pixels, a multiple of 8 (default 64, the small model's).") var imageSize: Int?
    @Option(help: "Number of codes (default 512).") var vocabSize: Int?
    @Option(help: "Reconstruction loss: logit_laplace (default, as DALL-E) or mse.") var reconstruction: String?
    @Option(help: "Evaluate on the held-out images every N steps (default 100).") var evalEvery = 100
    @Option(help: "Seed (default 0).") var seed: UInt64?
    @Option(help: "Output folder.") var output: String
    @Option(help: "Write a JSON summary (psnr_db, codes_used, vocab_size, perplexity, …) here.") var summary: String?

    func run() throws {
        let start = Date()
        var cfg = CodebookTrainingConfig.small
        if let config { cfg = try ConfigError.decode(CodebookTrainingConfig.self, fromFile: config) }
        if let steps { cfg.steps = steps }
        if let batchSize { cfg.batchSize = batchSize }
        if let learningRate { cfg.learningRate = learningRate }
        if let imageSize { cfg.imageSize = imageSize }
        if let seed { cfg.seed = seed }
        if let vocabSize { cfg.codebook.vocabSize = vocabSize; cfg.decoder.vocabSize = vocabSize }
        if let reconstruction { cfg.decoder.reconstruction = reconstruction }
        try cfg.validate(file: config ?? "codebook training settings")
        guard evalEvery >= 1 else { throw ValidationError("--eval-every must be positive") }

        // Data: pixels for the codebook in [0.1, 0.9], [3, S, S] per image.
        let s = cfg.imageSize
        let proc = FlavaImageProcessor(FlavaImageProcessorConfig(imageSize: 2 * s))   // codebook side = S
        precondition(proc.config.codebookSize == s)
        let data = try CodebookImages(images: images, heldOut: heldOut, size: s, seed: cfg.seed, evalCount: cfg.evalImages, processor: proc)
        let held = try data.heldOutPixels()
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)

        print("codebook: \(cfg.codebook.vocabSize) codes, hidden \(cfg.codebook.hiddenSize), \(s)-pixel images (\(s / 8)×\(s / 8) codes each), "
              + "\(cfg.steps) steps of \(cfg.batchSize); \(data.description); \(held.shape[0]) held-out images")
        let trainer = CodebookTrainer(config: cfg)
        if cfg.kmeansImages > 0 { trainer.initializeCodes(from: try data.trainingBatch(cfg.kmeansImages)) }

        let log = try FileHandle.forAppending(output + "/metrics.jsonl")
        try log.truncate(atOffset: 0)
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        let bar = ProgressBar(total: cfg.steps, label: "codebook")
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
            bar.update(step + 1, extra: String(format: "rec %.3f  PSNR %.1f dB  codes %d", entry.reconstruction, last.psnrDB, last.codesUsed))
        }
        try log.close()
        try trainer.save(to: output)

        // Report.
        let seconds = Date().timeIntervalSince(start)
        let shown = ShapeKernel.slice(held, axis: 0, start: 0, end: min(8, held.shape[0]))
        let (tokens, recon) = trainer.reconstruct(shown)
        try CodebookPictures.sideBySide(originals: shown, mapped: true, reconstructions: recon, tokens: tokens,
                                        captions: (0..<shown.shape[0]).map { "held-out \($0)" }).savePNG(output + "/reconstructions.png")
        try CodebookReport.write(metrics: output + "/metrics.jsonl", to: output + "/report.svg")
        var t = TextTable(["held-out metric", "value"])
        t.add(["psnr_db", String(format: "%.2f", last.psnrDB)])
        t.add(["codes_used", "\(last.codesUsed) of \(last.vocabSize) (\(String(format: "%.0f", 100 * Double(last.codesUsed) / Double(last.vocabSize)))%)"])
        t.add(["perplexity", String(format: "%.1f", last.perplexity)])
        print(t.render())
        print(String(format: "%d steps in %.0f s; codebook: %@ (reconstructions.png, report.svg)", cfg.steps, seconds, output))
        if let summary {
            let out: [String: Any] = ["psnr_db": last.psnrDB, "codes_used": last.codesUsed, "vocab_size": last.vocabSize,
                                      "perplexity": last.perplexity, "steps": cfg.steps, "seconds": seconds, "codebook": output,
                                      "held_out_images": held.shape[0], "image_size": s]
            try writeSummary(out, to: summary)
        }
    }
}

/// One line of metrics.jsonl.
struct CodebookLogEntry: Codable {
    var step: Int, loss: Double, reconstruction: Double, kl: Double, usage: Double, temperature: Double, klWeight: Double, learningRate: Double
    var eval: CodebookMetrics?
    init(step e: CodebookStepLog) {
        step = e.step; loss = e.loss; reconstruction = e.reconstruction; kl = e.kl; usage = e.usage
        temperature = e.temperature; klWeight = e.klWeight; learningRate = e.learningRate
    }
    enum CodingKeys: String, CodingKey {
        case step, loss, reconstruction, kl, usage, temperature, klWeight = "kl_weight", learningRate = "learning_rate", eval
    }
}

/// Pictures of codebook inputs beside their reconstructions.
enum CodebookPictures {
    /// Codebook pixels [B, 3, S, S] (mapped to [0.1, 0.9] when `mapped`) and reconstructions in [0, 1] → one
    /// picture: each input beside its reconstruction, with a caption.
    static func sideBySide(originals: Tensor, mapped: Bool, reconstructions: Tensor, tokens: IntTensor, captions: [String]) -> RGBImage {
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
    static func image(_ t: Tensor, mapped: Bool) -> RGBImage {
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

enum CodebookReport {
    /// report.svg: reconstruction loss, KL, usage and the held-out PSNR / codes used over the steps.
    static func write(metrics: String, to path: String) throws {
        guard let entries = SVGCharts.entries(CodebookLogEntry.self, in: metrics) else { return }
        var series: [String: [(Int, Double)]] = [:]
        for e in entries {
            series["reconstruction loss", default: []].append((e.step, e.reconstruction))
            series["KL to uniform", default: []].append((e.step, e.kl))
            if let m = e.eval {
                series["eval held-out PSNR (dB)", default: []].append((e.step, m.psnrDB))
                series["eval codes used", default: []].append((e.step, Double(m.codesUsed)))
                series["eval code perplexity", default: []].append((e.step, m.perplexity))
            }
        }
        try SVGCharts.write(series, to: path)
    }
}

struct CodebookEncode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Turn images into grids of visual tokens; optionally a picture of their reconstructions.",
        discussion: """
        Images are resized to the codebook's training side (codebook_training.json; 112 for other codebooks) and \
        mapped to [0.1, 0.9] as FlavaImageProcessor's codebook pixels are. Tokens are argmax codes, one per 8×8 \
        pixels, row-major. Output: JSON on standard output, or --output FILE.json / FILE.safetensors (an I64 tensor \
        "tokens" [N, H/8, W/8] with the image paths in the metadata). --reconstruct needs the decoder that \
        `flava codebook train` saves beside the encoder.
        """)

    @Option(help: "Codebook folder (config.json + model.safetensors; a FlavaForPreTraining checkpoint works too).") var codebook: String
    @Option(parsing: .upToNextOption, help: "Image files.") var image: [String]
    @Option(help: "Input side in pixels (default: the codebook's training side, else 112).") var imageSize: Int?
    @Option(help: "Write the tokens to FILE.json or FILE.safetensors instead of standard output.") var output: String?
    @Option(help: "Write a PNG of each image beside its reconstruction from its tokens.") var reconstruct: String?

    func run() throws {
        guard !image.isEmpty else { throw ValidationError("give at least one --image") }
        let cb = try FlavaCheckpoint.loadCodebook(codebook)
        var side = imageSize ?? 112
        if imageSize == nil, let d = FileManager.default.contents(atPath: codebook + "/codebook_training.json"),
           let t = try? JSONDecoder().decode(CodebookTrainingConfig.self, from: d) { side = t.imageSize }
        guard side >= 8, side % 8 == 0 else { throw ValidationError("--image-size must be a positive multiple of 8, got \(side)") }
        let proc = FlavaImageProcessor(FlavaImageProcessorConfig(imageSize: 2 * side))
        let pixels = ShapeKernel.stack(try image.map { proc.codebookPixelValues(try RGBImage.load($0)) })
        var tokenParts = [IntTensor]()
        for start in stride(from: 0, to: image.count, by: 16) {
            tokenParts.append(cb.codebookIndices(ShapeKernel.slice(pixels, axis: 0, start: start, end: min(image.count, start + 16))))
        }
        let g = side / 8
        let tokens = IntTensor(shape: [image.count, g, g], tokenParts.flatMap(\.values))
        if let out = output, out.hasSuffix(".safetensors") {
            let names = try JSONSerialization.data(withJSONObject: image)
            try SafeTensors.write([("tokens", .int(tokens))], metadata: ["images": String(decoding: names, as: UTF8.self),
                                                                         "image_size": "\(side)", "vocab_size": "\(cb.config.vocabSize)"], to: out)
        } else {
            let rows: [[String: Any]] = image.enumerated().map { i, path in
                ["image": path, "tokens": (0..<g).map { r in Array(tokens.values[(i * g + r) * g..<(i * g + r + 1) * g]) }]
            }
            let json = try JSONSerialization.data(withJSONObject: ["image_size": side, "vocab_size": cb.config.vocabSize, "images": rows],
                                                  options: [.sortedKeys])
            if let out = output {
                try AtomicFile.write(to: out) { sink in try (json + Data("\n".utf8)).withUnsafeBytes { try sink.write($0) } }
            } else {
                print(String(decoding: json, as: UTF8.self))
            }
        }
        if let reconstruct {
            let decoder = try CodebookTrainer.loadDecoder(codebook)
            guard decoder.config.vocabSize == cb.config.vocabSize else {
                throw ValidationError("\(codebook): decoder has \(decoder.config.vocabSize) codes, the encoder \(cb.config.vocabSize)")
            }
            let flat = IntTensor(shape: [image.count, g * g], tokens.values)
            let recon = decoder.decode(tokens: flat, side: g)
            let picture = CodebookPictures.sideBySide(originals: pixels, mapped: true, reconstructions: recon, tokens: flat,
                                                      captions: image.map { URL(fileURLWithPath: $0).lastPathComponent })
            try picture.savePNG(reconstruct)
            FileHandle.standardError.write("wrote \(reconstruct)\n".data(using: .utf8)!)
        }
    }
}
