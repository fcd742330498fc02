// Finding the weights in a Hugging Face model folder: model.safetensors, a sharded
// model.safetensors.index.json, or pytorch_model.bin (and its sharded index).
import Foundation
import FlavaTensor

/// Several tensor files presented as one source (a sharded checkpoint).
public final class ShardedSource: TensorSource {
    public let sourcePath: String
    public let keys: [String]
    private let owner: [String: TensorSource]

    /// Opens `index` (a `*.index.json` with a `weight_map` of key → shard file) and every shard it names.
    public init(index: String) throws {
        sourcePath = index
        guard let data = FileManager.default.contents(atPath: index) else { throw CheckpointError(index, "cannot read file") }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let map = json["weight_map"] as? [String: String] else {
            throw CheckpointError(index, "not a sharded-checkpoint index (no weight_map object)")
        }
        let dir = URL(fileURLWithPath: index).deletingLastPathComponent()
        var shards: [String: TensorSource] = [:]
        var owner: [String: TensorSource] = [:]
        for (key, file) in map.sorted(by: { $0.key < $1.key }) {
            guard !file.contains("/") else { throw CheckpointError(index, "shard name '\(file)' must be a file in the same folder") }
            let shard: TensorSource
            if let s = shards[file] { shard = s } else {
                shard = try openCheckpoint(dir.appendingPathComponent(file).path)
                shards[file] = shard
            }
            guard shard.info(key) != nil else { throw CheckpointError(dir.appendingPathComponent(file).path, "lacks tensor '\(key)' listed in the index") }
            owner[key] = shard
        }
        self.owner = owner
        keys = owner.keys.sorted()
    }

    public func info(_ key: String) -> (dtype: DType, shape: [Int])? { owner[key]?.info(key) }
    public func floatTensor(_ key: String) throws -> Tensor {
        guard let s = owner[key] else { throw CheckpointError(sourcePath, "no tensor named '\(key)'") }
        return try s.floatTensor(key)
    }
    public func intTensor(_ key: String) throws -> IntTensor {
        guard let s = owner[key] else { throw CheckpointError(sourcePath, "no tensor named '\(key)'") }
        return try s.intTensor(key)
    }
}

/// Opens the weights of a checkpoint given as a file or a Hugging Face model folder.
public func openWeights(_ path: String) throws -> TensorSource {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw CheckpointError(path, "no such file or folder") }
    if !isDir.boolValue {
        if path.hasSuffix(".index.json") { return try ShardedSource(index: path) }
        return try openCheckpoint(path)
    }
    let dir = URL(fileURLWithPath: path)
    for name in ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"] {
        let candidate = dir.appendingPathComponent(name).path
        if FileManager.default.fileExists(atPath: candidate) { return try openWeights(candidate) }
    }
    throw CheckpointError(path, "no model.safetensors, model.safetensors.index.json or pytorch_model.bin in this folder")
}
