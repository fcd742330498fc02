// The one training loop every trainer runs on (pretraining, codebook training, fine-tuning): micro-batch
// accumulation, global-norm clipping, warmup + cosine schedule, AdamW, held-out evaluation every N steps with
// best-checkpoint selection, atomic checkpoints with exact resume, and one callback seam for metrics.jsonl,
// TensorBoard and progress. A task supplies only what is its own: its parameters, one micro-batch's loss, its
// evaluation, how its model is written and read back, and the state it needs to continue exactly.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN
import FlavaDistributed

/// How the engine runs a task.
public struct TrainingSettings: Sendable {
    /// Optimizer steps in all (a resumed run continues up to it).
    public var steps: Int
    /// Micro-batches per optimizer step; their gradients are averaged.
    public var accumulation = 1
    /// Peak learning rate (each optimizer group's rate is scaled by the schedule).
    public var learningRate: Float
    public var weightDecay: Float
    /// Linear warmup steps before the cosine decay to 0 at `steps`.
    public var warmupSteps: Int
    /// Global gradient-norm clip (nil: none).
    public var maxGradNorm: Float? = 1
    /// Seed of the engine's generator, which the task draws its batches with.
    public var seed: UInt64 = 0
    /// Evaluate every this many steps and at the last (nil: never).
    public var evalEvery: Int? = nil
    /// Write checkpoint-STEP every this many steps and at the last (nil: never; needs `output`).
    public var checkpointEvery: Int? = nil
    /// The run folder for checkpoints and the best checkpoint (nil: nothing is written).
    public var output: String? = nil
    /// Write OUTPUT/best whenever an evaluation scores higher than every earlier one.
    public var saveBest = true
    /// Data-parallel runs: shard the optimizer's state across ranks (ZeRO stage 1); the results are the same.
    public var shardOptimizer = false
    /// Data-parallel runs: bytes of gradients summed per collective (all ranks' pieces together; 25 MB, PyTorch
    /// DDP's bucket_cap_mb). The results do not depend on it beyond float rounding.
    public var bucketBytes = 25 << 20

    public init(steps: Int, learningRate: Float, weightDecay: Float, warmupSteps: Int, maxGradNorm: Float? = 1, seed: UInt64 = 0) {
        self.steps = steps; self.learningRate = learningRate; self.weightDecay = weightDecay
        self.warmupSteps = warmupSteps; self.maxGradNorm = maxGradNorm; self.seed = seed
    }

    /// Checks every setting; the error names `file` and the field.
    public func validate(file: String = "training settings") throws {
        let k = ConfigChecker(file: file)
        try k.int("steps", steps, in: 0...100_000_000)
        try k.int("accumulation", accumulation, in: 1...65_536)
        try k.number("learning_rate", Double(learningRate), in: 0...10, aboveLower: true)
        try k.number("weight_decay", Double(weightDecay), in: 0...10)
        try k.int("warmup_steps", warmupSteps, in: 0...100_000_000)
        if let m = maxGradNorm { try k.number("max_grad_norm", Double(m), in: 0...1e9, aboveLower: true) }
        if let e = evalEvery { try k.int("eval_every", e, in: 1...100_000_000) }
        if let c = checkpointEvery { try k.int("checkpoint_every", c, in: 1...100_000_000) }
        try k.int("bucket_bytes", bucketBytes, in: 4...(1 << 33))
    }
}

/// One micro-batch's forward pass: its loss (what backward starts from) and the numbers to log.
public struct MicroBatchLoss {
    public var loss: Variable
    /// Logged under "losses", averaged over the step's micro-batches (the total loss too, if wanted).
    public var losses: [String: Double]
    /// Other per-step values (a temperature, a schedule's weight), logged as they are.
    public var values: [String: Double]
    /// Samples in the micro-batch (for samples per second and the run's sample count).
    public var samples: Int

    public init(loss: Variable, losses: [String: Double] = [:], values: [String: Double] = [:], samples: Int) {
        self.loss = loss; self.losses = losses; self.values = values; self.samples = samples
    }
}

