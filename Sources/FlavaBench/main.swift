// flava-bench: the performance benchmarks reported in BENCHMARKS.md. Each prints a human line and, with
// --json, one JSON object that scripts/bench/run.sh puts side by side with PyTorch measured the same way.
import ArgumentParser
import Foundation
import FlavaKit
import CBLAS
extension InferencePrecision: ExpressibleByArgument {}


func now() -> Double { Date().timeIntervalSince1970 }

/// Median of timed repetitions after `warmup` untimed ones.
func time(iterations: Int, warmup: Int = 1, _ body: () -> Void) -> (median: Double, all: [Double]) {
    for _ in 0..<warmup { body() }
    var ts: [Double] = []
    for _ in 0..<iterations { let t0 = now(); body(); ts.append(now() - t0) }
    let sorted = ts.sorted()
    return (sorted[sorted.count / 2], ts)
}

/// "768x768,768x3072" → [(768, 768), (768, 3072)]: the (in, out) feature pairs of --shapes.
func featurePairs(_ shapes: String) throws -> [(inF: Int, outF: Int)] {
    try shapes.split(separator: ",").map { spec in
        let parts = spec.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("shape '\(spec)' is not INxOUT") }
        return (parts[0], parts[1])
    }
}

func emit(_ json: Bool, _ dict: [String: Any]) {
    if json, let d = try? JSONSerialization.data(withJSONObject: dict, options: [.sortedKeys]) {
        print(String(decoding: d, as: UTF8.self))
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flava-bench",
        abstract: "Performance benchmarks of the FLAVA Swift tensor core (see BENCHMARKS.md).",
        subcommands: [GEMM.self, Int8GEMMBench.self, Int8Accuracy.self, ServeLoad.self, ServeDirect.self, ServeSoak.self, Layer.self, TokenizerBench.self, ImageBench.self, LoaderBench.self, TrainStep.self, DataParallelStep.self, AllReduceBench.self, CodebookBench.self])
}

struct GEMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Our float32 linear products against a direct cblas_sgemm call, in GFLOP/s: the training product (LinearKernel, OpenBLAS) and the inference product on weights packed once (PackedLinear) at each float kernel level this CPU has. OPENBLAS_NUM_THREADS=1 times one thread.")
    @Option(help: "Rows (tokens): batch × sequence length.") var m = 8 * 197
    @Option(help: "Comma-separated (in,out) feature pairs to time.") var shapes = "768x768,768x3072,3072x768"
    @Option(help: "Timed repetitions.") var iterations = 20
    @Flag(help: "Print one JSON object per shape.") var json = false

    func run() throws {
        var g = SeededGenerator(seed: 1)
        let levels = VectorMath.Level.allCases.filter { VectorMath.supports($0) }
        for (inF, outF) in try featurePairs(shapes) {
            let x = Tensor.randomNormal([m, inF], using: &g), w = Tensor.randomNormal([outF, inF], using: &g)
            let flops = 2.0 * Double(m) * Double(inF) * Double(outF)
            let ours = time(iterations: iterations) { _ = LinearKernel.forward(x, weight: w, bias: nil) }
            let c = UnsafeMutablePointer<Float>.allocate(capacity: m * outF)
            defer { c.deallocate() }
            let direct = time(iterations: iterations) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(outF), Int32(inF), 1,
                            x.storage.pointer, Int32(inF), w.storage.pointer, Int32(inF), 0, c, Int32(outF))
            }
            let packed = PackedLinear(weight: w, bias: nil)
            let packedGFlops = levels.map { level in
                (level, flops / time(iterations: iterations) { _ = packed(x, level: level) }.median / 1e9)
            }
            let go = flops / ours.median / 1e9, gd = flops / direct.median / 1e9
            let packedText = packedGFlops.map { String(format: "packed %@ %7.1f", $0.0.description, $0.1) }.joined(separator: "  ")
            print(String(format: "gemm %5d×%-5d·%5d  ours %7.1f GFLOP/s  direct OpenBLAS %7.1f GFLOP/s  ratio %.3f  ",
                         m, inF, outF, go, gd, go / gd) + packedText)
            var row: [String: Any] = ["bench": "gemm", "m": m, "in": inF, "out": outF, "ours_gflops": go,
                                      "openblas_gflops": gd, "ratio": go / gd,
                                      "float_level": VectorMath.level.description]
            for (level, gf) in packedGFlops { row["packed_\(level)_gflops"] = gf }
            emit(json, row)
        }
    }
}

