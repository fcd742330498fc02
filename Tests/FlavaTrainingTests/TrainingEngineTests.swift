// The training engine on a small regression task: a resumed run repeats the uninterrupted one bit for bit,
// accumulated micro-batches equal one large batch, the best checkpoint is the best-scoring evaluation's, a loss
// that is not finite and a trainer_state.json that does not fit are refused with one-line errors.
import Testing
import Foundation
import FlavaKit
import TestSupport

/// y = x·w* + noise, drawn with the engine's generator; the task counts its draws (its own state).
private final class RegressionTask: TrainingTask {
    struct State: Codable { var drawn: Int }
    let model: Linear
    let batch: Int
    var drawn = 0
    var scores: [Double] = []
    var nanAt: Int? = nil

    init(batch: Int = 8, seed: UInt64 = 1) {
        var ini = Initializer(seed: seed)
        model = Linear(4, 1, init: &ini)
        self.batch = batch
    }

    var trainableParameters: [(key: String, variable: Variable)] { model.namedParameters() }

    func microBatch(step: Int, kind: String?, generator g: inout SeededGenerator) throws -> MicroBatchLoss {
        var x: [Float] = [], y: [Float] = []
        for _ in 0..<batch {
            let row = (0..<4).map { _ in g.nextNormal() }
            x += row
            y.append(row[0] * 0.5 - row[1] * 1.5 + row[2] * 2 + 0.1 * g.nextNormal())
        }
        drawn += batch
        var loss = mseLoss(model(Variable(Tensor(shape: [batch, 4], x))), Tensor(shape: [batch, 1], y))
        if step == nanAt { loss = loss * Float.nan }
        return MicroBatchLoss(loss: loss, losses: ["mse": Double(loss.value.scalarValue)], samples: batch)
    }

    func evaluate(step: Int) throws -> [String: Double]? { scores.isEmpty ? nil : ["score": scores[step % scores.count]] }
    func score(_ e: [String: Double]) -> Double { e["score"]! }
    func saveModel(to dir: String) throws { try model.saveSafeTensors(to: dir + "/model.safetensors") }
    func loadModel(from dir: String) throws { try model.load(from: try SafeTensorsFile(path: dir + "/model.safetensors")) }
    func state() throws -> State { State(drawn: drawn) }
    func restore(_ s: State, from dir: String) throws { drawn = s.drawn }
}

private func settings(steps: Int, output: String? = nil) -> TrainingSettings {
    var s = TrainingSettings(steps: steps, learningRate: 0.3, weightDecay: 0.01, warmupSteps: 2, maxGradNorm: 1, seed: 7)
    s.output = output
    return s
}

private func weights(_ t: RegressionTask) -> [Float] { t.model.parameters.flatMap { p in (0..<p.value.count).map { p.value[flat: $0] } } }

@Test func aResumedRunRepeatsTheUninterruptedOneBitForBit() throws {
    let dir = TestPaths.temporaryDirectory().path
    var s = settings(steps: 10, output: dir + "/a")
    s.checkpointEvery = 4
    let a = RegressionTask()
    var lossesA: [Int: Double] = [:]
    let engineA = try TrainingEngine(task: a, settings: s, callbacks: [StepCallback { e, _ in lossesA[e.step] = e.losses["mse"] }])
    let outcome = try engineA.run()
    #expect(outcome.steps == 10 && outcome.samplesSeen == 80 && outcome.lastCheckpoint == dir + "/a/checkpoint-10")
    let first = (1...3).map { lossesA[$0]! }.reduce(0, +), last = (8...10).map { lossesA[$0]! }.reduce(0, +)
    #expect(last < 0.5 * first, "the loss falls: \(first / 3) → \(last / 3)")

    // A fresh task (other initial weights) resumed from checkpoint-4 continues exactly.
    let b = RegressionTask(seed: 99)
    var lossesB: [Int: Double] = [:]
    s.output = dir + "/b"
    let engineB = try TrainingEngine(task: b, settings: s, callbacks: [StepCallback { e, _ in lossesB[e.step] = e.losses["mse"] }])
    try engineB.resume(from: dir + "/a/checkpoint-4")
    #expect(engineB.step == 4 && engineB.samplesSeen == 32 && b.drawn == 32)
    _ = try engineB.run()
    #expect(Set(lossesB.keys) == Set(5...10))
    for k in 5...10 { #expect(lossesA[k] == lossesB[k], "step \(k)") }
    #expect(weights(a) == weights(b))
}

@Test func accumulatedMicroBatchesEqualOneLargeBatch() throws {
    let whole = RegressionTask(batch: 8), parts = RegressionTask(batch: 4)
    _ = try TrainingEngine(task: whole, settings: settings(steps: 5)).run()
    var s = settings(steps: 5)
    s.accumulation = 2
    _ = try TrainingEngine(task: parts, settings: s).run()
    for (x, y) in zip(weights(whole), weights(parts)) { #expect(abs(x - y) <= 1e-5 * max(1, abs(x)), "\(x) vs \(y)") }
    #expect(weights(whole) != weights(RegressionTask(batch: 8)))
}

@Test func theBestCheckpointIsTheBestScoringEvaluation() throws {
    let dir = TestPaths.temporaryDirectory().path
    var s = settings(steps: 6, output: dir)
    s.evalEvery = 2
    let t = RegressionTask()
    t.scores = [0, 0.2, 0, 0.9, 0, 0.4]   // evaluated after steps 2, 4, 6 (index step − 1)
    let outcome = try TrainingEngine(task: t, settings: s).run()
    #expect(outcome.bestEvaluation?["score"] == 0.9 && outcome.lastEvaluation?["score"] == 0.4)
    let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/best/trainer_state.json"))) as! [String: Any]
    #expect(state["step"] as? Int == 4 && state["bestScore"] as? Double == 0.9)
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).allSatisfy { !$0.contains(".tmp") })
}

@Test func aLossThatIsNotFiniteStopsTheRunWithItsName() throws {
    let t = RegressionTask()
    t.nanAt = 2
    #expect { _ = try TrainingEngine(task: t, settings: settings(steps: 5)).run() } throws: { e in
        "\(e)".contains("loss mse became nan at step 3")
    }
}

@Test func aCheckpointThatDoesNotFitIsRefused() throws {
    let dir = TestPaths.temporaryDirectory().path
    var s = settings(steps: 4, output: dir)
    s.checkpointEvery = 2
    _ = try TrainingEngine(task: RegressionTask(), settings: s).run()
    let ckpt = dir + "/checkpoint-2"
    func refused(_ edit: (inout [String: Any]) -> Void, steps: Int = 4, _ needle: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let copy = dir + "/edited-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: ckpt, toPath: copy)
        var state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: copy + "/trainer_state.json"))) as! [String: Any]
        edit(&state)
        try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: copy + "/trainer_state.json"))
        let engine = try TrainingEngine(task: RegressionTask(), settings: settings(steps: steps))
        #expect(sourceLocation: sourceLocation) { try engine.resume(from: copy) } throws: { e in
            "\(e)".contains(needle) && !"\(e)".contains("\n")
        }
    }
    try refused({ $0["step"] = -1 }, "must not be negative")
    try refused({ $0["step"] = 3 }, steps: 2, "past this run's 2 steps")
    try refused({ $0["task"] = "nothing" }, "trainer_state.json")
    try refused({ $0.removeValue(forKey: "generator") }, "generator")
    #expect { try TrainingEngine(task: RegressionTask(), settings: settings(steps: 4)).resume(from: dir) } throws: { e in
        "\(e)".contains("no trainer_state.json")
    }
}
