// flava bench: forward throughput and peak memory of a model, for capacity planning.
import ArgumentParser
import Foundation
import FlavaKit

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure forward throughput (items/s) and peak memory of the image, text or multimodal path.",
        discussion: """
        Runs inference (no gradients) on random inputs of the model's image size and --tokens text tokens. \
        'multimodal' runs image + text + multimodal encoders on pairs. Without --model it builds a randomly \
        initialized FLAVA of the default (paper) size.
        """)

    @Option(help: "Model folder (default: a random full-size FLAVA).") var model: String?

    @Option(help: "Arithmetic: fp32, or int8 (dynamic int8 Linear layers: faster, embeddings within about 1 % of fp32).") var precision: InferencePrecision = .fp32
    @Option(help: "image, text or multimodal.") var what = "image"
    @Option(help: "Items per forward pass.") var batchSize = 8
    @Option(help: "Timed forward passes (after one warm-up).") var iterations = 5
    @Option(help: "Text length in tokens (default 77, capped at the model's positions).") var tokens: Int?
    @Option(help: "Write a JSON summary here.") var summary: String?

    func validate() throws {
        guard ["image", "text", "multimodal"].contains(what) else { throw ValidationError("--what must be image, text or multimodal") }
        guard batchSize >= 1, iterations >= 1, (tokens ?? 2) >= 2 else { throw ValidationError("--batch-size, --iterations must be ≥ 1 and --tokens ≥ 2") }
    }

    func run() throws {
        let flava: FlavaModel
        if let model { flava = try FlavaCheckpoint.loadModel(model) } else {
            var ini = Initializer(seed: 0)
            flava = FlavaModel(FlavaConfig(), init: &ini)
        }
        let parameters = flava.parameterCount
        flava.prepareForInference(precision, releasingFloatWeights: true)
        let c = flava.config
        let tokens = self.tokens ?? min(77, c.textConfig.maxPositionEmbeddings)
        guard tokens <= c.textConfig.maxPositionEmbeddings else {
            throw ValidationError("--tokens \(tokens) exceeds the model's \(c.textConfig.maxPositionEmbeddings) positions")
        }
        var g = SeededGenerator(seed: 1)
        let s = c.imageConfig.imageSize
        let pixels = Tensor.randomNormal([batchSize, c.imageConfig.numChannels, s, s], using: &g)
        let ids = IntTensor(shape: [batchSize, tokens], (0..<(batchSize * tokens)).map { _ in Int(g.next() % UInt64(c.textConfig.vocabSize)) })
        let mask = IntTensor(shape: [batchSize, tokens], repeating: 1)
        func step() {
            withNoGrad {
                switch what {
                case "image": _ = flava(pixelValues: Variable(pixels))
                case "text": _ = flava(inputIds: ids, attentionMask: mask)
                default: _ = flava(pixelValues: Variable(pixels), inputIds: ids, attentionMask: mask)
                }
            }
        }
        step()  // warm-up
        var times: [Double] = []
        let bar = ProgressBar(total: iterations, label: "bench")
        for i in 0..<iterations {
            let t0 = Date()
            step()
            times.append(Date().timeIntervalSince(t0))
            bar.update(i + 1)
        }
        let median = times.sorted()[times.count / 2]
        let ips = Double(batchSize) / median
        let rss = ProcessMemory.peakResidentBytes, resident = ProcessMemory.residentBytes
        var t = TextTable(["what", "precision", "batch", "ms/batch", "items/s", "peak RSS MiB", "RSS after MiB", "parameters"])
        t.add([what, precision.rawValue + (precision == .int8 ? " (\(Int8GEMM.path))" : ""), String(batchSize), String(format: "%.1f", median * 1000), String(format: "%.2f", ips),
               String(format: "%.0f", Double(rss) / 1_048_576), String(format: "%.0f", Double(resident) / 1_048_576), grouped(parameters)])
        print(t.render())
        if let summary {
            let json: [String: Any] = ["what": what, "batch_size": batchSize, "iterations": iterations, "tokens": tokens,
                                       "items_per_second": ips, "median_seconds_per_batch": median, "peak_rss_bytes": rss,
                                       "rss_bytes_after": resident,
                                       "parameters": parameters, "blas_core": BLASRuntime.coreName,
                                       "precision": precision.rawValue, "int8_kernel": Int8GEMM.path.description]
            try writeSummary(json, to: summary)
        }
    }
}

