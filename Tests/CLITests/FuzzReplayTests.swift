// The fuzzing harnesses (Sources/FlavaFuzz) in an ordinary release build: every committed seed and every input a
// fuzzing run ever found (Tests/Fuzz/regressions/HARNESS/) goes through its harness without a crash. scripts/fuzz.sh
// does the fuzzing itself.
import Testing
import Foundation
import TestSupport

@Test(.timeLimit(.minutes(2))) func everySeedAndEveryPastFindingReplaysWithoutACrash() throws {
    let fuzz = TestPaths.packageRoot.appendingPathComponent("Tests/Fuzz").path
    let r = try runFlava(["replay", "all", fuzz + "/corpus", fuzz + "/regressions"], executable: "flava-fuzz")
    #expect(r.status == 0, "\(r.err)")
    let count = Int(r.out.split(separator: " ").dropFirst().first ?? "") ?? 0
    #expect(count >= 40, "\(r.out)")
}

@Test(.timeLimit(.minutes(1))) func theFuzzerListsAHarnessPerParser() throws {
    let r = try runFlava(["list"], executable: "flava-fuzz")
    let names = Set(r.out.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
    #expect(names.isSuperset(of: ["safetensors", "torch", "tar", "image", "config", "settings", "tokenizer", "vocab",
                                  "manifest", "eval_formats", "tensorboard"]))
    let bad = try runFlava(["replay", "nonesuch", "/tmp"], executable: "flava-fuzz")
    #expect(bad.status != 0 && bad.err.contains("unknown harness"))
}
