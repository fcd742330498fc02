// Hostile settings files: each field of the trainers' JSON configs (pretraining, codebook training with its
// encoder and decoder sections), of a preprocessor_config.json and of a dVAE decoder config, set one at a time to
// 0, -1, 3, 10⁹, null, a string and 1e30, decodes and validates to a usable config or one ConfigError line
// naming the file and the field.
import Testing
import Foundation
import FlavaKit
import TestSupport

private let hostileValues = ["0", "-1", "3", "1000000000", "null", "\"x\"", "1e30"]

/// Sweeps every scalar field (one level of nesting) of `defaults`' JSON form; returns (accepted, refused).
private func sweep<T: Codable>(_ type: T.Type, _ defaults: T, file: String,
                               validate: (T) throws -> Void) throws -> (Int, Int) {
    let base = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(defaults)) as! [String: Any]
    var paths: [[String]] = []
    for (k, v) in base {
        paths.append([k])
        if let sub = v as? [String: Any] { for sk in sub.keys { paths.append([k, sk]) } }
    }
    var accepted = 0, refused = 0
    for path in paths {
        for value in hostileValues {
            var json = base
            if path.count == 1 { json[path[0]] = "__H__" } else {
                var sub = json[path[0]] as! [String: Any]; sub[path[1]] = "__H__"; json[path[0]] = sub
            }
            let text = String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self)
                .replacingOccurrences(of: "\"__H__\"", with: value)
            let name = path.joined(separator: ".") + " = " + value
            do {
                let config = try ConfigError.decode(T.self, from: Data(text.utf8), file: file)
                try validate(config)
                accepted += 1
            } catch let e as ConfigError {
                #expect(!e.description.contains("\n"), "\(name): \(e)")
                #expect(e.description.hasPrefix(file), "\(name): \(e)")
                refused += 1
            } catch {
                Issue.record("\(name): not a ConfigError: \(error)")
            }
        }
    }
    return (accepted, refused)
}

@Test func hostilePretrainingSettingsAreRefusedInOneLine() throws {
    let (ok, bad) = try sweep(PretrainingConfig.self, PretrainingConfig(), file: "pretrain.json") { try $0.validate(file: "pretrain.json") }
    #expect(bad > ok && ok > 0)
}

@Test func hostileCodebookSettingsAreRefusedInOneLine() throws {
    let (ok, bad) = try sweep(CodebookTrainingConfig.self, CodebookTrainingConfig.small, file: "codebook.json") {
        try $0.validate(file: "codebook.json")
    }
    #expect(bad > ok && ok > 0)
}

@Test func hostilePreprocessorAndDecoderConfigsAreRefusedInOneLine() throws {
    let (ok, bad) = try sweep(FlavaImageProcessorConfig.self, FlavaImageProcessorConfig(), file: "preprocessor_config.json") {
        try $0.validate(ConfigChecker(file: "preprocessor_config.json"), imageSize: 224)
    }
    #expect(bad > ok && ok > 0)
    let (ok2, bad2) = try sweep(DVAEDecoderConfig.self, DVAEDecoderConfig(), file: "decoder_config.json") {
        try $0.validate(ConfigChecker(file: "decoder_config.json"))
    }
    #expect(bad2 > ok2 && ok2 > 0)
}

@Test func settingsErrorsNameTheField() throws {
    var p = PretrainingConfig(); p.data.patchSize = 7
    #expect { try p.validate(file: "p.json") } throws: { "\($0)".contains("field 'data.imageSize' = 64: must be a multiple of patchSize (7)") }
    var c = CodebookTrainingConfig.small; c.decoder.vocabSize = 10
    #expect { try c.validate(file: "c.json") } throws: { "\($0)".contains("field 'decoder.vocab_size' = 10: must equal codebook.vocab_size (512)") }
    let crop = #"{"size": 224, "crop_size": 256}"#
    let pc = try ConfigError.decode(FlavaImageProcessorConfig.self, from: Data(crop.utf8), file: "pp.json")
    #expect { try pc.validate(ConfigChecker(file: "pp.json"), imageSize: 224) } throws: { "\($0)".contains("crop_size") }
    let resample = #"{"resample": 9}"#
    #expect { _ = try ConfigError.decode(FlavaImageProcessorConfig.self, from: Data(resample.utf8), file: "pp.json") } throws: {
        "\($0)".contains("field 'resample': resample code 9 is not implemented")
    }
}

