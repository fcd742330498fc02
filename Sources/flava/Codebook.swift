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
        and an MSE reconstruction loss (or DALL-E's logit-Laplace). OUTPUT gets config.json + model.safetensors (loadable by \
        transformers' FlavaImageCodebook.from_pretrained), decoder_config.json + decoder.safetensors, \
        codebook_training.json, metrics.jsonl, report.svg and reconstructions.png. Held-out figures: PSNR, codes \
        used and code perplexity.

        Data-parallel: 'mpirun -np N flava codebook train …' splits each batch evenly among the ranks (gradients         and code-usage counts summed, the Gumbel noise drawn as one process draws it); rank 0 evaluates and writes         OUTPUT. See the README's "Scale-out" section.
        """)

    @Option(help: "Training images: a source spec (manifest, WebDataset shards, folder:DIR, coco:ANN:ROOT; default: the synthetic world).") var images: String?
    @Option(help: "Held-out images for the figures (default: the synthetic world's held-out split, or 1 in 20 records of --images).") var heldOut: String?
    @Option(help: "A JSON file of codebook training settings (codebook, decoder, image_size, steps, …); flags override it.") var config: String?
    @Option(help: "Optimizer steps (default 700).") var steps: Int?
    @Option(help: "Batch size (default 32).") var batchSize: Int?
    @Option(help: "Peak learning rate (default 3e-3).") var learningRate: Float?
    @Option(help: "Training image side in pixels, a multiple of 8 (default 64, the small model's).") var imageSize: Int?
    @Option(help: "Number of codes (default 512).") var vocabSize: Int?
    @Option(help: "Reconstruction loss: mse (default) or logit_laplace (DALL-E's).") var reconstruction: String?
    @Option(help: "Evaluate on the held-out images every N steps (default 100).") var evalEvery = 100
    @Option(help: "Write a resumable checkpoint (OUTPUT/checkpoint-STEP) every N steps and at the last (default 200; 0: none).") var checkpointEvery = 200
    @Option(help: "Continue exactly from a checkpoint folder of this run (same settings).") var resume: String?
    @Option(help: "Seed (default 0).") var seed: UInt64?
    @Option(help: "Output folder.") var output: String
    @Option(help: "Write a JSON summary (psnr_db, codes_used, vocab_size, perplexity, …) here.") var summary: String?
    @Flag(help: "Data-parallel runs (under mpirun): shard the optimizer's state across the ranks (same results, less memory per rank).")
    var shardOptimizer = false

    func run() throws {
        let comm = try DataParallel.world()
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
        guard checkpointEvery >= 0 else { throw ValidationError("--checkpoint-every must not be negative") }

        var bar: ProgressBar? = nil
        if comm.size > 1 && comm.isRoot {
            print("data-parallel: \(comm.size) ranks, \(cfg.batchSize / max(1, comm.size)) images each per batch of \(cfg.batchSize)" +
                  (shardOptimizer ? ", optimizer state sharded" : ""))
        }
        let result = try CodebookTrainingRun.run(config: cfg, images: images, heldOut: heldOut, evalEvery: evalEvery, output: output,
                                                 checkpointEvery: checkpointEvery > 0 ? checkpointEvery : nil, resume: resume,
                                                 shardOptimizer: shardOptimizer, communicator: comm) { event in
            guard comm.isRoot else { return }
            switch event {
            case .message(let m): print(m)
            case .step(let e, let total, let last):
                if bar == nil { bar = ProgressBar(total: total, label: "codebook") }
                bar!.update(e.step, extra: String(format: "rec %.3f  PSNR %.1f dB  codes %d", e.losses["reconstruction"] ?? .nan, last.psnrDB, last.codesUsed))
            }
        }
        guard comm.isRoot else { return }
        let last = result.metrics, seconds = result.seconds
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
                                      "held_out_images": result.heldOutImages, "image_size": cfg.imageSize]
            try writeSummary(out, to: summary)
        }
    }
}

enum CodebookReport {
    /// report.svg: reconstruction loss, KL, usage and the held-out PSNR / codes used over the steps.
    static func write(metrics: String, to path: String) throws {
        try SVGCharts.trainingReport(metrics: metrics, to: path) { e in
            var points: [(String, Double)] = []
            if let v = e.losses["reconstruction"] { points.append(("reconstruction loss", v)) }
            if let v = e.losses["kl"] { points.append(("KL to uniform", v)) }
            if let m = e.eval.flatMap(CodebookMetrics.init) {
                points += [("eval held-out PSNR (dB)", m.psnrDB), ("eval codes used", Double(m.codesUsed)), ("eval code perplexity", m.perplexity)]
            }
            return points
        }
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