/// How a data-parallel task's per-rank losses make the global one.
public enum CrossRankLoss: Sendable {
    /// Each rank's loss is the mean over its equal slice: the global loss is their mean (gradients averaged).
    case mean
    /// Each rank's loss is its share of the global loss (normalized by global counts): the global loss is their
    /// sum (gradients summed).
    case sum
}

/// What a trainer supplies to the engine.
public protocol TrainingTask: AnyObject {
    /// Whatever the task needs beyond weights and optimizer moments to continue exactly (data positions,
    /// its own generators and counters); saved in trainer_state.json.
    associatedtype State: Codable

    /// The trained parameters with their checkpoint keys (optimizer.safetensors names moments by them).
    var trainableParameters: [(key: String, variable: Variable)] { get }
    /// The optimizer (default: AdamW, decay on weight matrices only, the settings' rate and decay).
    func makeOptimizer(_ settings: TrainingSettings) -> AdamW
    /// Called before each optimizer step's micro-batches; may draw from the engine's generator. Returns a label
    /// of the step (the data kind of a pretraining step), or nil.
    func beginStep(_ step: Int, generator: inout SeededGenerator) throws -> String?
    /// One micro-batch of step `step` (0-based): draw it (with `generator` if the task draws at random), run the
    /// forward pass, return the loss.
    func microBatch(step: Int, kind: String?, generator: inout SeededGenerator) throws -> MicroBatchLoss
    /// Called once the step's gradients are complete (accumulated, and summed across ranks), before clipping
    /// and the update: a task may drop gradients here (DINO freezes its head's last layer; a parameter whose
    /// gradient is nil gets no update).
    func gradientsReady(step: Int) throws
    /// Called after the optimizer update of step `step` (0-based).
    func endStep(_ step: Int) throws
    /// Held-out metrics (run without gradients), or nil when the task has nothing to evaluate on.
    func evaluate(step: Int) throws -> [String: Double]?
    /// The figure the best checkpoint is chosen by (higher is better).
    func score(_ evaluation: [String: Double]) -> Double
    /// Writes the model (and whatever belongs beside it: vocabulary, codebook, answers) into `dir`.
    func saveModel(to dir: String) throws
    /// Reads the weights a `saveModel` wrote back into the task's model (for resuming).
    func loadModel(from dir: String) throws
    /// Training mode on or off (the engine sets it on for the run and off after).
    func setTraining(_ on: Bool)
    /// How the ranks' losses combine in a data-parallel run (default: mean of equal slices).
    var crossRankLoss: CrossRankLoss { get }
    func state() throws -> State
    func restore(_ state: State, from dir: String) throws
}

extension TrainingTask {
    public func makeOptimizer(_ s: TrainingSettings) -> AdamW {
        AdamW(namedParameters: trainableParameters, .init(learningRate: s.learningRate, weightDecay: s.weightDecay))
    }
    public func beginStep(_ step: Int, generator: inout SeededGenerator) throws -> String? { nil }
    public func gradientsReady(step: Int) throws {}
    public func endStep(_ step: Int) throws {}
    public func evaluate(step: Int) throws -> [String: Double]? { nil }
    public func score(_ evaluation: [String: Double]) -> Double { evaluation.values.reduce(0, +) }
    public func setTraining(_ on: Bool) {}
    public var crossRankLoss: CrossRankLoss { .mean }
}

/// A task with no state beyond the engine's.
public struct NoTaskState: Codable, Sendable { public init() {} }

/// One row of metrics.jsonl: a step's losses (averaged over its micro-batches), values, learning rate, speed and,
/// when it evaluated, the held-out metrics.
public struct TrainingLogEntry: Codable, Sendable {
    public var step: Int
    /// The step's label (a pretraining step's data kind), if the task gives one.
    public var kind: String?
    public var losses: [String: Double]
    public var values: [String: Double]?
    public var learningRate: Double
    public var samplesPerSecond: Double
    public var eval: [String: Double]?
}

public typealias PretrainingLogEntry = TrainingLogEntry

/// Where the engine reports to: metrics files, TensorBoard, a progress bar, a caller's closure.
public protocol TrainingCallback: AnyObject {
    /// Before the first step of this start (`step` > 0 when resumed).
    func trainingWillStart(step: Int, total: Int) throws
    func stepDidEnd(_ entry: TrainingLogEntry, total: Int) throws
    func checkpointDidSave(_ path: String, step: Int) throws
    func trainingDidEnd(step: Int) throws
}