struct Int8GEMMBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "int8-gemm",
        abstract: "The int8 linear product (quantize the rows, int32 sums, scales and bias) on each kernel path this CPU has, against the float32 product fp32 inference runs (packed weights where the CPU has AVX2, else OpenBLAS), in GOP/s.")
    @Option(help: "Rows (tokens): batch × sequence length.") var m = 197
    @Option(help: "Comma-separated (in,out) feature pairs to time.") var shapes = "768x768,768x3072,3072x768"
    @Option(help: "Timed repetitions.") var iterations = 20
    @Flag(help: "Print one JSON object per shape and path.") var json = false

    func run() throws {
        var g = SeededGenerator(seed: 1)
        for (inF, outF) in try featurePairs(shapes) {
            let x = Tensor.randomNormal([m, inF], using: &g), w = Tensor.randomNormal([outF, inF], using: &g)
            let b = Tensor.randomNormal([outF], using: &g)
            let ops = 2.0 * Double(m) * Double(inF) * Double(outF)
            let float = LinearInference(weight: w, bias: b, precision: .fp32)
            let fp32 = time(iterations: iterations) { _ = float(x) }
            for path in Int8GEMM.Path.allCases where Int8GEMM.supports(path) {
                let lin = Int8Linear(weight: w, bias: b, weightLevels: path.weightLevels)   // as a model on this path packs
                let t = time(iterations: iterations) { _ = lin(x, path: path) }
                let tq = time(iterations: iterations) { _ = lin.quantize(x, path: path) }
                print(String(format: "linear %4d×%-5d·%5d  int8 %-11@ %7.1f GOP/s (quantizing %4.1f %%)  float32 %7.1f GFLOP/s  ratio %.2f",
                             m, inF, outF, path.description, ops / t.median / 1e9, 100 * tq.median / t.median, ops / fp32.median / 1e9, fp32.median / t.median))
                emit(json, ["bench": "int8_gemm", "m": m, "in": inF, "out": outF, "path": path.description,
                            "int8_gops": ops / t.median / 1e9, "fp32_gflops": ops / fp32.median / 1e9, "speedup": fp32.median / t.median])
            }
        }
    }
}

