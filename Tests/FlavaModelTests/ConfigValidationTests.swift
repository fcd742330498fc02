// Hostile config.json files: every field of every section of the tiny golden config set, one at a time, to 0,
// -1, 3, 10⁹, null, a string and 1e30 must load cleanly (and then run a forward pass) or fail with one
// ConfigError/CheckpointError line naming the file — never a trap, an allocator abort or a hang.
import Testing
import Foundation
import FlavaKit
import TestSupport

private let tinyDir = TestPaths.reference.appendingPathComponent("flava_tiny")

/// The hostile values, as JSON text.
private let hostileValues = ["0", "-1", "3", "1000000000", "null", "\"x\"", "1e30"]

/// (section or "", key) for every scalar field of the tiny config.
private func fieldsOfTinyConfig() throws -> [(String, String)] {
    let data = try Data(contentsOf: tinyDir.appendingPathComponent("config.json"))
    let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    var out: [(String, String)] = []
    for (k, v) in json.sorted(by: { $0.key < $1.key }) {
        out.append(("", k))
        if let sub = v as? [String: Any] { for sk in sub.keys.sorted() { out.append((k, sk)) } }
    }
    return out
}

/// The tiny config's text with one field replaced by `value` (raw JSON).
private func mutatedConfig(section: String, key: String, value: String) throws -> Data {
    let data = try Data(contentsOf: tinyDir.appendingPathComponent("config.json"))
    var json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    let marker = "__HOSTILE__"
    if section.isEmpty { json[key] = marker } else {
        var sub = json[section] as! [String: Any]
        sub[key] = marker
        json[section] = sub
    }
    let text = String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), as: UTF8.self)
    return Data(text.replacingOccurrences(of: "\"\(marker)\"", with: value).utf8)
}

/// A model folder with the tiny weights and the given config.json.
private func folder(config: Data) throws -> URL {
    let dir = TestPaths.temporaryDirectory()
    try config.write(to: dir.appendingPathComponent("config.json"))
    try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent("model.safetensors"),
                                               withDestinationURL: tinyDir.appendingPathComponent("model.safetensors"))
    return dir
}

@Test(.timeLimit(.minutes(3))) func everyHostileConfigFieldLoadsOrFailsInOneLine() throws {
    let fields = try fieldsOfTinyConfig()
    #expect(fields.count > 50)
    var loaded = 0, refused = 0
    for (section, key) in fields {
        for value in hostileValues {
            let dir = try folder(config: try mutatedConfig(section: section, key: key, value: value))
            defer { try? FileManager.default.removeItem(at: dir) }
            let name = (section.isEmpty ? "" : section + ".") + key + " = " + value
            do {
                let (model, _) = try FlavaCheckpoint.loadPreTraining(dir.path)
                // Whatever loads must run: a forward pass of every encoder on inputs of the config's sizes.
                let c = model.config
                var g = SeededGenerator(seed: 1)
                let side = c.imageConfig.imageSize
                let pixels = Variable(Tensor.randomNormal([2, 3, side, side], using: &g))
                let ids = IntTensor(shape: [2, 5], [2, 7, 9, 11, 3, 2, 4, 6, 8, 3].map { $0 % c.textConfig.vocabSize })
                withNoGrad {
                    let out = model.flava(pixelValues: pixels, inputIds: ids, attentionMask: IntTensor(shape: [2, 5], [Int](repeating: 1, count: 10)))
                    #expect(out.multimodal != nil, "\(name)")
                }
                loaded += 1
            } catch {
                let text = "\(error)"
                #expect(!text.contains("\n"), "\(name): error is not one line: \(text)")
                #expect(text.contains("config.json") || text.contains("model.safetensors"), "\(name): error names no file: \(text)")
                refused += 1
            }
        }
    }
    // Most hostile values are refused; the harmless ones (a loss weight of 3, say) load.
    #expect(refused > loaded && loaded > 0)
}