/// A partial dino section changes the small model's DINO defaults, field by field (nested sections too), instead of
/// falling back to DINOConfig()'s ViT-B/16 values; an error inside it names the field with its path.
@Test func aPartialDINOSectionChangesOnlyWhatItGives() throws {
    let json = #"{"dino": {"head": {"norm_last_layer": false}, "teacherMomentum": 0.995}}"#
    let c = try ConfigError.decode(PretrainingConfig.self, from: Data(json.utf8), file: "p.json")
    var expected = DINOConfig.smallDefault
    expected.head.normLastLayer = false
    expected.teacherMomentum = 0.995
    #expect(c.dino == expected)
    try c.validate(file: "p.json")
    #expect(try ConfigError.decode(PretrainingConfig.self, from: Data("{}".utf8), file: "p.json").dino == DINOConfig.smallDefault)
    let bad = #"{"dino": {"head": {"out_dim": "many"}}}"#
    #expect { try ConfigError.decode(PretrainingConfig.self, from: Data(bad.utf8), file: "p.json") } throws: {
        "\($0)".contains("dino.head.out_dim")
    }
}

/// A --config file is laid over the run's recipe: a DINO run given only a dino section keeps DINO's optimizer
/// settings, the recipe's schedules follow the file's steps, and the fields the file names win.
@Test func aSettingsFileIsLaidOverTheRecipe() throws {
    let dir = TestPaths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    func file(_ text: String) throws -> String {
        let path = dir.appendingPathComponent("s\(text.hashValue).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
    let onlyDINO = try PretrainingConfig.load(try file(#"{"dino": {"teacherTemperature": 0.02}}"#), recipe: "dino")
    var expected = PretrainingConfig.dino(steps: 300)
    expected.dino.teacherTemperature = 0.02
    #expect(onlyDINO == expected)
    let longer = try PretrainingConfig.load(try file(#"{"steps": 1000, "learningRate": 0.0005}"#), recipe: "dino")
    #expect(longer.steps == 1000 && longer.warmupSteps == 100 && longer.evalEvery == 250)
    #expect(longer.learningRate == 0.0005 && longer.weightDecay == 0.04 && longer.maxGradNorm == 3)
    #expect(try PretrainingConfig.load(try file(#"{"steps": 1000}"#), recipe: "dino", steps: 40).warmupSteps == 4)
    let joint = try PretrainingConfig.load(try file(#"{"batchSize": 16}"#), recipe: nil)
    var plain = PretrainingConfig(); plain.batchSize = 16
    #expect(joint == plain)
    #expect { try PretrainingConfig.load(try file(#"[1, 2]"#), recipe: nil) } throws: { "\($0)".contains("expected a JSON object") }
    #expect { try PretrainingConfig.load(try file(#"{"steps": "x"}"#), recipe: "dino") } throws: { "\($0)".contains("steps") }
    #expect { try PretrainingConfig.recipe("mae") } throws: { "\($0)".contains("text-stage or dino") }
}

/// DINO's colour augmentations: toned down for the synthetic world (the small preset), DINO's own on other images;
/// a config file's colour fields are laid over whichever the images get.
@Test func dinoColourAugmentationsFollowTheImages() throws {
    let world = try PretrainingConfig.recipe("dino").dino.augmentation
    #expect(world == DINOConfig.smallDefault.augmentation && world.hasColour(of: DINOAugmentationConfig().withMildColour()))
    #expect(world.brightness == 0.2 && world.hue == 0.02 && world.grayscaleProbability == 0.05 && world.solarizationProbability == 0.05)
    let photos = try PretrainingConfig.recipe("dino", syntheticImages: false).dino.augmentation
    #expect(photos.hasColour(of: DINOAugmentationConfig()) && photos.globalSize == world.globalSize && photos.localCrops == world.localCrops)
    let dir = TestPaths.temporaryDirectory().path
    try Data(#"{"dino": {"augmentation": {"hue": 0.05}}}"#.utf8).write(to: URL(fileURLWithPath: dir + "/hue.json"))
    let file = try PretrainingConfig.load(dir + "/hue.json", recipe: "dino", syntheticImages: false).dino.augmentation
    #expect(file.hue == 0.05 && file.brightness == 0.4 && file.grayscaleProbability == 0.2)
    let fileWorld = try PretrainingConfig.load(dir + "/hue.json", recipe: "dino").dino.augmentation
    #expect(fileWorld.hue == 0.05 && fileWorld.brightness == 0.2)
}