struct Int8Accuracy: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "int8-accuracy",
        abstract: "Cosine between float32 and int8 embeddings (image and text) of a model on images and texts: the accuracy check of int8 inference.",
        discussion: "Without --model, a randomly initialized full-size FLAVA (tokenized with --vocab if given); without images, random pixels; without texts, a few built-in sentences (tokenized with the model's vocab.txt or --vocab) or random ids.")
    @Option(help: "Model folder (config.json, weights, vocab.txt).") var model: String?
    @Option(help: "A vocab.txt for the texts (default: the model's).") var vocab: String?
    @Option(name: .customLong("image"), help: "An image file; repeat for several.") var images: [String] = []
    @Option(help: "Every .jpg/.jpeg/.png in this folder (sorted), besides any --image.") var imagesFrom: String?
    @Option(name: .customLong("text"), help: "A text; repeat for several.") var texts: [String] = []
    @Option(help: "A file of texts, one per line (blank lines skipped), besides any --text.") var textsFrom: String?
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let tokenizer = try vocab.map { try BertTokenizer(vocabFile: $0) }
        let embedder: FlavaEmbedder
        if let model {
            let loaded = try FlavaEmbedder(directory: model, inferenceOnly: false)
            embedder = tokenizer == nil ? loaded : try FlavaEmbedder(model: loaded.model, tokenizer: tokenizer, processor: loaded.processor)
        } else {
            var ini = Initializer(seed: 0)
            embedder = try FlavaEmbedder(model: FlavaModel(FlavaConfig(), init: &ini), tokenizer: tokenizer)
        }
        var imageFiles = images
        if let imagesFrom {
            let names = try FileManager.default.contentsOfDirectory(atPath: imagesFrom).sorted()
            imageFiles += names.filter { ["jpg", "jpeg", "png"].contains(($0 as NSString).pathExtension.lowercased()) }.map { imagesFrom + "/" + $0 }
            guard !imageFiles.isEmpty else { throw ValidationError("\(imagesFrom): no .jpg, .jpeg or .png files") }
        }
        var sentences = texts
        if let textsFrom {
            sentences += try String(contentsOfFile: textsFrom, encoding: .utf8).split(separator: "\n")
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let c = embedder.model.config
        var g = SeededGenerator(seed: 3)
        let s = c.imageConfig.imageSize
        let pixels = imageFiles.isEmpty ? Tensor.randomNormal([8, 3, s, s], using: &g) : embedder.pixelValues(try imageFiles.map { try RGBImage.load($0) })
        if sentences.isEmpty {
            sentences = ["a photo of a dog playing in the snow", "two people riding bicycles along a river at sunset",
                         "a red double-decker bus on a busy street", "a bowl of fresh fruit on a wooden table"]
        }
        let batch: FlavaEmbedder.TextBatch
        if embedder.tokenizer != nil { batch = try embedder.tokenize(sentences) } else {
            let ids = IntTensor(shape: [8, 32], (0..<256).map { _ in 1000 + Int(g.next() % 20000) % c.textConfig.vocabSize })
            batch = FlavaEmbedder.TextBatch(ids: ids, mask: IntTensor(shape: [8, 32], repeating: 1))
        }
        embedder.model.prepareForInference(.fp32)
        let (i32, t32) = (embedder.imageEmbeddings(pixels), embedder.textEmbeddings(batch))
        embedder.model.prepareForInference(.int8)
        let (i8, t8) = (embedder.imageEmbeddings(pixels), embedder.textEmbeddings(batch))
        func cosines(_ a: Tensor, _ b: Tensor) -> [Double] {   // rows are unit vectors
            let d = a.shape[1], x = a.array, y = b.array
            return (0..<a.shape[0]).map { r in (0..<d).reduce(0.0) { $0 + Double(x[r * d + $1]) * Double(y[r * d + $1]) } }
        }
        let ci = cosines(i32, i8), ct = cosines(t32, t8)
        print(String(format: "int8 (%@) vs fp32: image embeddings cosine min %.4f mean %.4f (%d); text min %.4f mean %.4f (%d)",
                     Int8GEMM.path.description, ci.min()!, ci.reduce(0, +) / Double(ci.count), ci.count,
                     ct.min()!, ct.reduce(0, +) / Double(ct.count), ct.count))
        if !imageFiles.isEmpty, let worst = ci.indices.min(by: { ci[$0] < ci[$1] }) {
            print(String(format: "lowest image: %@ (%.4f)", (imageFiles[worst] as NSString).lastPathComponent, ci[worst]))
        }
        if let worst = ct.indices.min(by: { ct[$0] < ct[$1] }), worst < sentences.count {
            print(String(format: "lowest text: \"%@\" (%.4f)", sentences[worst], ct[worst]))
        }
        emit(json, ["bench": "int8_accuracy", "path": Int8GEMM.path.description, "image_cosine_min": ci.min()!, "text_cosine_min": ct.min()!,
                    "image_cosine_mean": ci.reduce(0, +) / Double(ci.count), "text_cosine_mean": ct.reduce(0, +) / Double(ct.count),
                    "images": ci.count, "texts": ct.count])
    }
}

