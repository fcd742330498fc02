// Exact resume after SIGKILL for the trainers on the engine besides pretraining (whose test is in
// PretrainTests): codebook training and fine-tuning. Each run is killed once it has written its middle
// checkpoint, resumed from it into a fresh folder, and must repeat the uninterrupted run's losses.
import Testing
import Foundation
import FlavaKit
import TestSupport

/// Runs `flava args` and kills it with SIGKILL once `waitFor` exists (or lets it finish on a fast machine).
private func runAndKill(_ args: [String], once waitFor: String) throws {
    let p = Process()
    p.executableURL = TestPaths.packageRoot.appendingPathComponent(".build/release/flava")
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(300)
    while p.isRunning && !FileManager.default.fileExists(atPath: waitFor) && Date() < deadline { usleep(20_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
}

private func expectSameLosses(_ a: [Int: [String: Double]], _ c: [Int: [String: Double]], steps: ClosedRange<Int>,
                              sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(Set(c.keys) == Set(steps), "resumed steps \(c.keys.sorted())", sourceLocation: sourceLocation)
    for s in steps {
        #expect(!(a[s] ?? [:]).isEmpty, sourceLocation: sourceLocation)
        for (k, v) in a[s] ?? [:] {
            let w = c[s]?[k] ?? .nan
            #expect(abs(v - w) <= 1e-5 * max(1, abs(v)), "step \(s) \(k): \(v) vs \(w)", sourceLocation: sourceLocation)
        }
    }
}

@Test func aKilledCodebookRunResumesWithTheSameLosses() throws {
    let base = TestPaths.temporaryDirectory().path
    let common = ["codebook", "train", "--steps", "12", "--checkpoint-every", "4", "--batch-size", "8", "--image-size", "32",
                  "--vocab-size", "64", "--eval-every", "100"]
    let a = try runFlava(common + ["--output", base + "/a"])
    #expect(a.status == 0, "\(a.err)")
    try runAndKill(common + ["--output", base + "/b"], once: base + "/b/checkpoint-8")
    #expect(FileManager.default.fileExists(atPath: base + "/b/checkpoint-8/trainer_state.json"))
    _ = try FlavaCheckpoint.loadCodebook(base + "/b/checkpoint-8")   // a checkpoint is a codebook folder too
    let c = try runFlava(common + ["--output", base + "/c", "--resume", base + "/b/checkpoint-8"])
    #expect(c.status == 0, "\(c.err)")
    #expect(c.out.contains("resumed from"))
    expectSameLosses(try metricsLosses(base + "/a/metrics.jsonl"), try metricsLosses(base + "/c/metrics.jsonl"), steps: 9...12)
    // The checkpoints are still there beside the final codebook (carried over by its atomic save).
    #expect(FileManager.default.fileExists(atPath: base + "/a/checkpoint-8/optimizer.safetensors"))
    // A folder that is not a checkpoint is refused before any work, in one line.
    for bad in [base + "/missing", base + "/a"] {
        let r = try runFlava(common + ["--output", base + "/d", "--resume", bad])
        #expect(r.status != 0 && r.err.contains(bad) && r.err.split(separator: "\n").count == 1, "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: base + "/d/metrics.jsonl"))
    }
    // The final codebooks are the same.
    var g = SeededGenerator(seed: 3)
    let x = Tensor.randomNormal([2, 3, 32, 32], mean: 0.5, std: 0.2, using: &g)
    let la = withNoGrad { try! FlavaCheckpoint.loadCodebook(base + "/a")(Variable(x)).value }
    let lc = withNoGrad { try! FlavaCheckpoint.loadCodebook(base + "/c")(Variable(x)).value }
    #expect(closenessReport(lc, la, atol: 1e-5, rtol: 1e-5) == nil)
}

@Test func aKilledFineTuningRunResumesWithTheSameLosses() throws {
    let base = TestPaths.temporaryDirectory().path
    let pre = try runFlava(["pretrain", "--output", base + "/pre", "--size", "tiny", "--steps", "2", "--checkpoint-every", "2",
                            "--batch-size", "4", "--codebook-steps", "2", "--eval-every", "1000"])
    #expect(pre.status == 0, "\(pre.err)")
    let common = ["finetune", "--model", base + "/pre/checkpoint-2", "--task", "synthetic-vqa", "--steps", "12", "--batch-size", "8",
                  "--checkpoint-every", "4"]
    let a = try runFlava(common + ["--output", base + "/a"])
    #expect(a.status == 0, "\(a.err)")
    for f in ["model.safetensors", "config.json", "vocab.txt", "answers.json", "optimizer.safetensors", "trainer_state.json"] {
        #expect(FileManager.default.fileExists(atPath: base + "/a/checkpoints/checkpoint-8/" + f), "\(f)")
    }
    try runAndKill(common + ["--output", base + "/b"], once: base + "/b/checkpoints/checkpoint-8")
    let c = try runFlava(common + ["--output", base + "/c", "--resume", base + "/b/checkpoints/checkpoint-8"])
    #expect(c.status == 0, "\(c.err)")
    expectSameLosses(try metricsLosses(base + "/a/checkpoints/metrics.jsonl"), try metricsLosses(base + "/c/checkpoints/metrics.jsonl"), steps: 9...12)
    let wa = try SafeTensorsFile(path: base + "/a/model.safetensors"), wc = try SafeTensorsFile(path: base + "/c/model.safetensors")
    for key in wa.keys { #expect(closenessReport(try wc.floatTensor(key), try wa.floatTensor(key), atol: 1e-6, rtol: 1e-5) == nil, "\(key)") }
    // A folder that is not a checkpoint is refused in one line.
    let notCheckpoint = try runFlava(common + ["--output", base + "/e", "--resume", base + "/pre"])
    #expect(notCheckpoint.status != 0 && notCheckpoint.err.contains("no trainer_state.json")
            && notCheckpoint.err.split(separator: "\n").count == 1, "\(notCheckpoint.err)")
    // A checkpoint of another task's model does not resume.
    try "sentence\tlabel\na red circle\t1\na blue square\t0\n".write(toFile: base + "/sst2.tsv", atomically: true, encoding: .utf8)
    let other = try runFlava(["finetune", "--model", base + "/pre/checkpoint-2", "--task", "glue-sst2", "--steps", "2", "--train", base + "/sst2.tsv",
                              "--dev", base + "/sst2.tsv", "--output", base + "/d", "--resume", base + "/a/checkpoints/checkpoint-8"])
    #expect(other.status != 0 && other.err.split(separator: "\n").count == 1, "\(other.err)")
}

@Test func aRunPastItsTimeLimitIsKilled() throws {
    let dir = TestPaths.temporaryDirectory().path
    let t0 = Date()
    let r = try runFlava(["pretrain", "--output", dir + "/run", "--size", "tiny", "--steps", "100000", "--codebook-steps", "2"], timeout: 3)
    #expect(r.status != 0)
    #expect(Date().timeIntervalSince(t0) < 60, "the run was not stopped at its limit")
}
