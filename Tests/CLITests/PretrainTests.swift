// Pretraining as a user runs it, at tiny size: every objective's loss goes down over a few dozen steps with a
// fixed seed, and a run killed with SIGKILL and resumed from its last checkpoint continues with the same
// losses as an uninterrupted run.
import Testing
import Foundation
import FlavaKit
import TestSupport

private func losses(_ dir: String) throws -> [Int: [String: Double]] {
    let text = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
    var out: [Int: [String: Double]] = [:]
    for line in text.split(separator: "\n") {
        let e = try JSONDecoder().decode(PretrainingLogEntry.self, from: Data(line.utf8))
        out[e.step] = e.losses
    }
    return out
}

private let tinyArgs = ["--size", "tiny", "--batch-size", "8", "--codebook-steps", "3", "--warmup", "5", "--eval-every", "1000"]

@Test func aFewDozenStepsLowerEveryObjective() throws {
    let dir = TestPaths.temporaryDirectory().path + "/run"
    let r = try runFlava(["pretrain", "--output", dir, "--steps", "60", "--checkpoint-every", "1000", "--learning-rate", "0.002"] + tinyArgs)
    #expect(r.status == 0, "\(r.err)")
    let l = try losses(dir)
    for name in ["global_contrastive", "itm", "mmm_image", "mmm_text", "mim", "mlm"] {
        let v = l.keys.sorted().compactMap { l[$0]?[name] }
        #expect(v.count >= 4, "\(name) ran \(v.count) times")
        guard v.count >= 4 else { continue }
        let k = max(2, v.count / 4)
        let first = v.prefix(k).reduce(0, +) / Double(k), last = v.suffix(k).reduce(0, +) / Double(k)
        #expect(last < first, "\(name): \(first) → \(last)")
    }
    #expect(FileManager.default.fileExists(atPath: dir + "/report.svg"))
}