struct Layer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One pre-norm FLAVA transformer layer: forward (no grad) or forward+backward, with peak memory.")
    @Option(help: "Batch size.") var batch = 8
    @Option(help: "Tokens per sequence.") var tokens = 197
    @Option(help: "Hidden size.") var hidden = 768
    @Option(help: "Attention heads.") var heads = 12
    @Option(help: "MLP size.") var intermediate = 3072
    @Option(help: "forward or backward (forward+backward).") var mode = "forward"
    @Option(help: "Forward arithmetic: fp32 or int8 (the inference forms of prepareForInference).") var precision: InferencePrecision = .fp32
    @Option(help: "Timed repetitions.") var iterations = 10
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        guard mode == "forward" || mode == "backward" else { throw ValidationError("--mode must be forward or backward") }
        guard mode == "forward" || precision == .fp32 else { throw ValidationError("--precision int8 is for --mode forward") }
        var ini = Initializer(seed: 0)
        let layer = FlavaLayer(FlavaLayerSizes(hiddenSize: hidden, numAttentionHeads: heads, intermediateSize: intermediate), init: &ini)
        if mode == "forward" { layer.prepareForInference(precision) }
        var g = SeededGenerator(seed: 2)
        let x = Tensor.randomNormal([batch, tokens, hidden], using: &g)
        let seed = Tensor.randomNormal([batch, tokens, hidden], using: &g)
        let t: (median: Double, all: [Double])
        if mode == "forward" {
            t = time(iterations: iterations) { withNoGrad { _ = layer(Variable(x)) } }
        } else {
            let xv = Variable(x, requiresGrad: true)
            t = time(iterations: iterations) {
                layer.zeroGrad(); xv.grad = nil
                layer(xv).backward(seed: seed)
            }
        }
        let ips = Double(batch) / t.median
        print(String(format: "layer %@ %@ B=%d T=%d H=%d: %.2f ms/iter (%.2f sequences/s), peak RSS %.0f MiB",
                     mode, precision.rawValue, batch, tokens, hidden, t.median * 1000, ips, Double(ProcessMemory.peakResidentBytes) / 1048576))
        emit(json, ["bench": "layer", "mode": mode, "batch": batch, "tokens": tokens, "hidden": hidden,
                    "ms": t.median * 1000, "items_per_second": ips, "peak_rss_bytes": ProcessMemory.peakResidentBytes])
    }
}

struct TokenizerBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenizer",
        abstract: "WordPiece encoding throughput (sentences/s) over a corpus, [CLS] … [SEP] padded to --max-length.")
    @Option(help: "vocab.txt") var vocab: String
    @Option(help: "Corpus file, one sentence a line.") var corpus: String
    @Option(help: "Pad/truncate length.") var maxLength = 77
    @Option(help: "Threads (1 = single-threaded).") var threads = 1
    @Option(help: "Timed repetitions.") var iterations = 5
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let tok = try BertTokenizer(vocabFile: vocab)
        let lines = try String(contentsOfFile: corpus, encoding: .utf8).codePointLines
        let t = time(iterations: iterations) { _ = tok.encodeBatch(lines, maxLength: maxLength, padToMaxLength: true, threads: threads) }
        let sps = Double(lines.count) / t.median
        print(String(format: "tokenizer: %d sentences in %.1f ms, %.0f sentences/s (%d thread%@)", lines.count, t.median * 1000, sps, threads, threads == 1 ? "" : "s"))
        emit(json, ["bench": "tokenizer", "threads": threads, "sentences": lines.count, "sentences_per_second": sps])
    }
}

struct ImageBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "images",
        abstract: "Image decode + FLAVA preprocessing throughput (pixel_values and codebook_pixel_values), images/s.")
    @Option(help: "Folder of JPEG/PNG files.") var dir: String
    @Option(help: "Threads (1 = single-threaded).") var threads = 1
    @Option(help: "Timed repetitions.") var iterations = 3
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".jpg") || $0.hasSuffix(".png") }.sorted()
        let paths = files.map { dir + "/" + $0 }
        let processor = FlavaImageProcessor()
        let t = time(iterations: iterations) {
            DispatchQueue.concurrentPerform(iterations: threads) { w in
                for i in stride(from: w, to: paths.count, by: threads) {
                    let img = try! RGBImage.load(paths[i])
                    _ = processor.pixelValues(img)
                    _ = processor.codebookPixelValues(img)
                }
            }
        }
        let ips = Double(paths.count) / t.median
        print(String(format: "images: %d files in %.1f ms, %.1f images/s (%d thread%@)", paths.count, t.median * 1000, ips, threads, threads == 1 ? "" : "s"))
        emit(json, ["bench": "images", "threads": threads, "images": paths.count, "images_per_second": ips])
    }
}

