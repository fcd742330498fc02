// flava-dist-check: the data-parallel checks that need several processes, run under mpirun by the test suite
// (Tests/CLITests/DataParallelTests.swift) and by hand on a cluster: every collective with rank-dependent
// values, the all-gather's backward, and the training engine against one process on the whole batch (plain
// and with a sharded optimizer), including a step that leaves some parameters (and their moments) untouched.
// Rank 0 prints one line per check and a closing "N passed, M failed"; the exit status is non-zero on a failure.
import Foundation
import FlavaKit

let comm: Communicator
do { comm = try DataParallel.world() } catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8)); exit(1)
}
let n = comm.size, rank = comm.rank
var passed = 0, failed = 0
@MainActor func check(_ name: String, _ ok: Bool, _ detail: @autoclosure () -> String = "") {
    // Every rank's verdict counts: the check passes only when it passed everywhere.
    let all = comm.allReduce([ok ? Int32(0) : 1], .sum)[0] == 0
    if all { passed += 1 } else { failed += 1 }
    if rank == 0 || !ok { print("\(all ? "ok  " : "FAIL") \(name)" + (ok ? "" : " (rank \(rank): \(detail()))")) }
}

// MARK: collectives

do {
    let v: [Float] = (0..<5).map { Float(rank * 10 + $0) }
    let sum = comm.allReduce(v, .sum)
    let expect: [Float] = (0..<5).map { i in Float((0..<n).reduce(0) { $0 + $1 * 10 + i }) }
    check("all-reduce sum (Float)", sum == expect, "\(sum) vs \(expect)")
    let mx = comm.allReduce([Int32(rank), Int32(-rank)], .max)
    check("all-reduce max (Int32)", mx == [Int32(n - 1), 0], "\(mx)")
    let d = comm.allReduce([Double(rank) + 0.5], .sum)[0]
    check("all-reduce sum (Double)", d == Double(n * (n - 1)) / 2 + 0.5 * Double(n), "\(d)")
    // Sizes that do not fit one bucket evenly, and rank-dependent contents.
    let g = comm.allGather((0..<3).map { Int32(rank * 100 + $0) })
    check("all-gather", g == (0..<n).flatMap { r in (0..<3).map { Int32(r * 100 + $0) } }, "\(g)")
    var rs = [Float](repeating: 0, count: 2)
    let send: [Float] = (0..<(2 * n)).map { Float($0 * (rank + 1)) }
    send.withUnsafeBufferPointer { s in rs.withUnsafeMutableBufferPointer { comm.reduceScatter(s, into: $0, .sum) } }
    let tri = Float(n * (n + 1) / 2)
    check("reduce-scatter", rs == [Float(2 * rank) * tri, Float(2 * rank + 1) * tri], "\(rs)")
    let b = comm.broadcast([Float(rank), Float(rank * 2)], root: n - 1)
    check("broadcast from the last rank", b == [Float(n - 1), Float(2 * (n - 1))], "\(b)")
    comm.barrier()
    check("barrier", true)
    check("agree on a common value", comm.agree(7))
    check("disagree on a rank-dependent value", n == 1 || !comm.agree(rank))
    // A large all-reduce (several MB), exact in integers.
    let big = comm.allReduce([Float](repeating: Float(rank + 1), count: 3_000_001), .sum)
    check("all-reduce of 3,000,001 values", big.allSatisfy { $0 == tri }, "first \(big[0])")
}

// MARK: the all-gather's backward

do {
    let b = 3, d = 4
    let x = Variable(Tensor(shape: [b, d], (0..<(b * d)).map { Float(rank * 100 + $0) }), requiresGrad: true)
    let y = allGatherRows(x, comm)
    let expectY = (0..<n).flatMap { r in (0..<(b * d)).map { Float(r * 100 + $0) } }
    check("all-gather rows forward", y.shape == [n * b, d] && y.value.array == expectY, "\(y.shape)")
    // Rank r's loss: Σ (r+1)·w ⊙ y, so ∂/∂x_r = Σ_k (k+1)·w[rows of r] = n(n+1)/2 · w[rows of r].
    let w = Tensor(shape: [n * b, d], (0..<(n * b * d)).map { Float($0 % 7) - 3 })
    ((y * Variable(w)).sum() * Float(rank + 1)).backward()
    let tri = Float(n * (n + 1) / 2)
    let expect = (0..<(b * d)).map { w[flat: rank * b * d + $0] * tri }
    check("all-gather rows backward = reduce-scatter of the summed gradient", x.grad?.array == expect, "\(x.grad?.array ?? [])")
}

// MARK: the engine against one process

