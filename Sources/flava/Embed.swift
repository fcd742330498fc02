// flava embed: image and text embeddings (the projected, L2-normalized [CLS] states zero-shot retrieval uses),
// optionally with hidden states, written as safetensors or JSON.
import ArgumentParser
import Foundation
import FlavaKit

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute FLAVA embeddings for images and texts.",
        discussion: """
        Writes image_embeds [N_images, P] and text_embeds [N_texts, P]: the projected [CLS] states, L2-normalized. \
        With --hidden-states also image_hidden [N, 1+patches, H], text_hidden [N, L, H] (after the final layer \
        norm) and, when there are as many images as texts, multimodal_hidden [N, 1+1+patches+L, H] for the pairs \
        in order. Texts are tokenized with the folder's vocab.txt as [CLS] … [SEP] and padded to the longest.
        """)

    @Option(help: "Model folder (config.json, weights, vocab.txt).") var model: String
    @Option(name: .customLong("image"), help: "An image file (JPEG or PNG); repeat for several.") var images: [String] = []
    @Option(name: .customLong("text"), help: "A text; repeat for several.") var texts: [String] = []
    @Option(help: "Output file.") var output: String
    @Flag(help: "Also write the hidden states.") var hiddenStates = false
    @Option(help: "Longest text in tokens, including [CLS] and [SEP] (capped at the model's positions).") var maxLength = 77
    @Option(help: "Items per forward pass.") var batchSize = 8
    @Option(help: "safetensors or json.") var format = "safetensors"
    @Option(help: "Arithmetic: fp32, or int8 (dynamic int8 Linear layers: faster, embeddings within about 1 % of fp32).") var precision: InferencePrecision = .fp32

    func validate() throws {
        if images.isEmpty && texts.isEmpty { throw ValidationError("give at least one --image or --text") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if maxLength < 2 { throw ValidationError("--max-length must be at least 2 ([CLS] and [SEP])") }
        if !["safetensors", "json"].contains(format) { throw ValidationError("--format must be safetensors or json") }
    }

    func run() throws {
        let embedder = try FlavaEmbedder(directory: model, precision: precision)
        let decoded = try images.map { try RGBImage.load($0) }
        let pixels = decoded.isEmpty ? nil : embedder.pixelValues(decoded)
        let text = texts.isEmpty ? nil : try embedder.tokenize(texts, maxLength: maxLength)
        var out: [(String, Tensor)] = []
        let bar = ProgressBar(total: images.count + texts.count, label: "embed")
        if let pixels {
            out.append(("image_embeds", embedder.imageEmbeddings(pixels, batchSize: batchSize) { bar.update($0) }))
        }
        if let text {
            out.append(("text_embeds", embedder.textEmbeddings(text, batchSize: batchSize) { bar.update(images.count + $0) }))
        }
        if hiddenStates {
            let pairs = !images.isEmpty && images.count == texts.count
            let h = embedder.hiddenStates(pixels: pixels, text: text, pairs: pairs, batchSize: batchSize)
            if let t = h.image { out.append(("image_hidden", t)) }
            if let t = h.text { out.append(("text_hidden", t)) }
            if let t = h.multimodal { out.append(("multimodal_hidden", t)) }
        }
        try write(out)
        let summary = out.map { "\($0.0) \($0.1.shape)" }.joined(separator: ", ")
        print("wrote \(output): \(summary)")
    }

    func write(_ tensors: [(String, Tensor)]) throws {
        if format == "safetensors" {
            try SafeTensors.write(tensors.map { ($0.0, .float($0.1)) }, metadata: ["format": "pt", "producer": "flava embed"], to: output)
            return
        }
        func nested(_ t: Tensor) -> Any {
            func build(_ dims: ArraySlice<Int>, _ offset: Int) -> Any {
                guard let d = dims.first else { return Double(t[flat: offset]) }
                let stride = dims.dropFirst().reduce(1, *)
                return (0..<d).map { build(dims.dropFirst(), offset + $0 * stride) }
            }
            return build(t.shape[...], 0)
        }
        var dict: [String: Any] = [:]
        for (k, t) in tensors { dict[k] = nested(t) }
        let data = try JSONSerialization.data(withJSONObject: dict, options: [.sortedKeys])
        try AtomicFile.write(to: output) { sink in try data.withUnsafeBytes { try sink.write($0) } }
    }
}