struct LoaderBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "loader",
        abstract: "Pretraining input pipeline throughput: decode + shared RandomResizedCrop + both views + block mask + tokenize + whole-word MLM, through the background loader.")
    @Option(help: "Folder of images (JPEG/PNG); captions are made up.") var dir: String
    @Option(help: "vocab.txt") var vocab: String
    @Option(help: "Model image size.") var imageSize = 224
    @Option(help: "Patch size.") var patchSize = 16
    @Option(help: "Batch size.") var batchSize = 8
    @Option(help: "Batches to time.") var batches = 20
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".jpg") || $0.hasSuffix(".png") }.sorted()
        let manifest = FileManager.default.temporaryDirectory.appendingPathComponent("flava-loader-bench.jsonl").path
        try files.enumerated().map { "{\"image\": \"\(dir)/\($0.element)\", \"caption\": \"a photo number \($0.offset) of a red circle above a blue square\"}" }
            .joined(separator: "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        var cfg = PretrainingDataConfig(imageSize: imageSize, patchSize: patchSize, maxTextLength: 77)
        cfg.augment = true
        let batcher = PretrainingBatcher(config: cfg, tokenizer: try BertTokenizer(vocabFile: vocab))
        let loader = try DataLoader(source: try ManifestSource(path: manifest), options: LoaderOptions(batchSize: batchSize, shuffleBuffer: 64),
            transform: { r, g in try batcher.item(r, needImage: true, needText: true, wholeWord: true, &g) },
            collate: { items, g in batcher.collate(items, pairs: true, &g) })
        _ = try loader.next()
        let t0 = Date()
        for _ in 0..<batches { _ = try loader.next() }
        let sps = Double(batches * batchSize) / Date().timeIntervalSince(t0)
        print(String(format: "loader: %.1f samples/s (%d-px pairs, batch %d, background thread + %d workers)", sps, imageSize, batchSize, Parallel.threadCount))
        emit(json, ["bench": "loader", "samples_per_second": sps, "image_size": imageSize, "batch_size": batchSize])
    }
}

/// The model config, image side and text length of a training benchmark's size: "small" (the small preset, 32
/// tokens) or anything else for FlavaConfig() (224 px, 77 tokens).
func trainingBenchShape(_ size: String) -> (config: FlavaConfig, imageSize: Int, tokens: Int) {
    guard size == "small" else { return (FlavaConfig(), 224, 77) }
    let c = FlavaTrainingPresets.smallConfig(vocabSize: 30522)
    return (c, c.imageConfig.imageSize, 32)
}

