// Loading and saving FLAVA checkpoints in the Hugging Face layout: a folder with config.json and weights
// (model.safetensors, a sharded model.safetensors.index.json, or pytorch_model.bin), saved from
// FlavaForPreTraining (keys `flava.*` plus heads and `image_codebook.*`), from FlavaModel (no prefix), or a
// standalone FlavaImageCodebook (`blocks.*`). We save in the FlavaForPreTraining layout.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN

/// Which class a checkpoint's keys were saved from.
public enum FlavaCheckpointLayout: String, Sendable {
    case preTraining = "FlavaForPreTraining"
    case model = "FlavaModel"
    case codebook = "FlavaImageCodebook"

    /// Recognizes the layout from the key names.
    public static func detect(_ keys: [String]) -> FlavaCheckpointLayout? {
        if keys.contains(where: { $0.hasPrefix("flava.") }) { return .preTraining }
        if keys.contains(where: { $0.hasPrefix("image_model.") || $0.hasPrefix("text_model.") || $0.hasPrefix("multimodal_model.") }) { return .model }
        if keys.contains(where: { $0.hasPrefix("blocks.") }) { return .codebook }
        return nil
    }
}

/// A FLAVA checkpoint folder.
public enum FlavaCheckpoint {
    /// Keys older checkpoints carry that are buffers, not parameters.
    static func isBuffer(_ key: String) -> Bool { key.hasSuffix("position_ids") }