@Test func validationNamesTheFieldAndTheValue() throws {
    func reason(_ section: String, _ key: String, _ value: String) throws -> String {
        let dir = try folder(config: try mutatedConfig(section: section, key: key, value: value))
        defer { try? FileManager.default.removeItem(at: dir) }
        do { _ = try FlavaCheckpoint.loadPreTraining(dir.path); return "loaded" } catch { return "\(error)" }
    }
    #expect(try reason("image_config", "hidden_size", "3").contains("field 'image_config.hidden_size' = 3: must be a multiple of num_attention_heads (4)"))
    #expect(try reason("text_config", "num_attention_heads", "0").contains("field 'text_config.num_attention_heads' = 0"))
    #expect(try reason("text_config", "num_attention_heads", "null").contains("text_config.num_attention_heads"))
    #expect(try reason("image_config", "patch_size", "0").contains("field 'image_config.patch_size' = 0"))
    #expect(try reason("text_config", "pad_token_id", "-1").contains("field 'text_config.pad_token_id' = -1"))
    #expect(try reason("text_config", "vocab_size", "0").contains("field 'text_config.vocab_size' = 0"))
    #expect(try reason("multimodal_config", "num_hidden_layers", "1000000000").contains("multimodal_config.num_hidden_layers"))
    #expect(try reason("text_config", "hidden_act", "\"relu\"").contains("text_config.hidden_act"))
    #expect(try reason("image_codebook_config", "hidden_size", "1e30").contains("image_codebook_config.hidden_size"))
    #expect(try reason("", "hidden_size", "96").contains("must equal multimodal_config.hidden_size"))
    // Sizes that are each in range but describe a model larger than memory.
    let huge = try reason("text_config", "vocab_size", "4000000")
    #expect(huge.contains("model.safetensors") || huge.contains("more than this machine's memory"))
    // An image of so many patches that one forward pass could not hold its attention.
    #expect(try reason("image_config", "image_size", "16384").contains("whose attention"))
    // A config that does not belong to the weights is refused from the header, before the model is built.
    let other = try reason("text_config", "intermediate_size", "4096")
    #expect(other.contains("text_model.* tensors hold") && other.contains("text_config"))
}

@Test func parameterCountsFromTheConfigEqualTheBuiltModels() throws {
    let tiny = try FlavaConfig.load(tinyDir.appendingPathComponent("config.json").path)
    var configs = [tiny]
    for name in ["tiny", "small"] { if let c = FlavaTrainingPresets.config(named: name, vocabSize: 321) { configs.append(c) } }
    var odd = tiny
    odd.imageConfig.maskToken = false; odd.imageConfig.qkvBias = false; odd.multimodalConfig.useClsToken = false
    odd.imageCodebookConfig.numBlocksPerGroup = 2; odd.imageConfig.patchSize = 5
    configs.append(odd)
    for c in configs {
        try c.validate()
        var ini = Initializer(mode: .zeros)
        let model = FlavaForPreTraining(c, init: &ini)
        #expect(model.parameterCount == c.parameterCount)
        #expect(model.flava.parameterCount == c.modelParameterCount)
        #expect(model.flava.imageModel.parameterCount == c.imageConfig.parameterCount)
        #expect(model.flava.textModel.parameterCount == c.textConfig.parameterCount)
        #expect(model.flava.multimodalModel.parameterCount == c.multimodalConfig.parameterCount)
        #expect(model.imageCodebook?.parameterCount == c.imageCodebookConfig.parameterCount)
    }
}

@Test func nullSectionsAreEmptySectionsAsInTransformers() throws {
    let dir = try folder(config: try mutatedConfig(section: "", key: "image_codebook_config", value: "null"))
    defer { try? FileManager.default.removeItem(at: dir) }
    // A null codebook section means the default codebook, whose size differs from the tiny weights': refused
    // from the header, naming the section.
    #expect(throws: CheckpointError.self) { _ = try FlavaCheckpoint.loadPreTraining(dir.path) }
}