/// Rows `rows` of a fixed synthetic image-text pretraining batch of `batch` samples (seed 1): random ids, one MLM
/// label per text, random pixels and codebook pixels, a third of the patches masked, sample 0 the ITM negative.
func syntheticPretrainingBatch(_ config: FlavaConfig, imageSize: Int, tokens: Int, batch B: Int, rows: Range<Int>) -> FlavaPreTrainingInput {
    var g = SeededGenerator(seed: 1)
    let n = (imageSize / config.imageConfig.patchSize) * (imageSize / config.imageConfig.patchSize)
    let cb = n.squareRootInt * 8
    let ids = IntTensor(shape: [B, tokens], (0..<(B * tokens)).map { _ in 1000 + Int(g.next() % 20000) })
    var mlm = [Int](repeating: -100, count: B * tokens); for i in 0..<B { mlm[i * tokens + 2] = ids.values[i * tokens + 2] }
    let px = Tensor.randomNormal([B, 3, imageSize, imageSize], using: &g)
    let cpx = Tensor.randomUniform([B, 3, cb, cb], low: 0.1, high: 0.9, using: &g)
    let whole = rows == 0..<B
    func slice(_ t: IntTensor) -> IntTensor {
        if whole { return t }
        let w = t.count / t.shape[0]
        return IntTensor(shape: [rows.count] + t.shape.dropFirst(), Array(t.values[(rows.lowerBound * w)..<(rows.upperBound * w)]))
    }
    func slice(_ t: Tensor) -> Tensor { whole ? t : ShapeKernel.slice(t, axis: 0, start: rows.lowerBound, end: rows.upperBound) }
    let mine = slice(ids)
    return FlavaPreTrainingInput(inputIds: mine, inputIdsMasked: mine, attentionMask: IntTensor(shape: [rows.count, tokens], repeating: 1),
        pixelValues: slice(px), codebookPixelValues: slice(cpx),
        boolMaskedPos: slice(IntTensor(shape: [B, n], (0..<(B * n)).map { $0 % 3 == 0 ? 1 : 0 })),
        mlmLabels: slice(IntTensor(shape: [B, tokens], mlm)), itmLabels: slice(IntTensor(shape: [B], (0..<B).map { $0 == 0 ? 0 : 1 })))
}

struct TrainStep: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train-step",
        abstract: "One FlavaForPreTraining step on an image-text batch (contrastive + ITM + MMM losses, backward, AdamW), at FlavaConfig() size or small.")
    @Option(help: "full or small.") var size = "full"
    @Option(help: "Batch size.") var batchSize = 8
    @Option(help: "Timed steps.") var iterations = 3
    @Option(help: "Untimed steps first.") var warmup = 1
    @Option(help: "Write the model's config.json here (for the PyTorch side).") var dumpConfig: String?
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Gradient checkpointing: recompute each encoder layer's activations in backward.") var gradCheckpointing = false
    @Flag(help: "After the timed steps, one more step split into forward / backward / optimizer, with backward time by op.") var profile = false

    func run() throws {
        let (config, imageSize, tokens) = trainingBenchShape(size)
        if let dumpConfig { try config.save(dumpConfig) }
        var ini = Initializer(seed: 0)
        let model = FlavaForPreTraining(config, init: &ini)
        model.train()
        model.setGradientCheckpointing(gradCheckpointing)
        let opt = AdamW(namedParameters: model.namedParameters().filter { $0.variable.requiresGrad }, .init(learningRate: 1e-4, weightDecay: 0.1))
        let b = batchSize
        let input = syntheticPretrainingBatch(config, imageSize: imageSize, tokens: tokens, batch: b, rows: 0..<b)
        func step() {
            model.zeroGrad()
            let out = model(input)
            out.loss!.backward()
            opt.step()
        }
        let t = time(iterations: iterations, warmup: warmup) { step() }
        if profile {
            model.zeroGrad()
            let t0 = DispatchTime.now().uptimeNanoseconds
            let out = model(input)
            let t1 = DispatchTime.now().uptimeNanoseconds
            BackwardProfiler.isEnabled = true
            out.loss!.backward()
            BackwardProfiler.isEnabled = false
            let t2 = DispatchTime.now().uptimeNanoseconds
            opt.step()
            let t3 = DispatchTime.now().uptimeNanoseconds
            print(String(format: "forward %.2f s, backward %.2f s, optimizer %.2f s", Double(t1 - t0) / 1e9, Double(t2 - t1) / 1e9, Double(t3 - t2) / 1e9))
            if let cb = model.imageCodebook {
                let c0 = DispatchTime.now().uptimeNanoseconds
                _ = withNoGrad { cb.codebookIndices(input.codebookPixelValues!) }
                print(String(format: "  of the forward: codebook targets %.2f s", Double(DispatchTime.now().uptimeNanoseconds - c0) / 1e9))
            }
            for r in BackwardProfiler.report().prefix(25) { print(String(format: "  backward %-28@ %9.1f ms  %5d calls", r.op, r.ms, r.calls)) }
        }
        let sps = Double(b) / t.median
        print(String(format: "train step (%@, batch %d%@): %.2f s, %.2f samples/s, peak RSS %.0f MiB", size, b,
                     gradCheckpointing ? ", checkpointing" : "", t.median, sps, Double(ProcessMemory.peakResidentBytes) / 1048576))
        emit(json, ["bench": "train_step", "size": size, "batch_size": b, "grad_checkpointing": gradCheckpointing, "seconds": t.median,
                    "samples_per_second": sps, "peak_rss_bytes": ProcessMemory.peakResidentBytes])
    }
}