extension TrainingCallback {
    public func trainingWillStart(step: Int, total: Int) throws {}
    public func stepDidEnd(_ entry: TrainingLogEntry, total: Int) throws {}
    public func checkpointDidSave(_ path: String, step: Int) throws {}
    public func trainingDidEnd(step: Int) throws {}
}

/// Appends each entry to a JSONL file (created if needed; a resumed run appends).
public final class MetricsLogCallback: TrainingCallback {
    let handle: FileHandle
    let encoder = JSONEncoder()
    /// `truncate`: start the file afresh.
    public init(path: String, truncate: Bool = false) throws {
        handle = try FileHandle.forAppending(path)
        if truncate { try handle.truncate(atOffset: 0) }
        encoder.outputFormatting = [.sortedKeys]
    }
    deinit { try? handle.close() }
    public func stepDidEnd(_ entry: TrainingLogEntry, total: Int) throws {
        handle.write(try encoder.encode(entry) + Data("\n".utf8))
    }
}

/// Writes each entry's losses ("loss/…"), values ("train/…"), learning rate, speed and evaluation ("eval/…") as
/// TensorBoard scalars.
public final class TensorBoardCallback: TrainingCallback {
    let writer: TensorBoardWriter
    public init(directory: String) throws { writer = try TensorBoardWriter(directory: directory) }
    public func stepDidEnd(_ e: TrainingLogEntry, total: Int) throws {
        var scalars = Dictionary(uniqueKeysWithValues: e.losses.map { ("loss/" + $0.key, $0.value) })
        for (k, v) in e.values ?? [:] { scalars["train/" + k] = v }
        scalars["train/learning_rate"] = e.learningRate
        scalars["train/samples_per_second"] = e.samplesPerSecond
        for (k, v) in e.eval ?? [:] { scalars["eval/" + k] = v }
        writer.scalars(scalars, step: e.step)
    }
}

/// Calls a closure after each step (a progress bar, a caller's event stream).
public final class StepCallback: TrainingCallback {
    let body: (TrainingLogEntry, Int) -> Void
    public init(_ body: @escaping (TrainingLogEntry, _ total: Int) -> Void) { self.body = body }
    public func stepDidEnd(_ entry: TrainingLogEntry, total: Int) throws { body(entry, total) }
}

/// What trainer_state.json holds: the engine's counters and generator, and the task's state.
public struct TrainingEngineState<TaskState: Codable>: Codable {
    public var step: Int
    public var generator: SeededGenerator
    public var bestScore: Double?
    /// Samples consumed so far (every micro-batch's), so a resumed run knows where the data stands.
    public var samplesSeen: Int
    public var task: TaskState
}

/// What a run of the engine ends with.
public struct TrainingOutcome: Sendable {
    public var steps: Int
    public var samplesSeen: Int
    /// The last evaluation, and the one of the best checkpoint (by the task's score).
    public var lastEvaluation: [String: Double]?
    public var bestEvaluation: [String: Double]?
    /// Folders written by this start: the best checkpoint and the last periodic one.
    public var bestCheckpoint: String?
    public var lastCheckpoint: String?
    /// Data-parallel: the checksum of the final weights, verified equal on every rank.
    public var replicaChecksum: UInt64?
}

/// The training loop. Under `mpirun` every rank runs the same engine on its slice of each global batch: the
/// gradients are summed across ranks before clipping (DataParallelGradients), every rank applies the same
/// update, and only rank 0 evaluates, reports to the callbacks and writes checkpoints.
public final class TrainingEngine<Task: TrainingTask> {
    public let task: Task
    public let settings: TrainingSettings
    public let communicator: Communicator
    let dataParallel: DataParallelGradients?
    public private(set) var step = 0
    public private(set) var samplesSeen = 0
    public private(set) var bestScore: Double?
    public var callbacks: [TrainingCallback] = []
    var generator: SeededGenerator
    let optimizer: AdamW
    let named: [(key: String, variable: Variable)]