@Test func aKilledRunResumesWithTheSameLosses() throws {
    let base = TestPaths.temporaryDirectory().path
    let common = ["--steps", "24", "--checkpoint-every", "8"] + tinyArgs
    // The uninterrupted run.
    let a = try runFlava(["pretrain", "--output", base + "/a"] + common)
    #expect(a.status == 0, "\(a.err)")
    // The same run, killed with SIGKILL once it has written checkpoint-16 (or finished, on a fast machine).
    let exe = TestPaths.packageRoot.appendingPathComponent(".build/release/flava")
    let p = Process()
    p.executableURL = exe
    p.arguments = ["pretrain", "--output", base + "/b"] + common
    p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(300)
    while p.isRunning && !FileManager.default.fileExists(atPath: base + "/b/checkpoint-16") && Date() < deadline { usleep(20_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
    // Every checkpoint on disk loads; nothing half-written has the final name.
    let entries = try FileManager.default.contentsOfDirectory(atPath: base + "/b").filter { $0.hasPrefix("checkpoint-") }
    #expect(entries.contains("checkpoint-16"))
    for e in entries where !e.contains(".tmp") {
        _ = try FlavaCheckpoint.loadPreTraining(base + "/b/" + e)
    }
    // Resume from checkpoint-16 into a fresh folder: steps 17…24 repeat the uninterrupted run's losses.
    let c = try runFlava(["pretrain", "--output", base + "/c", "--resume", base + "/b/checkpoint-16", "--vocab", base + "/b/vocab.txt"] + common)
    #expect(c.status == 0, "\(c.err)")
    let la = try losses(base + "/a"), lc = try losses(base + "/c")
    #expect(Set(lc.keys) == Set(17...24))
    for s in 17...24 {
        for (k, v) in la[s] ?? [:] {
            let w = lc[s]?[k] ?? .nan
            #expect(abs(v - w) <= 1e-4 * max(1, abs(v)), "step \(s) \(k): \(v) vs \(w)")
        }
    }
}

@Test func pretrainingReadsUserDataAndStartsFromUnimodalEncoders() throws {
    let dir = TestPaths.temporaryDirectory().path
    let world = SyntheticWorld(seed: 9, imageSize: 48)
    var lines: [String] = []
    for i in 0..<24 {
        let s = world.sample(i)
        try s.image.savePNG(dir + "/img\(i).png")
        lines.append(#"{"image": "img\#(i).png", "caption": "\#(s.captions[0])"}"#)
    }
    try lines.joined(separator: "\n").write(toFile: dir + "/pairs.jsonl", atomically: true, encoding: .utf8)
    try (0..<40).map { world.unpairedText($0) }.joined(separator: "\n").write(toFile: dir + "/text.txt", atomically: true, encoding: .utf8)
    // A text-only (MLM) run, then a joint run on the files whose text encoder starts from it.
    let mlm = try runFlava(["pretrain", "--output", dir + "/mlm", "--objectives", "mlm", "--steps", "4", "--text", "text:" + dir + "/text.txt"] + tinyArgs)
    #expect(mlm.status == 0, "\(mlm.err)")
    let joint = try runFlava(["pretrain", "--output", dir + "/joint", "--steps", "6", "--pairs", dir + "/pairs.jsonl",
                              "--images", dir + "/pairs.jsonl", "--text", "text:" + dir + "/text.txt", "--eval-pairs", dir + "/pairs.jsonl",
                              "--init-text", dir + "/mlm/checkpoint-4", "--vocab", dir + "/mlm/vocab.txt"] + tinyArgs)
    #expect(joint.status == 0, "\(joint.err)")
    #expect(joint.out.contains("initialized the text encoder"))
    let l = try losses(dir + "/joint")
    #expect(l.count == 6)
    // A missing data file is a one-line error.
    let bad = try runFlava(["pretrain", "--output", dir + "/bad", "--pairs", dir + "/missing.jsonl"] + tinyArgs)
    #expect(bad.status != 0 && bad.err.contains("missing.jsonl") && bad.err.split(separator: "\n").count == 1, "\(bad.err)")
}

@Test func aCorruptOrForeignCheckpointDoesNotResume() throws {
    let dir = TestPaths.temporaryDirectory().path
    let r = try runFlava(["pretrain", "--output", dir + "/run", "--steps", "2", "--checkpoint-every", "2"] + tinyArgs)
    #expect(r.status == 0, "\(r.err)")
    let ckpt = dir + "/run/checkpoint-2"
    func resume(_ from: String, _ extra: [String] = []) throws -> (status: Int32, out: String, err: String) {
        try runFlava(["pretrain", "--output", dir + "/again", "--resume", from, "--vocab", dir + "/run/vocab.txt", "--steps", "3"]
                     + tinyArgs + extra)
    }
    func corrupted(_ name: String, _ edit: (String) throws -> Void) throws -> String {
        let copy = dir + "/" + name
        try FileManager.default.copyItem(atPath: ckpt, toPath: copy)
        try edit(copy)
        return copy
    }
    func expectRefused(_ r: (status: Int32, out: String, err: String), _ needle: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status != 0 && r.err.contains(needle) && r.err.split(separator: "\n").count == 1, "\(r.err)", sourceLocation: sourceLocation)
    }
    // trainer_state.json with settings no run could have.
    let badState = try corrupted("state") { c in
        let text = try String(contentsOfFile: c + "/trainer_state.json", encoding: .utf8)
        try text.replacingOccurrences(of: "\"batchSize\" : 8", with: "\"batchSize\" : 0")
            .write(toFile: c + "/trainer_state.json", atomically: true, encoding: .utf8)
    }
    expectRefused(try resume(badState), "batchSize")
    // Optimizer moments of the wrong shape.
    let badMoments = try corrupted("moments") { c in
        let opt = try SafeTensorsFile(path: c + "/optimizer.safetensors")
        var tensors: [(String, StoredTensor)] = []
        for key in opt.keys {
            if key.hasSuffix(".step") { tensors.append((key, .int(try opt.intTensor(key)))) }
            else { tensors.append((key, .float(key == opt.keys.first(where: { $0.hasSuffix(".exp_avg") }) ? Tensor.zeros([3]) : try opt.floatTensor(key).copy()))) }
        }
        try SafeTensors.write(tensors, to: c + "/optimizer.safetensors")
    }
    expectRefused(try resume(badMoments), "optimizer.safetensors")
    // A checkpoint of another model size.
    expectRefused(try resume(ckpt, ["--size", "small"]), "was trained with another model")
}

/// A user's data: image–text pairs in a JSONL manifest, an image folder, and a text file, with words the
/// synthetic world never uses.
private func userData(_ dir: String) throws {
    let world = SyntheticWorld(seed: 4, imageSize: 40)
    let words = ["harbour", "lighthouse", "meadow", "orchard", "glacier", "canyon", "volcano", "lagoon"]
    var lines: [String] = []
    try FileManager.default.createDirectory(atPath: dir + "/folder/a", withIntermediateDirectories: true)
    for i in 0..<24 {
        let s = world.sample(i)
        try s.image.savePNG(dir + "/img\(i).png")
        try s.image.savePNG(dir + "/folder/a/img\(i).png")
        lines.append(#"{"image": "img\#(i).png", "caption": "a \#(words[i % 8]) near the \#(words[(i + 3) % 8])"}"#)
    }
    try lines.joined(separator: "\n").write(toFile: dir + "/pairs.jsonl", atomically: true, encoding: .utf8)
    try (0..<60).map { "the \(words[$0 % 8]) and the \(words[($0 + 5) % 8]) at dawn" }.joined(separator: "\n")
        .write(toFile: dir + "/text.txt", atomically: true, encoding: .utf8)
}

@Test func continuingACheckpointOnUserDataAndTrainingAnyConfig() throws {
    let dir = TestPaths.temporaryDirectory().path
    try userData(dir)
    let data = ["--pairs", dir + "/pairs.jsonl", "--images", "folder:" + dir + "/folder", "--text", "text:" + dir + "/text.txt"]
    let small = ["--batch-size", "8", "--codebook-steps", "3", "--warmup", "2", "--eval-every", "1000", "--checkpoint-every", "1000"]
    // A fresh model of a config.json of one's own; the vocabulary is trained on the run's own text.
    var config = FlavaTrainingPresets.tinyConfig(vocabSize: 200)
    config.textConfig.numHiddenLayers = 2; config.imageConfig.imageSize = 40
    try config.save(dir + "/config.json")
    let a = try runFlava(["pretrain", "--output", dir + "/a", "--model-config", dir + "/config.json", "--steps", "3",
                          "--vocab-size", "120", "--eval-pairs", dir + "/pairs.jsonl"] + data + small)
    #expect(a.status == 0, "\(a.err)")
    #expect(a.out.contains("trained on") && a.out.contains("pairs.jsonl") && !a.out.contains("synthetic"), "\(a.out)")
    let vocab = try String(contentsOfFile: dir + "/a/vocab.txt", encoding: .utf8).codePointLines
    #expect(vocab.contains("harbour") || vocab.contains("lighthouse"), "user words missing from the vocabulary")
    let tok = try BertTokenizer(vocabFile: dir + "/a/vocab.txt")
    #expect(!tok.encode("a lighthouse near the meadow").ids.contains(tok.unkId))
    // The results table's chance column comes from the evaluation set: 24 candidates, so R@1 chance 1/24.
    #expect(a.out.contains(String(format: "%.3f", 1.0 / 24)), "\(a.out)")
    let saved = try FlavaConfig.load(dir + "/a/checkpoint-3/config.json")
    #expect(saved.textConfig.numHiddenLayers == 2 && saved.imageConfig.imageSize == 40)
    // Continue pretraining that checkpoint with all five losses: its config, weights, vocabulary and codebook.
    let b = try runFlava(["pretrain", "--output", dir + "/b", "--from", dir + "/a/checkpoint-3", "--steps", "2"] + data + small)
    #expect(b.status == 0, "\(b.err)")
    #expect(b.out.contains("continuing from") && b.out.contains("codebook: the one in the checkpoint"), "\(b.out)")
    #expect(try String(contentsOfFile: dir + "/b/vocab.txt", encoding: .utf8) == String(contentsOfFile: dir + "/a/vocab.txt", encoding: .utf8))
    let (model, report) = try FlavaCheckpoint.loadPreTraining(dir + "/b/checkpoint-2")
    #expect(report.isExact && model.config.textConfig.numHiddenLayers == 2)
    #expect(try losses(dir + "/b").count == 2)
}

@Test func everySourceIsCheckedBeforeAnyWork() throws {
    let dir = TestPaths.temporaryDirectory().path
    try userData(dir)
    try Data().write(to: URL(fileURLWithPath: dir + "/empty.jsonl"))
    for (flag, value, needle) in [("--pairs", dir + "/missing.jsonl", "missing.jsonl"), ("--text", "text:" + dir + "/nope.txt", "nope.txt"),
                                  ("--images", dir + "/empty.jsonl", "empty"), ("--eval-pairs", dir + "/gone.jsonl", "gone.jsonl"),
                                  ("--model-config", dir + "/none.json", "none.json"), ("--from", dir + "/nowhere", "nowhere"),
                                  ("--size", "huge", "not a preset")] {
        let out = dir + "/run-" + flag.dropFirst(2)
        let r = try runFlava(["pretrain", "--output", out] + tinyArgs + [flag, value])
        #expect(r.status != 0 && r.err.contains(needle) && r.err.split(separator: "\n").count == 1, "\(flag): \(r.err)")
        // Nothing was started: no vocabulary, no codebook.
        #expect(!FileManager.default.fileExists(atPath: out + "/vocab.txt"), "\(flag) trained a vocabulary first")
    }
}

@Test func aDINORunLogsTheTeacherAndInitializesAJointRun() throws {
    let dir = TestPaths.temporaryDirectory().path
    let dino = try runFlava(["pretrain", "--objectives", "dino", "--size", "tiny", "--batch-size", "8", "--steps", "6",
                             "--output", dir + "/dino"])
    #expect(dino.status == 0, "\(dino.err)")
    #expect(dino.out.contains("shape linear probe (teacher)") && dino.out.contains("before training") && dino.out.contains("log K"), "\(dino.out)")
    for f in ["config.json", "model.safetensors", "vocab.txt", "dino.safetensors", "dino_config.json", "trainer_state.json"] {
        #expect(FileManager.default.fileExists(atPath: dir + "/dino/checkpoint-6/" + f), "\(f)")
    }
    let rows = try String(contentsOfFile: dir + "/dino/metrics.jsonl", encoding: .utf8).split(separator: "\n")
    let last = try JSONDecoder().decode(PretrainingLogEntry.self, from: Data(rows.last!.utf8))
    #expect(rows.count == 6 && last.losses["dino"] != nil && last.values?["teacher_entropy"] != nil && last.values?["student_teacher_kl"] != nil)
    // The checkpoint's encoder is a FLAVA image encoder in the Hugging Face layout.
    _ = try FlavaCheckpoint.loadPreTraining(dir + "/dino/checkpoint-6")
    // On the synthetic world the colour augmentations are the toned-down preset's; on other images DINO's own,
    // unless the config names them; crops follow the model's image size either way.
    func augmentation(_ run: String, _ step: Int) throws -> DINOAugmentationConfig {
        try JSONDecoder().decode(DINOConfig.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/\(run)/checkpoint-\(step)/dino_config.json"))).augmentation
    }
    let world = try augmentation("dino", 6)
    #expect(world.hasColour(of: DINOAugmentationConfig().withMildColour()) && world.brightness == 0.2 && world.globalSize == 32, "\(world)")
    #expect(dino.out.contains("toned down for the synthetic world"), "\(dino.out)")
    let export = try runFlava(["data", "export", "--split", "train", "--count", "16", "--image-size", "32", "--output", dir + "/images"])
    #expect(export.status == 0, "\(export.err)")
    try Data(#"{"dino": {"augmentation": {"hue": 0.05}}}"#.utf8).write(to: URL(fileURLWithPath: dir + "/hue.json"))
    for (run, extra, hue) in [("photos", [String](), 0.1), ("photos-hue", ["--config", dir + "/hue.json"], 0.05)] {
        let r = try runFlava(["pretrain", "--objectives", "dino", "--size", "tiny", "--batch-size", "8", "--steps", "2",
                              "--images", "folder:" + dir + "/images", "--vocab", dir + "/dino/vocab.txt", "--output", dir + "/" + run] + extra)
        #expect(r.status == 0 && !r.out.contains("toned down"), "\(run): \(r.err)")
        let a = try augmentation(run, 2)
        #expect(a.brightness == 0.4 && a.contrast == 0.4 && a.saturation == 0.2 && a.hue == hue && a.grayscaleProbability == 0.2 &&
                a.solarizationProbability == 0.2 && a.globalSize == 32 && a.localSize == 16, "\(run): \(a)")
    }
    // A joint run starts its image encoder from the DINO teacher.
    let joint = try runFlava(["pretrain", "--output", dir + "/joint", "--steps", "3", "--init-image", dir + "/dino/checkpoint-6",
                              "--vocab", dir + "/dino/vocab.txt"] + tinyArgs)
    #expect(joint.status == 0 && joint.out.contains("from the DINO teacher"), "\(joint.err)")
    // DINO goes alone; a DINO checkpoint resumes.
    let bad = try runFlava(["pretrain", "--objectives", "dino,mim", "--size", "tiny", "--output", dir + "/bad"])
    #expect(bad.status != 0 && bad.err.contains("dino") && bad.err.split(separator: "\n").count == 1, "\(bad.err)")
    let resumed = try runFlava(["pretrain", "--objectives", "dino", "--size", "tiny", "--batch-size", "8", "--steps", "8",
                                "--output", dir + "/dino2", "--resume", dir + "/dino/checkpoint-6", "--vocab", dir + "/dino/vocab.txt"])
    #expect(resumed.status == 0 && resumed.out.contains("resumed from"), "\(resumed.err)")
}