/// The training engine's data-parallel step on a fixed image-text batch (as train-step's), under mpirun.
final class FixedBatchTask: TrainingTask {
    typealias State = NoTaskState
    let model: FlavaForPreTraining
    let input: FlavaPreTrainingInput
    init(_ model: FlavaForPreTraining, _ input: FlavaPreTrainingInput) { self.model = model; self.input = input }
    var trainableParameters: [(key: String, variable: Variable)] { model.namedParameters() }
    var crossRankLoss: CrossRankLoss { .sum }   // FlavaForPreTraining normalizes by the global batch's counts
    func setTraining(_ on: Bool) { model.train(on) }
    func microBatch(step: Int, kind: String?, generator: inout SeededGenerator) throws -> MicroBatchLoss {
        let out = model(input)
        return MicroBatchLoss(loss: out.loss!, losses: ["loss": Double(out.loss!.value.scalarValue)], samples: input.inputIds!.shape[0])
    }
    func saveModel(to dir: String) throws {}
    func loadModel(from dir: String) throws {}
    func state() throws -> NoTaskState { NoTaskState() }
    func restore(_ state: NoTaskState, from dir: String) throws {}
}

struct DataParallelStep: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dp-step",
        abstract: "The engine's training step (train-step's batch and losses, global contrastive gather, bucketed all-reduce, clipping, AdamW) on one process or under mpirun.",
        discussion: "--batch-size is the global batch; each rank takes its slice. Prints the global samples per second and the largest peak RSS of a rank.")
    @Option(help: "full or small.") var size = "small"
    @Option(help: "Global batch size.") var batchSize = 32
    @Option(help: "Timed steps.") var iterations = 5
    @Option(help: "Untimed steps first.") var warmup = 1
    @Flag(help: "Shard the optimizer state (ZeRO-1).") var shardOptimizer = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let comm = try DataParallel.world()
        defer { DataParallel.finish() }
        let (config, imageSize, tokens) = trainingBenchShape(size)
        guard batchSize % comm.size == 0 else { throw ValidationError("--batch-size must split evenly across \(comm.size) ranks") }
        var ini = Initializer(seed: 0)
        let model = FlavaForPreTraining(config, init: &ini)
        // The global batch (the same on every rank), then this rank's rows.
        let B = batchSize, b = B / comm.size, r0 = comm.rank * b
        var input = syntheticPretrainingBatch(config, imageSize: imageSize, tokens: tokens, batch: B, rows: r0..<(r0 + b))
        input.communicator = comm
        var settings = TrainingSettings(steps: warmup + iterations, learningRate: 1e-4, weightDecay: 0.1, warmupSteps: 0, maxGradNorm: 1)
        settings.shardOptimizer = shardOptimizer
        let engine = try TrainingEngine(task: FixedBatchTask(model, input), settings: settings, communicator: comm)
        model.train()
        for _ in 0..<warmup { _ = try engine.trainStep() }
        var times: [Double] = [], traffic: [CollectiveTraffic] = []
        for _ in 0..<iterations {
            let before = comm.traffic, t0 = now()
            _ = try engine.trainStep()
            times.append(now() - t0); traffic.append(comm.traffic.since(before))
        }
        let order = times.indices.sorted { times[$0] < times[$1] }, mid = order[order.count / 2]
        let t = (median: times[mid], all: times)
        let c = traffic[mid]   // the median step's collectives
        let worst = comm.allReduce([Double(ProcessMemory.peakResidentBytes)], .max)[0]
        guard comm.isRoot else { return }
        let sps = Double(B) / t.median
        print(String(format: "engine step (%@, global batch %d, %d rank%@%@): %.2f s, %.2f samples/s, largest peak RSS of a rank %.0f MiB", size, B,
                     comm.size, comm.size == 1 ? "" : "s", shardOptimizer ? ", sharded optimizer" : "", t.median, sps, worst / 1048576))
        if comm.size > 1 {
            print(String(format: "  rank 0's collectives in the median step: %d calls, %.1f MB payload, %.0f ms (%.0f%% of the step)",
                         c.calls, Double(c.payloadBytes) / 1e6, c.seconds * 1000, 100 * c.seconds / t.median))
        }
        emit(json, ["bench": "dp_step", "size": size, "batch_size": B, "ranks": comm.size, "sharded": shardOptimizer, "seconds": t.median,
                    "step_seconds": t.all, "samples_per_second": sps, "peak_rss_bytes": Int(worst),
                    "collective_calls": c.calls, "collective_payload_bytes": c.payloadBytes, "collective_seconds": c.seconds,
                    "parameters": model.namedParameters().reduce(0) { $0 + $1.variable.value.count }])
    }
}

