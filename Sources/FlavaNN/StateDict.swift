// Loading and saving a module's parameters by key: strict loading reports every missing, unexpected and
// mis-shaped key in one error; non-strict loading says what it skipped.
import Foundation
import FlavaTensor
import FlavaAutograd

/// What a load did.
public struct LoadReport: CustomStringConvertible, Sendable {
    /// Keys the model has that the checkpoint lacked (left as they were).
    public var missing: [String] = []
    /// Keys the checkpoint has that the model does not.
    public var unexpected: [String] = []
    /// Keys present on both sides with different shapes: (key, checkpoint shape, model shape).
    public var mismatched: [(key: String, checkpoint: [Int], model: [Int])] = []
    /// Keys loaded.
    public var loaded = 0

    /// True when everything matched.
    public var isExact: Bool { missing.isEmpty && unexpected.isEmpty && mismatched.isEmpty }

    public var description: String {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("\(missing.count) missing (\(LoadReport.list(missing)))") }
        if !unexpected.isEmpty { parts.append("\(unexpected.count) unexpected (\(LoadReport.list(unexpected)))") }
        if !mismatched.isEmpty {
            parts.append("\(mismatched.count) mis-shaped (\(LoadReport.list(mismatched.map { "\($0.key): checkpoint \($0.checkpoint) vs model \($0.model)" })))")
        }
        return parts.isEmpty ? "\(loaded) tensors loaded" : parts.joined(separator: "; ")
    }

    static func list(_ items: [String]) -> String {
        items.count <= 6 ? items.joined(separator: ", ") : items.prefix(6).joined(separator: ", ") + ", …"
    }
}

extension Module {
    /// Copies every parameter value of `source`, a module of the same structure (same keys and shapes); false,
    /// with nothing copied, when the structures differ.
    public func copyParameters(from source: Module) -> Bool {
        let to = namedParameters(), from = source.namedParameters()
        guard to.map(\.key) == from.map(\.key), zip(to, from).allSatisfy({ $0.variable.shape == $1.variable.shape }) else { return false }
        for (a, b) in zip(to, from) { a.variable.value = b.variable.value.copy() }
        return true
    }

    /// The state dict: every parameter's value by key, in declaration order.
    public func stateDict(prefix: String = "") -> [(key: String, value: Tensor)] {
        namedParameters(prefix: prefix).map { ($0.key, $0.variable.value) }
    }

    /// Loads parameters from `source`. Checkpoint keys are read with `keyPrefix` removed (keys without it are
    /// unexpected). Tied-weight aliases count as present and are never unexpected. `strict` throws one error
    /// listing every missing, unexpected and mis-shaped key and changes nothing; non-strict loads what matches
    /// and reports the rest.
    @discardableResult
    public func load(from source: TensorSource, keyPrefix: String = "", strict: Bool = true,
                     ignoring ignored: (String) -> Bool = { _ in false }) throws -> LoadReport {
        let params = namedParameters()
        let aliases = parameterAliases()
        var report = LoadReport()
        var available: [String: String] = [:]  // model key → checkpoint key
        for ck in source.keys {
            guard ck.hasPrefix(keyPrefix) else { if !ignored(ck) { report.unexpected.append(ck) }; continue }
            let k = String(ck.dropFirst(keyPrefix.count))
            available[k] = ck
        }
        var used = Set<String>()
        var plan: [(Variable, String)] = []
        for (key, v) in params {
            guard let ck = available[key] ?? aliases.first(where: { $0.value == key && available[$0.key] != nil }).flatMap({ available[$0.key] }) else {
                report.missing.append(key); continue
            }
            used.insert(ck)
            let shape = source.info(ck)!.shape
            // A 0-dim parameter may be stored as [1] by some writers, and vice versa.
            let compatible = shape == v.shape || (Tensor.elementCount(shape) == 1 && v.value.count == 1 && shape.count <= 1 && v.shape.count <= 1)
            if !compatible { report.mismatched.append((key, shape, v.shape)); continue }
            plan.append((v, ck))
        }
        for (k, ck) in available where !used.contains(ck) {
            if aliases[k] != nil || ignored(ck) { continue }
            report.unexpected.append(ck)
        }
        report.unexpected.sort()
        if strict && !report.isExact {
            throw CheckpointError(source.sourcePath, "does not match the model: \(report)")
        }
        for (v, ck) in plan {
            v.value = try source.floatTensor(ck).reshaped(v.shape)
            v.grad = nil
        }
        report.loaded = plan.count
        return report
    }

    /// Writes the state dict as safetensors (atomically), with `keyPrefix` prepended to every key.
    public func saveSafeTensors(to path: String, keyPrefix: String = "", metadata: [String: String] = ["format": "pt"]) throws {
        guard !isInferenceOnly else {
            throw CheckpointError(path, "not written: this model is inference-only (its float weights were released by prepareForInference)")
        }
        try SafeTensors.write(stateDict(prefix: keyPrefix.hasSuffix(".") ? String(keyPrefix.dropLast()) : keyPrefix)
                                .map { ($0.key, .float($0.value)) }, metadata: metadata, to: path)
    }
}

/// Opens a checkpoint file by its format: `.safetensors` or a torch.save archive (`.bin`, `.pt`, `.pth`).
public func openCheckpoint(_ path: String) throws -> TensorSource {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
        throw CheckpointError(path, "no such file")
    }
    guard !isDir.boolValue else { throw CheckpointError(path, "is a folder, expected a checkpoint file") }
    if path.hasSuffix(".safetensors") { return try SafeTensorsFile(path: path) }
    return try TorchCheckpoint(path: path)
}