    /// `communicator`: the job's ranks (one process by default). Every rank must build the same task.
    public init(task: Task, settings: TrainingSettings, callbacks: [TrainingCallback] = [],
                communicator: Communicator = LocalCommunicator.shared) throws {
        try settings.validate()
        self.task = task
        self.settings = settings
        self.callbacks = callbacks
        self.communicator = communicator
        named = task.trainableParameters.filter { $0.variable.requiresGrad }
        optimizer = task.makeOptimizer(settings)
        generator = SeededGenerator(seed: settings.seed)
        if communicator.size > 1 {
            guard communicator.agree(named.count), communicator.agree(named.reduce(0) { $0 + $1.variable.value.count }) else {
                throw TrainingError("the ranks built different models (parameter counts differ)")
            }
            let dp = DataParallelGradients(parameters: named.map(\.variable), communicator: communicator, sharded: settings.shardOptimizer,
                                          bucketBytes: settings.bucketBytes)
            dp.broadcastParameters()
            if settings.shardOptimizer { optimizer.shard = dp.ownedRanges() }
            dataParallel = dp
        } else {
            dataParallel = nil
        }
    }

    /// The multiplier of the peak learning rate at step `step` (0-based).
    public func learningRateScale(at step: Int) -> Float {
        Float(LearningRateSchedule.cosine(warmup: settings.warmupSteps, total: settings.steps).multiplier(at: step))
    }

    /// How many optimizer updates a parameter has had (0 before its first).
    public func optimizerStepCount(of p: Variable) -> Int { optimizer.state(of: p)?.step ?? 0 }
    /// A parameter's AdamW moments (of this rank's shard when sharded), nil before its first update.
    public func optimizerMoments(of p: Variable) -> (m: Tensor, v: Tensor)? { optimizer.state(of: p).map { ($0.m, $0.v) } }