struct AllReduceBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "allreduce",
        abstract: "Time the communicator's all-reduce (sum of floats) at several sizes, under mpirun: the link's latency and bandwidth for the scaling model in BENCHMARKS.md.")
    @Option(help: "Sizes in bytes, comma-separated.") var bytes = "4096,1048576,26214400"
    @Option(help: "Timed repetitions per size.") var iterations = 7
    @Flag(help: "Print one JSON object per size.") var json = false

    func run() throws {
        let comm = try DataParallel.world()
        defer { DataParallel.finish() }
        guard comm.size > 1 else { throw ValidationError("run it under mpirun with at least 2 ranks") }
        for size in bytes.split(separator: ",").compactMap({ Int($0) }) {
            var buffer = [Float](repeating: 1, count: max(1, size / 4))
            comm.barrier()
            let t = time(iterations: iterations, warmup: 2) {
                comm.barrier()
                buffer.withUnsafeMutableBufferPointer { comm.allReduce($0, .sum) }
            }
            // Ring all-reduce: each rank sends and receives 2(N-1)/N of the buffer.
            let wire = 2 * Double(comm.size - 1) / Double(comm.size) * Double(buffer.count * 4)
            guard comm.isRoot else { continue }
            print(String(format: "all-reduce of %d bytes on %d ranks: %.3f ms (%.0f MB/s of ring traffic per rank)",
                         buffer.count * 4, comm.size, t.median * 1000, wire / t.median / 1e6))
            emit(json, ["bench": "allreduce", "bytes": buffer.count * 4, "ranks": comm.size, "seconds": t.median,
                        "ring_bytes_per_second": wire / t.median])
        }
    }
}

struct CodebookBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "codebook",
        abstract: "The frozen DALL-E codebook (FlavaImageCodebook, FlavaConfig() size) turning images into MIM targets, as a pretraining step does.")
    @Option(help: "Images.") var batchSize = 4
    @Option(help: "Image side in pixels.") var imageSize = 112
    @Option(help: "Timed repetitions.") var iterations = 3
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        var ini = Initializer(seed: 0)
        let cb = FlavaImageCodebook(FlavaImageCodebookConfig(), init: &ini)
        var g = SeededGenerator(seed: 1)
        let x = Tensor.randomUniform([batchSize, 3, imageSize, imageSize], low: 0.1, high: 0.9, using: &g)
        let t = time(iterations: iterations) { _ = withNoGrad { cb.codebookIndices(x) } }
        print(String(format: "codebook (%d × %d px): %.3f s, %.2f images/s", batchSize, imageSize, t.median, Double(batchSize) / t.median))
        emit(json, ["bench": "codebook", "batch_size": batchSize, "image_size": imageSize, "seconds": t.median])
    }
}

extension Int { var squareRootInt: Int { Int(Double(self).squareRoot().rounded()) } }

BLASRuntime.ensureFastKernels()
Bench.main()