    /// Reads `config.json` from a model folder (a standalone codebook folder gets its codebook config placed
    /// into a default FlavaConfig).
    public static func config(in dir: String) throws -> (FlavaConfig, isCodebook: Bool) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) else { throw ConfigError(dir, "no such folder") }
        guard isDir.boolValue else { throw ConfigError(dir, "expected a model folder (with config.json), got a file") }
        let path = URL(fileURLWithPath: dir).appendingPathComponent("config.json").path
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigError(path, "missing: a model folder needs config.json") }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ConfigError(path, "not a JSON object")
        }
        if (json["model_type"] as? String) == "flava_image_codebook" {
            var c = FlavaConfig()
            c.imageCodebookConfig = try ConfigError.decode(FlavaImageCodebookConfig.self, from: data, file: path)
            try c.imageCodebookConfig.validate(ConfigChecker(file: path))
            return (c, true)
        }
        return (try FlavaConfig.load(path), false)
    }

    /// The folder's weights and their layout, checked from the header against `config` before anything is
    /// allocated (`FlavaConfig.checkAgainst`).
    static func weights(in dir: String, matching config: FlavaConfig) throws -> (TensorSource, FlavaCheckpointLayout?) {
        let source = try openWeights(dir)
        let layout = FlavaCheckpointLayout.detect(source.keys)
        try config.checkAgainst(source, prefix: layout == .preTraining ? "flava." : "", configFile: "config.json")
        return (source, layout)
    }

    /// Loads a FlavaForPreTraining from a folder, whichever layout it was saved in. Parts the checkpoint does
    /// not hold (the heads and codebook of a FlavaModel checkpoint) keep their fresh initialization and are
    /// listed in the report; anything that does not fit (a config that does not match the weights) is one
    /// error naming every offending key.
    /// `adjust` may change what does not change a shape (the loss weights) before the model is built.
    public static func loadPreTraining(_ dir: String, seed: UInt64 = 0,
                                       adjust: (inout FlavaConfig) -> Void = { _ in }) throws -> (FlavaForPreTraining, LoadReport) {
        var (config, isCodebook) = try self.config(in: dir)
        adjust(&config)
        try config.validate(file: URL(fileURLWithPath: dir).appendingPathComponent("config.json").path)
        let (source, detected) = try weights(in: dir, matching: config)
        guard let layout = detected else {
            throw CheckpointError(source.sourcePath, "no FLAVA keys found (expected flava.*, image_model.* or blocks.*)")
        }
        // Weights about to be overwritten are not sampled (358M normal draws cost seconds at full size).
        var ini = Initializer(range: Float(config.initializerRange), seed: seed, mode: layout == .preTraining ? .zeros : .random)
        let model = FlavaForPreTraining(config, init: &ini)
        let report: LoadReport
        switch layout {
        case .preTraining:
            report = try model.load(from: source, strict: false, ignoring: isBuffer)
            if report.missing.contains(where: { $0.hasPrefix("image_codebook.") }), config.initCodebook {
                var fresh = Initializer(range: Float(config.initializerRange), seed: seed)
                model.imageCodebook = FlavaImageCodebook(config.imageCodebookConfig, init: &fresh)
            }
            // Everything but a missing codebook must be present.
            let missing = report.missing.filter { !$0.hasPrefix("image_codebook.") }
            if !missing.isEmpty || !report.unexpected.isEmpty || !report.mismatched.isEmpty {
                var r = report; r.missing = missing
                throw CheckpointError(source.sourcePath, "does not match config.json: \(r)")
            }
        case .model:
            report = try model.flava.load(from: source, strict: true, ignoring: isBuffer)
        case .codebook:
            guard isCodebook || config.initCodebook, let cb = model.imageCodebook else {
                throw CheckpointError(source.sourcePath, "holds a codebook but the config has no image codebook")
            }
            report = try cb.load(from: source, strict: true)
        }
        return (model, report)
    }

    /// Whether the folder's weights hold the image-text matching head (`itm_head.*`, a FlavaForPreTraining
    /// checkpoint): from the key names, no weights loaded.
    public static func holdsImageTextMatchingHead(_ dir: String) throws -> Bool {
        try openWeights(dir).keys.contains { $0.hasPrefix("itm_head.") }
    }

    /// Loads a FlavaModel (the encoders and projections) from a folder in any layout that holds one.
    public static func loadModel(_ dir: String) throws -> FlavaModel {
        let (config, _) = try self.config(in: dir)
        let (source, layout) = try weights(in: dir, matching: config)
        var ini = Initializer(range: Float(config.initializerRange), mode: .zeros)
        let model = FlavaModel(config, init: &ini)
        switch layout {
        case .preTraining:
            let heads = ["mim_head.", "mlm_head.", "itm_head.", "mmm_image_head.", "mmm_text_head.", "image_codebook."]
            try model.load(from: source, keyPrefix: "flava.", strict: true,
                           ignoring: { k in isBuffer(k) || heads.contains { k.hasPrefix($0) } })
        case .model:
            try model.load(from: source, strict: true, ignoring: isBuffer)
        default:
            throw CheckpointError(source.sourcePath, "holds no FLAVA encoders (a codebook-only checkpoint?)")
        }
        return model
    }

    /// Loads a standalone or embedded FlavaImageCodebook.
    public static func loadCodebook(_ dir: String, trainable: Bool? = nil) throws -> FlavaImageCodebook {
        let (config, _) = try self.config(in: dir)
        let (source, layout) = try weights(in: dir, matching: config)
        var ini = Initializer(mode: .zeros)
        let cb = FlavaImageCodebook(config.imageCodebookConfig, trainable: trainable, init: &ini)
        switch layout {
        case .codebook: try cb.load(from: source, strict: true)
        case .preTraining:
            guard source.keys.contains(where: { $0.hasPrefix("image_codebook.") }) else {
                throw CheckpointError(source.sourcePath, "has no image_codebook.* weights")
            }
            try cb.load(from: source, keyPrefix: "image_codebook.", strict: true, ignoring: { !$0.hasPrefix("image_codebook.") })
        default: throw CheckpointError(source.sourcePath, "has no codebook weights")
        }
        return cb
    }

    /// Saves in the FlavaForPreTraining layout: config.json + model.safetensors (keys as transformers writes
    /// them), each written atomically; `vocab.txt` (and tokenizer files) copied from `assetsFrom` if given.
    public static func save(_ model: FlavaForPreTraining, to dir: String, assetsFrom: String? = nil) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try model.saveSafeTensors(to: URL(fileURLWithPath: dir).appendingPathComponent("model.safetensors").path)
        try model.config.save(URL(fileURLWithPath: dir).appendingPathComponent("config.json").path)
        if let src = assetsFrom {
            for name in ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json"] {
                let from = URL(fileURLWithPath: src).appendingPathComponent(name), to = URL(fileURLWithPath: dir).appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: from.path), from.standardizedFileURL != to.standardizedFileURL else { continue }
                try? FileManager.default.removeItem(at: to)
                try FileManager.default.copyItem(at: from, to: to)
            }
        }
    }

    /// Saves a codebook alone, in the layout `FlavaImageCodebook.from_pretrained` reads.
    public static func saveCodebook(_ cb: FlavaImageCodebook, to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try cb.saveSafeTensors(to: URL(fileURLWithPath: dir).appendingPathComponent("model.safetensors").path)
        try ConfigJSON.write(cb.config, to: URL(fileURLWithPath: dir).appendingPathComponent("config.json").path)
    }
}
