// flava inspect: what a checkpoint holds — keys, dtypes, shapes, and parameter counts per component.
import ArgumentParser
import Foundation
import FlavaKit

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a checkpoint's tensors (keys, dtypes, shapes) and parameter counts per component.",
        discussion: """
        PATH is a .safetensors file, a PyTorch .bin, a sharded *.index.json, or a Hugging Face model folder \
        (model.safetensors, model.safetensors.index.json or pytorch_model.bin).
        """)

    @Argument(help: "Checkpoint file or model folder.") var path: String
    @Flag(help: "List every tensor, not only the per-component summary.") var all = false
    @Option(help: "Group keys by this many leading dotted parts for the summary.") var depth = 2
    @Flag(help: "Print JSON instead of tables.") var json = false

    func run() throws {
        let source = try openWeights(path)
        var components: [String: (tensors: Int, elements: Int)] = [:]
        var order: [String] = []
        var total = 0
        var rows: [[String]] = []
        for key in source.keys {
            guard let info = source.info(key) else { continue }
            let n = Tensor.elementCount(info.shape)
            total += n
            let parts = key.split(separator: ".")
            // Keep numeric parts out of component names ("encoder.layer.0" → "encoder.layer").
            let comp = parts.prefix(depth).prefix { Int($0) == nil }.joined(separator: ".")
            if components[comp] == nil { order.append(comp) }
            components[comp, default: (0, 0)].tensors += 1
            components[comp, default: (0, 0)].elements += n
            rows.append([key, info.dtype.rawValue, "[" + info.shape.map(String.init).joined(separator: ", ") + "]", grouped(n)])
        }
        if json {
            let out: [String: Any] = [
                "path": source.sourcePath, "tensors": source.keys.count, "parameters": total,
                "components": order.map { ["name": $0, "tensors": components[$0]!.tensors, "parameters": components[$0]!.elements] },
                "keys": source.keys.map { k in ["key": k, "dtype": source.info(k)!.dtype.rawValue, "shape": source.info(k)!.shape] },
            ]
            let data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("\(source.sourcePath): \(source.keys.count) tensors, \(grouped(total)) parameters\n")
        if all {
            var t = TextTable(["key", "dtype", "shape", "elements"])
            rows.forEach { t.add($0) }
            print(t.render() + "\n")
        }
        var t = TextTable(["component", "tensors", "parameters"])
        for c in order { t.add([c, String(components[c]!.tensors), grouped(components[c]!.elements)]) }
        t.add(["total", String(source.keys.count), grouped(total)])
        print(t.render())
        try compareWithModel(source)
    }

    /// For a model folder: what the model its config.json describes expects, against what the file holds.
    func compareWithModel(_ source: TensorSource) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue,
              FileManager.default.fileExists(atPath: path + "/config.json") else { return }
        let (config, isCodebook) = try FlavaCheckpoint.config(in: path)
        guard let layout = FlavaCheckpointLayout.detect(source.keys) else {
            print("\nno FLAVA keys found (expected flava.*, image_model.* or blocks.*)")
            return
        }
        var ini = Initializer(mode: .zeros)
        let expected: [(key: String, variable: Variable)]
        switch layout {
        case .preTraining: expected = FlavaForPreTraining(config, init: &ini).namedParameters()
        case .model: expected = FlavaModel(config, init: &ini).namedParameters()
        case .codebook: expected = FlavaImageCodebook(config.imageCodebookConfig, init: &ini).namedParameters()
        }
        _ = isCodebook
        let have = Set(source.keys)
        var missing: [String] = [], mismatched: [String] = []
        for (k, v) in expected {
            guard let info = source.info(k) else {
                if !(k.hasSuffix("decoder.bias") && have.contains(String(k.dropLast("decoder.bias".count)) + "bias")) { missing.append(k) }
                continue
            }
            if info.shape != v.shape && !(info.shape.reduce(1, *) == 1 && v.value.count == 1) {
                mismatched.append("\(k): file \(info.shape) vs model \(v.shape)")
            }
        }
        let known = Set(expected.map(\.key))
        let unexpected = source.keys.filter { k in
            !known.contains(k) && !k.hasSuffix("position_ids") && !(k.hasSuffix("_head.bias") && known.contains(String(k.dropLast("bias".count)) + "decoder.bias"))
        }
        print("\nagainst \(layout.rawValue) of config.json: \(missing.isEmpty && unexpected.isEmpty && mismatched.isEmpty ? "every key present with its shape" : "differences below")")
        for k in missing.prefix(20) { print("  missing     \(k)") }
        for k in unexpected.prefix(20) { print("  unexpected  \(k)") }
        for k in mismatched.prefix(20) { print("  mis-shaped  \(k)") }
        let more = max(0, missing.count - 20) + max(0, unexpected.count - 20) + max(0, mismatched.count - 20)
        if more > 0 { print("  … and \(more) more") }
    }
}