/// Least squares with two parameter blocks: "image" steps use only the image weights, "pair" steps use both.
final class ToyTask: TrainingTask {
    typealias State = NoTaskState
    let image = Variable(Tensor(shape: [4, 3], (0..<12).map { Float($0) * 0.1 - 0.5 }), requiresGrad: true)
    let text = Variable(Tensor(shape: [3], [0.3, -0.2, 0.1]), requiresGrad: true)
    let comm: Communicator
    let globalBatch: Int
    init(_ comm: Communicator, globalBatch: Int) { self.comm = comm; self.globalBatch = globalBatch }
    var trainableParameters: [(key: String, variable: Variable)] { [("image.weight", image), ("text.weight", text)] }
    func beginStep(_ step: Int, generator: inout SeededGenerator) throws -> String? { step % 3 == 1 ? "image" : "pair" }
    func microBatch(step: Int, kind: String?, generator: inout SeededGenerator) throws -> MicroBatchLoss {
        // Sample i of the global batch depends only on (step, i); this rank takes its slice.
        let b = globalBatch / comm.size, first = comm.rank * b
        let xs = (0..<(b * 4)).map { j -> Float in let i = first + j / 4; return sin(Float(step * 31 + i * 7 + j % 4)) }
        let ys = (0..<(b * 3)).map { j -> Float in let i = first + j / 3; return cos(Float(step * 13 + i * 5 + j % 3)) }
        var pred = matmul(Variable(Tensor(shape: [b, 4], xs)), image)                // [b, 3]
        if kind == "pair" { pred = pred + text }
        let diff = pred - Variable(Tensor(shape: [b, 3], ys))
        let loss = (diff * diff).mean()
        return MicroBatchLoss(loss: loss, losses: ["loss": Double(loss.value.scalarValue)], samples: b)
    }
    func saveModel(to dir: String) throws {}
    func loadModel(from dir: String) throws {}
    func state() throws -> NoTaskState { NoTaskState() }
    func restore(_ state: NoTaskState, from dir: String) throws {}
}

// The default buckets (one here), then 24-byte buckets: several per step, the last one shorter.
for (sharded, bucketBytes) in [(false, 25 << 20), (true, 25 << 20), (false, 24), (true, 24)] {
    let parts = (sharded ? ["sharded optimizer"] : []) + (bucketBytes < 1024 ? ["\(bucketBytes)-byte buckets"] : [])
    let label = parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")"
    do {
        var s = TrainingSettings(steps: 5, learningRate: 0.05, weightDecay: 0.1, warmupSteps: 1, maxGradNorm: 0.5, seed: 3)
        s.shardOptimizer = sharded
        s.bucketBytes = bucketBytes
        let reference = try TrainingEngine(task: ToyTask(LocalCommunicator(), globalBatch: 4 * n), settings: s)
        let parallel = try TrainingEngine(task: ToyTask(comm, globalBatch: 4 * n), settings: s, communicator: comm)
        var lossesAgree = true
        for step in 0..<5 {
            let textBefore = parallel.task.text.value.array
            let momentsBefore = parallel.optimizerMoments(of: parallel.task.text).map { [$0.m.array, $0.v.array] }
            let a = try reference.trainStep(), b = try parallel.trainStep()
            if abs(a.losses["loss"]! - b.losses["loss"]!) > 1e-6 * abs(a.losses["loss"]!) { lossesAgree = false }
            if step == 1 {
                check("an image-only step leaves the text weights and their moments bit-identical\(label)",
                      parallel.task.text.value.array == textBefore
                        && parallel.optimizerMoments(of: parallel.task.text).map { [$0.m.array, $0.v.array] } == momentsBefore
                        && momentsBefore != nil)
            }
        }
        check("per-step losses equal one process on the whole batch\(label)", lossesAgree)
        func close(_ x: [Float], _ y: [Float]) -> Bool { zip(x, y).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) } }
        check("weights equal one process on the whole batch\(label)",
              close(reference.task.image.value.array, parallel.task.image.value.array)
                && close(reference.task.text.value.array, parallel.task.text.value.array),
              "\(reference.task.image.value.array.prefix(3)) vs \(parallel.task.image.value.array.prefix(3))")
        check("weights bit-identical on every rank\(label)", (try? parallel.verifyReplicasAgree()) != nil)
        // Steps 1 and 4 are image-only: the text weights were updated in 3 of 5 steps, on every rank.
        let counts = (parallel.optimizerStepCount(of: parallel.task.text), parallel.optimizerStepCount(of: parallel.task.image))
        check("AdamW counts only the steps that used a parameter\(label)", counts == (3, 5), "text \(counts.0), image \(counts.1)")
    } catch {
        check("engine run\(label)", false, "\(error)")
    }
}

if rank == 0 { print("\(passed) passed, \(failed) failed") }
DataParallel.finish()
exit(failed == 0 ? 0 : 1)
