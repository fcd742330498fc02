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
    }
}