    /// A checksum of every trained weight's bits (FNV-1a), the same on every rank of a healthy data-parallel run.
    public func weightChecksum() -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (_, p) in named {
            p.value.withBuffer { b in
                for x in b { h = (h ^ UInt64(x.bitPattern)) &* 0x100_0000_01b3 }
            }
        }
        return h
    }

    /// Data-parallel: checks that every rank holds bit-identical weights (throws naming the step otherwise) and
    /// returns the checksum.
    @discardableResult
    public func verifyReplicasAgree() throws -> UInt64 {
        let h = weightChecksum()
        let parts = [Int32(truncatingIfNeeded: h >> 32), Int32(truncatingIfNeeded: h)]
        let all = communicator.allGather(parts)
        for r in 0..<communicator.size where all[2 * r] != parts[0] || all[2 * r + 1] != parts[1] {
            throw TrainingError("rank \(r)'s weights differ from rank \(communicator.rank)'s at step \(step): the replicas diverged")
        }
        return h
    }

    /// One optimizer step: `accumulation` micro-batches, their mean gradient, clipping, the scheduled update.
    @discardableResult
    public func trainStep() throws -> TrainingLogEntry {
        let t0 = Date()
        let kind = try task.beginStep(step, generator: &generator)
        for (_, p) in named { p.grad = nil }
        let n = settings.accumulation
        var losses: [String: Double] = [:], values: [String: Double] = [:]
        var samples = 0
        for _ in 0..<n {
            let m = try task.microBatch(step: step, kind: kind, generator: &generator)
            (n > 1 ? m.loss * Float(1 / Double(n)) : m.loss).backward()
            for (k, v) in m.losses { losses[k, default: 0] += v / Double(n) }
            values.merge(m.values) { $1 }
            samples += m.samples
        }
        var used: [Bool]? = nil
        if let dp = dataParallel {
            // The ranks' losses and sample counts, combined as the task's losses combine.
            let keys = losses.keys.sorted()
            let mean = task.crossRankLoss == .mean
            let r = communicator.allReduce(keys.map { losses[$0]! } + [Double(samples)], .sum)
            for (i, k) in keys.enumerated() { losses[k] = mean ? r[i] / Double(communicator.size) : r[i] }
            samples = Int(r[keys.count])
            used = dp.reduce(scale: mean ? 1 / Float(communicator.size) : 1)
        }
        try task.gradientsReady(step: step)
        for (k, v) in losses where !v.isFinite {
            throw TrainingError("loss \(k) became \(v) at step \(step + 1)" + (kind.map { " (a \($0) step)" } ?? ""))
        }
        optimizer.learningRateScale = learningRateScale(at: step)
        if let m = settings.maxGradNorm {
            if let dp = dataParallel {
                // As clip_grad_norm_, over the summed gradients (each rank adds its shard's squares when sharded).
                let norm = dp.globalGradientNorm(optimizer.shard)
                let coef = m / (norm + 1e-6)
                if coef < 1 { for (_, p) in named { p.grad?.scale(by: coef) } }
            } else {
                Gradients.clipGlobalNorm(named.map(\.variable), maxNorm: m)
            }
        }
        optimizer.step()
        if let dp = dataParallel, settings.shardOptimizer, let used { dp.gatherParameters(used: used) }
        try task.endStep(step)
        step += 1
        samplesSeen += samples
        return TrainingLogEntry(step: step, kind: kind, losses: losses, values: values.isEmpty ? nil : values,
                                learningRate: Double(settings.learningRate * optimizer.learningRateScale),
                                samplesPerSecond: Double(samples) / max(Date().timeIntervalSince(t0), 1e-9), eval: nil)
    }

    /// Runs from the current step to `settings.steps`: evaluation, the best checkpoint and periodic checkpoints
    /// as the settings say, every step reported to the callbacks.
    public func run() throws -> TrainingOutcome {
        let total = settings.steps
        var outcome = TrainingOutcome(steps: step, samplesSeen: samplesSeen)
        let root = communicator.isRoot
        task.setTraining(true)
        defer { task.setTraining(false) }
        if root { for c in callbacks { try c.trainingWillStart(step: step, total: total) } }
        while step < total {
            var entry = try trainStep()
            let last = step == total
            if let e = settings.evalEvery, step % e == 0 || last {
                // Rank 0 evaluates (the weights are the same everywhere) and tells the others whether to join
                // in writing a best checkpoint.
                var best = false
                if root, let eval = try withNoGrad({ try task.evaluate(step: step - 1) }) {
                    entry.eval = eval
                    outcome.lastEvaluation = eval
                    let score = task.score(eval)
                    if bestScore.map({ score > $0 }) ?? true {
                        bestScore = score
                        outcome.bestEvaluation = eval
                        best = true
                    }
                }
                best = communicator.broadcast([Int32(best ? 1 : 0)], root: 0)[0] == 1
                if best && settings.output != nil && settings.saveBest { outcome.bestCheckpoint = try saveCheckpoint(name: "best") }
            }
            if let c = settings.checkpointEvery, settings.output != nil, step % c == 0 || last {
                outcome.lastCheckpoint = try saveCheckpoint()
            }
            if root { for c in callbacks { try c.stepDidEnd(entry, total: total) } }
        }
        outcome.steps = step
        outcome.samplesSeen = samplesSeen
        if communicator.size > 1 { outcome.replicaChecksum = try verifyReplicasAgree() }
        if root { for c in callbacks { try c.trainingDidEnd(step: step) } }
        return outcome
    }

    // MARK: checkpoints

    /// Writes OUTPUT/NAME (default checkpoint-STEP) atomically (a temporary folder renamed into place): the task's
    /// model files, optimizer.safetensors (each parameter's moments and step count, by its key) and
    /// trainer_state.json. Every rank calls it; a sharded optimizer's moments are gathered first, then rank 0
    /// writes today's files (so a checkpoint resumes on any number of ranks).
    @discardableResult
    public func saveCheckpoint(name: String? = nil) throws -> String {
        guard let output = settings.output else { throw TrainingError("no run folder to write checkpoints in") }
        let final = output + "/" + (name ?? "checkpoint-\(step)")
        var moments: [ObjectIdentifier: (m: Tensor, v: Tensor, step: Int)] = [:]
        if let dp = dataParallel, settings.shardOptimizer {
            let m = dp.gatherSharded { optimizer.state(of: $0)?.m }
            let v = dp.gatherSharded { optimizer.state(of: $0)?.v }
            for (i, p) in dp.parameters.enumerated() {
                if let s = optimizer.state(of: p) { moments[ObjectIdentifier(p)] = (m[i], v[i], s.step) }
            }
        } else {
            for (_, v) in named { if let s = optimizer.state(of: v) { moments[ObjectIdentifier(v)] = s } }
        }
        guard communicator.isRoot else { return final }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try AtomicFolder.write(to: final) { tmp in
            try task.saveModel(to: tmp)
            var tensors: [(String, StoredTensor)] = []
            for (key, v) in named {
                guard let s = moments[ObjectIdentifier(v)] else { continue }
                tensors.append(("\(key).exp_avg", .float(s.m))); tensors.append(("\(key).exp_avg_sq", .float(s.v)))
                tensors.append(("\(key).step", .int(IntTensor(shape: [], [s.step]))))
            }
            try SafeTensors.write(tensors, to: tmp + "/optimizer.safetensors")
            let state = TrainingEngineState(step: step, generator: generator, bestScore: bestScore, samplesSeen: samplesSeen,
                                            task: try task.state())
            let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(state).write(to: URL(fileURLWithPath: tmp + "/trainer_state.json"), options: .atomic)
        }
        for c in callbacks { try c.checkpointDidSave(final, step: step) }
        return final
    }

    /// Continues from a checkpoint folder written by `saveCheckpoint`: the model's weights, every optimizer moment
    /// (checked against its parameter's shape), the step, the generator, the best score and the task's state.
    /// A checkpoint that does not fit throws an error naming the problem; the engine is then not to be run.
    public func resume(from dir: String) throws {
        let statePath = try TrainingCheckpoint.statePath(in: dir)
        let state = try ConfigError.decode(TrainingEngineState<Task.State>.self, fromFile: statePath)
        guard state.step >= 0 else { throw ConfigError(statePath, "field 'step' = \(state.step): must not be negative") }
        guard state.step <= settings.steps else {
            throw ConfigError(statePath, "field 'step' = \(state.step): past this run's \(settings.steps) steps")
        }
        guard state.samplesSeen >= 0 else { throw ConfigError(statePath, "field 'samplesSeen' = \(state.samplesSeen): must not be negative") }
        // The weights first: a checkpoint of another model is named as such, not by its first mismatching moment.
        try task.loadModel(from: dir)
        let optPath = dir + "/optimizer.safetensors"
        let opt = try SafeTensorsFile(path: optPath)
        var list: [(parameter: Variable, state: (m: Tensor, v: Tensor, step: Int))] = []
        for (key, v) in named {
            guard opt.info("\(key).exp_avg") != nil else { continue }
            for moment in ["exp_avg", "exp_avg_sq"] {
                guard let info = opt.info("\(key).\(moment)"), info.shape == v.shape else {
                    throw CheckpointError(optPath, "\(key).\(moment) is missing or not of the parameter's shape \(v.shape)")
                }
            }
            let count = try opt.intTensor("\(key).step")
            guard count.count == 1, count.values[0] >= 0 else { throw CheckpointError(optPath, "\(key).step is not one non-negative count") }
            list.append((v, (try opt.floatTensor("\(key).exp_avg").copy(), try opt.floatTensor("\(key).exp_avg_sq").copy(), count.values[0])))
        }
        try task.restore(state.task, from: dir)
        optimizer.restore(list)
        step = state.step
        generator = state.generator
        bestScore = state.bestScore
        samplesSeen = state.samplesSeen
    }
}

/// The files of a checkpoint folder the engine reads back.
public enum TrainingCheckpoint {
    /// The folder's trainer_state.json, or an error naming the folder when it is missing or has none (callers
    /// check this before any other work; `TrainingEngine.resume` checks it again when it reads the state).
    public static func statePath(in dir: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw CheckpointError(dir, "no such checkpoint folder")
        }
        let path = dir + "/trainer_state.json"
        guard FileManager.default.fileExists(atPath: path) else {
            throw CheckpointError(dir, "no trainer_state.json: not a checkpoint this trainer wrote")
        }
        return path
    }
}

/// A training run that cannot go on (a loss that is not finite, data that ran out).
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
