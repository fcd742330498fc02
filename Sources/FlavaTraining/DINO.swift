// DINO (Caron et al. 2021), the image-encoder stage the FLAVA paper found best (§3.3, Table C.1), as a task of
// the training engine, mirroring main_dino.py: the student is FLAVA's image encoder + a DINO head; the teacher
// is an exponential moving average of the student (momentum cosine-scheduled towards 1) that gets no gradient.
// Every image gives two global crops and several local crops (DINOAugmentation); the teacher sees the global
// crops, the student all of them; the loss is the cross-entropy between the teacher's centred, sharpened
// distribution of each global crop and the student's distribution of every other crop (DINOLoss), the centre an
// EMA of the teacher's batch mean. The head's last layer is frozen for the first part of the run.
//
// Schedules are given as fractions of the run, DINO's epochs mapped onto our steps (DINO's 100-epoch recipe:
// learning-rate warm-up 10 epochs = 10 %, last layer frozen 1 epoch = 1 %, teacher temperature warm-up 30
// epochs = 30 %). `DINOConfig.small` has the sizes for the small preset; README "DINO" puts them beside
// DINO's ViT-B/16 values.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN
import FlavaDistributed
import FlavaModel
import FlavaData
import FlavaEval

/// DINO's settings beyond the engine's (steps, batch, learning rate, weight decay, clipping).
public struct DINOConfig: Codable, Sendable, Equatable {
    public var head = DINOHeadConfig()
    public var augmentation = DINOAugmentationConfig()
    /// τ_s (0.1).
    public var studentTemperature = 0.1
    /// τ_t after its warm-up, and where the warm-up starts (DINO's teacher_temp, warmup_teacher_temp).
    public var teacherTemperature = 0.04
    public var warmupTeacherTemperature = 0.04
    /// Fraction of the run over which τ_t rises linearly from the warm-up value.
    public var teacherTemperatureWarmup = 0.0
    /// The centre's EMA momentum (0.9).
    public var centerMomentum = 0.9
    /// The teacher's EMA momentum at the start; it rises along a cosine to 1 at the last step (0.996).
    public var teacherMomentum = 0.996
    /// Fraction of the run during which the head's last layer gets no update (DINO: its first epoch).
    public var freezeLastLayer = 0.01

    public init() {}

    /// DINO scaled to the small preset on the synthetic world: 1,024 prototypes, a 512-wide head with a 128
    /// bottleneck, 6 local crops of 3/7 the side, DINO's colour augmentations toned down for a world whose colours
    /// are half of what it shows (`DINOAugmentationConfig.withMildColour`; a run on other images gets DINO's
    /// own, `PretrainingRun`), τ_t 0.04 throughout (main_dino.py's default; the ViT-B/16 recipe's warm-up to
    /// 0.07 left the teacher nearer uniform in our 300-step runs and its probe lower: 0.467 against 0.533), the
    /// teacher momentum from 0.99 (DINO's 0.996 averages over ~250 steps; our runs are hundreds of steps, not 10⁵).
    public static func small(imageSize: Int, patchSize: Int) -> DINOConfig {
        var c = DINOConfig()
        c.head = DINOHeadConfig(outDim: 1024, hiddenDim: 512, bottleneckDim: 128)
        c.augmentation = DINOAugmentationConfig(imageSize: imageSize, patchSize: patchSize).withMildColour()
        c.augmentation.localCrops = 6
        c.teacherMomentum = 0.99
        return c
    }

    /// `small` for the small preset's 64-pixel images in 8-pixel patches: PretrainingConfig's default, which a
    /// run re-sizes to its model when left as it is.
    public static let smallDefault = DINOConfig.small(imageSize: 64, patchSize: 8)

    enum CodingKeys: String, CodingKey {
        case head, augmentation, studentTemperature, teacherTemperature, warmupTeacherTemperature, teacherTemperatureWarmup
        case centerMomentum, teacherMomentum, freezeLastLayer
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DINOConfig()
        head = try c.value(.head, d.head); augmentation = try c.value(.augmentation, d.augmentation)
        studentTemperature = try c.value(.studentTemperature, d.studentTemperature)
        teacherTemperature = try c.value(.teacherTemperature, d.teacherTemperature)
        warmupTeacherTemperature = try c.value(.warmupTeacherTemperature, d.warmupTeacherTemperature)
        teacherTemperatureWarmup = try c.value(.teacherTemperatureWarmup, d.teacherTemperatureWarmup)
        centerMomentum = try c.value(.centerMomentum, d.centerMomentum)
        teacherMomentum = try c.value(.teacherMomentum, d.teacherMomentum)
        freezeLastLayer = try c.value(.freezeLastLayer, d.freezeLastLayer)
    }

    /// Checks every setting (against the model's patch size); the error names `file` and the field.
    public func validate(file: String = "DINO settings", patchSize: Int) throws {
        try validate(ConfigChecker(file: file), patchSize: patchSize)
    }

    /// Checks every setting with `k` (a section of a larger file).
    public func validate(_ k: ConfigChecker, patchSize: Int) throws {
        try head.validate(k.nested("head"))
        try augmentation.validate(k.nested("augmentation"), patchSize: patchSize)
        try k.number("studentTemperature", studentTemperature, in: 0...100, aboveLower: true)
        try k.number("teacherTemperature", teacherTemperature, in: 0...100, aboveLower: true)
        try k.number("warmupTeacherTemperature", warmupTeacherTemperature, in: 0...100, aboveLower: true)
        try k.number("teacherTemperatureWarmup", teacherTemperatureWarmup, in: 0...1)
        try k.number("centerMomentum", centerMomentum, in: 0...1)
        try k.number("teacherMomentum", teacherMomentum, in: 0...1)
        try k.number("freezeLastLayer", freezeLastLayer, in: 0...1)
    }

    /// τ_t at step `step` (0-based) of `total`: linear from the warm-up value, then constant.
    public func teacherTemperature(at step: Int, of total: Int) -> Double {
        let w = Int((teacherTemperatureWarmup * Double(total)).rounded())
        guard step < w, w > 0 else { return teacherTemperature }
        return warmupTeacherTemperature + (teacherTemperature - warmupTeacherTemperature) * Double(step) / Double(w)
    }

    /// The teacher's momentum after step `step` (0-based) of `total`: 1 − (1 − m₀)(cos(π·step/total) + 1)/2.
    public func teacherMomentum(at step: Int, of total: Int) -> Double {
        1 - (1 - teacherMomentum) * (cos(Double.pi * Double(step) / Double(max(total, 1))) + 1) / 2
    }

    /// Whether the head's last layer is frozen at step `step` (0-based) of `total`.
    public func lastLayerFrozen(at step: Int, of total: Int) -> Bool {
        step < Int((freezeLastLayer * Double(total)).rounded(.up))
    }
}

/// What one DINO step tells about the teacher: collapse shows as an entropy near 0 (every image one-hot on
/// one prototype) or near log K (uniform).
public struct DINOStatistics: Sendable {
    /// Mean over the teacher's rows of H(P_t) in nats.
    public var teacherEntropy: Double
    /// H of the batch-mean teacher distribution (near 0: every image lands on the same prototypes).
    public var teacherBatchEntropy: Double
    /// log K, the entropy of the uniform distribution.
    public var maximumEntropy: Double

    /// Which collapse a mean teacher entropy `h` (nats) out of log K = `maximum` shows: one-hot outputs below
    /// 10 % of log K, uniform ones above 95 %, else neither.
    public static func collapse(entropy h: Double, maximum: Double) -> String {
        h < 0.1 * maximum ? "collapsed to one-hot outputs" : h > 0.95 * maximum ? "collapsed to uniform outputs" : "neither collapse"
    }
}

/// DINOLoss (main_dino.py): the teacher's global crops, centred and sharpened by τ_t, against the student's
/// every other crop at τ_s; the centre follows the teacher's batch mean with `centerMomentum`.
public final class DINOLoss {
    /// The centre C [K].
    public var center: Tensor
    public let studentTemperature: Float
    public let centerMomentum: Float

    public init(outDim: Int, studentTemperature: Double, centerMomentum: Double) {
        center = Tensor.zeros([outDim])
        self.studentTemperature = Float(studentTemperature)
        self.centerMomentum = Float(centerMomentum)
    }

    /// The teacher's targets softmax((t − C)/τ_t) [G·B, K] for its logits [G·B, K].
    public func teacherProbabilities(_ teacher: Tensor, temperature: Float) -> Tensor {
        let k = center.count
        let rows = teacher.count / k
        let x = Tensor(uninitializedShape: teacher.shape)
        let tp = teacher.storage.pointer, cp = center.storage.pointer, xp = x.storage.pointer
        for r in 0..<rows { for j in 0..<k { xp[r * k + j] = (tp[r * k + j] - cp[j]) / temperature } }
        return SoftmaxKernel.forward(x)
    }

    /// The loss for student logits [V·B, K] (the two global crops first, then the local crops, each crop's B rows
    /// together) and the teacher's logits [2·B, K] of the two global crops: the mean over every (teacher crop q,
    /// student crop v ≠ q) of the batch-mean cross-entropy. Does not update the centre (`updateCenter`).
    public func callAsFunction(student: Variable, teacher: Tensor, views: Int, teacherTemperature: Float) -> (loss: Variable, statistics: DINOStatistics) {
        let k = center.count
        let rows = teacher.count / k, b = rows / 2
        precondition(teacher.shape == [2 * b, k] && student.shape == [views * b, k] && views >= 2,
                     "DINO loss: student \(student.shape), teacher \(teacher.shape), \(views) views")
        let q = teacherProbabilities(teacher, temperature: teacherTemperature)
        // Each student row's target is the sum of the teacher distributions it is compared with: global crop 0
        // against teacher crop 1, global crop 1 against teacher crop 0, each local crop against both.
        let targets = Tensor.zeros([views * b, k])
        let qp = q.storage.pointer, tp = targets.storage.pointer
        for v in 0..<views {
            for i in 0..<b {
                let dst = tp + (v * b + i) * k
                for t in 0..<2 where t != v {
                    let src = qp + (t * b + i) * k
                    for j in 0..<k { dst[j] += src[j] }
                }
            }
        }
        let terms = 2 * (views - 1)
        let loss = softTargetCrossEntropy(student * (1 / studentTemperature), targets: targets) * (1 / Float(b * terms))
        return (loss, DINOLoss.statistics(q))
    }

    /// Mean row entropy and the entropy of the mean row of probabilities [N, K].
    public static func statistics(_ p: Tensor) -> DINOStatistics {
        let k = p.shape.last!, rows = p.count / k
        let pp = p.storage.pointer
        var h = 0.0
        var mean = [Double](repeating: 0, count: k)
        for r in 0..<rows {
            for j in 0..<k {
                let x = Double(pp[r * k + j])
                if x > 0 { h -= x * Foundation.log(x) }
                mean[j] += x / Double(rows)
            }
        }
        let hb = mean.reduce(0.0) { $1 > 0 ? $0 - $1 * Foundation.log($1) : $0 }
        return DINOStatistics(teacherEntropy: h / Double(max(rows, 1)), teacherBatchEntropy: hb, maximumEntropy: Foundation.log(Double(k)))
    }

    /// C ← m·C + (1 − m)·mean of the teacher's rows over every rank's batch.
    public func updateCenter(_ teacher: Tensor, communicator: Communicator = LocalCommunicator.shared) {
        let k = center.count, rows = teacher.count / k
        var sums = [Double](repeating: 0, count: k + 1)
        let tp = teacher.storage.pointer
        for r in 0..<rows { for j in 0..<k { sums[j] += Double(tp[r * k + j]) } }
        sums[k] = Double(rows)
        if communicator.size > 1 { sums = communicator.allReduce(sums, .sum) }
        let m = centerMomentum, cp = center.storage.pointer
        for j in 0..<k { cp[j] = cp[j] * m + Float(sums[j] / sums[k]) * (1 - m) }
    }
}

/// The teacher's update: θ_t ← m·θ_t + (1 − m)·θ_s, parameter by parameter.
public enum DINOTeacher {
    public static func update(teacher: [Variable], student: [Variable], momentum: Float) {
        precondition(teacher.count == student.count, "DINO teacher: \(teacher.count) parameters for the student's \(student.count)")
        for (t, s) in zip(teacher, student) {
            precondition(t.shape == s.shape, "DINO teacher: \(t.shape) vs \(s.shape)")
            t.value.scale(by: momentum)
            t.value.addScaled(s.value, alpha: 1 - momentum)
        }
    }
}

/// One batch of multi-crop views: the global crops [2·B, 3, S, S] (crop 1 of every image, then crop 2) and the
/// local crops [L·B, 3, s, s] (crop by crop).
public struct DINOBatch {
    public var globals: Tensor
    public var locals: Tensor?
    public var count: Int
    public var views: Int { 2 + (locals.map { $0.shape[0] / count } ?? 0) }
}

/// What a DINO task saves beside the engine's state: where the loader stands and the settings.
public struct DINOTaskState: Codable, Sendable {
    public var position: LoaderPosition
    public var config: PretrainingConfig
}

/// DINO pretraining of a FLAVA image encoder as a task of the training engine. The checkpoint is the whole FLAVA
/// in the Hugging Face layout (its image encoder the student's) with, beside it, dino.safetensors (the student's
/// head "student.head.*", the teacher "teacher.backbone.*" in the image encoder's names and "teacher.head.*", and
/// the centre "center") and dino_config.json.
public final class DINOTask: TrainingTask {
    public let model: FlavaForPreTraining
    public let head: DINOHead
    public let teacher: FlavaImageModel
    public let teacherHead: DINOHead
    public let loss: DINOLoss
    public let config: PretrainingConfig
    public var dino: DINOConfig { config.dino }
    let vocabFile: String?
    let source: DataSource
    let communicator: Communicator
    let evaluation: ((FlavaImageModel) throws -> [String: Double])?
    var loader: DataLoader<[Tensor], DINOBatch>?
    let studentParameters: [(key: String, variable: Variable)]
    let teacherParameters: [Variable]

    /// The encoder's parameters DINO trains: all but the pooler and the mask token (DINO uses neither).
    static func trained(_ m: FlavaImageModel, prefix: String) -> [(key: String, variable: Variable)] {
        m.namedParameters(prefix: prefix).filter { p in
            let parts = p.key.split(separator: ".")
            return !parts.contains("pooler") && parts.last != "mask_token"
        }
    }

    /// `source`: images (any record with an image); `evaluation` runs on the teacher's encoder every
    /// `evalEvery` steps. Data-parallel, `config.batchSize` is the global batch and must divide evenly.
    public init(model: FlavaForPreTraining, config: PretrainingConfig, source: DataSource, vocabFile: String? = nil,
                evaluation: ((FlavaImageModel) throws -> [String: Double])? = nil,
                communicator: Communicator = LocalCommunicator.shared) throws {
        let ic = model.config.imageConfig
        try config.dino.validate(file: "DINO settings", patchSize: ic.patchSize)
        guard config.dino.augmentation.globalSize == ic.imageSize else {
            throw ConfigError("DINO settings", "field 'augmentation.globalSize' = \(config.dino.augmentation.globalSize): must be the model's image size \(ic.imageSize)")
        }
        guard config.batchSize % communicator.size == 0 else {
            throw DataParallelError("the batch size \(config.batchSize) (the global batch) does not divide evenly among \(communicator.size) ranks")
        }
        self.model = model; self.config = config; self.source = source; self.vocabFile = vocabFile
        self.evaluation = evaluation; self.communicator = communicator
        var ini = Initializer(range: Float(ic.initializerRange), seed: config.seed &+ 17)
        head = DINOHead(inDim: ic.hiddenSize, config.dino.head, init: &ini)
        teacher = FlavaImageModel(ic, init: &ini)
        teacherHead = DINOHead(inDim: ic.hiddenSize, config.dino.head, init: &ini)
        loss = DINOLoss(outDim: config.dino.head.outDim, studentTemperature: config.dino.studentTemperature,
                        centerMomentum: config.dino.centerMomentum)
        studentParameters = DINOTask.trained(model.flava.imageModel, prefix: "flava.image_model") + head.namedParameters(prefix: "dino_head")
        teacherParameters = DINOTask.trained(teacher, prefix: "").map(\.variable) + teacherHead.parameters
        // The teacher starts as the student (DINO loads the student's state dict into it).
        _ = teacher.copyParameters(from: model.flava.imageModel)
        _ = teacherHead.copyParameters(from: head)
        for p in teacher.parameters + teacherHead.parameters { p.freeze() }
    }

    public var trainableParameters: [(key: String, variable: Variable)] { studentParameters.filter { $0.variable.requiresGrad } }
    public func setTraining(_ on: Bool) { model.flava.imageModel.train(on); head.train(on) }

    /// The student's parameters in the teacher's order (the head's weight_g included where it is frozen).
    var studentInTeacherOrder: [Variable] {
        DINOTask.trained(model.flava.imageModel, prefix: "").map(\.variable) + head.parameters
    }

    func makeLoader(from position: LoaderPosition) throws -> DataLoader<[Tensor], DINOBatch> {
        let aug = DINOAugmentation(dino.augmentation, mean: config.data.processor.config.imageMean, std: config.data.processor.config.imageStd)
        var o = LoaderOptions(batchSize: config.batchSize, shuffleBuffer: 256, seed: config.seed &+ 2)
        o.shard = (communicator.rank, communicator.size)
        return try DataLoader(source: source, options: o, resumeFrom: position,
            transform: { r, g in
                guard let ref = r.image else { throw DataError("no image") }
                return aug.views(try ref.load(), using: &g)
            },
            collate: { items, _ in DINOTask.collate(items) })
    }

    /// Stacks every image's views crop by crop (see DINOBatch).
    static func collate(_ items: [[Tensor]]) -> DINOBatch {
        let v = items[0].count
        let globals = ShapeKernel.stack((0..<2).flatMap { c in items.map { $0[c] } })
        let locals = v > 2 ? ShapeKernel.stack((2..<v).flatMap { c in items.map { $0[c] } }) : nil
        return DINOBatch(globals: globals, locals: locals, count: items.count)
    }

    /// [CLS] of the encoder's final (post-LayerNorm) sequence for every crop, global then local.
    static func features(_ encoder: FlavaImageModel, globals: Tensor, locals: Tensor?) -> Variable {
        let g = firstToken(encoder(Variable(globals)).lastHiddenState)
        guard let locals else { return g }
        return concat([g, firstToken(encoder(Variable(locals), interpolatePositions: true).lastHiddenState)], axis: 0)
    }

    public func microBatch(step: Int, kind: String?, generator: inout SeededGenerator) throws -> MicroBatchLoss {
        if loader == nil { loader = try makeLoader(from: LoaderPosition()) }
        guard let batch = try loader!.next() else { throw DataError("image data ran out") }
        let teacherLogits = withNoGrad { teacherHead(DINOTask.features(teacher, globals: batch.globals, locals: nil)).value }
        let studentLogits = head(DINOTask.features(model.flava.imageModel, globals: batch.globals, locals: batch.locals))
        let tau = Float(dino.teacherTemperature(at: step, of: config.steps))
        let (l, stats) = loss(student: studentLogits, teacher: teacherLogits, views: batch.views, teacherTemperature: tau)
        loss.updateCenter(teacherLogits, communicator: communicator)
        return MicroBatchLoss(loss: l, losses: ["dino": Double(l.value.scalarValue)],
                              // Every teacher row enters as many pairs as any other, so loss − H(P_t) is the mean
                              // KL(P_t ‖ P_s) over the pairs: the part of the loss the student can still remove.
                              values: ["teacher_entropy": stats.teacherEntropy, "teacher_batch_entropy": stats.teacherBatchEntropy,
                                       "student_teacher_kl": Double(l.value.scalarValue) - stats.teacherEntropy,
                                       "max_entropy": stats.maximumEntropy, "teacher_temperature": Double(tau),
                                       "teacher_momentum": dino.teacherMomentum(at: step, of: config.steps)],
                              samples: batch.count)
    }

    /// DINO's cancel_gradients_last_layer: no update of the prototypes while they are frozen.
    public func gradientsReady(step: Int) throws {
        if dino.lastLayerFrozen(at: step, of: config.steps) { head.lastLayerV.grad = nil; head.lastLayerG.grad = nil }
    }

    public func endStep(_ step: Int) throws {
        DINOTeacher.update(teacher: teacherParameters, student: studentInTeacherOrder,
                           momentum: Float(dino.teacherMomentum(at: step, of: config.steps)))
    }

    public func evaluate(step: Int) throws -> [String: Double]? { try evaluation?(teacher) }
    public func score(_ e: [String: Double]) -> Double { e["shape_probe_accuracy"] ?? 0 }

    public func saveModel(to dir: String) throws {
        try FlavaCheckpoint.save(model, to: dir)
        if let v = vocabFile { try FileManager.default.copyItem(atPath: v, toPath: dir + "/vocab.txt") }
        var tensors: [(String, StoredTensor)] = head.stateDict(prefix: "student.head").map { ($0.key, .float($0.value)) }
        tensors += teacher.stateDict(prefix: "teacher.backbone").map { ($0.key, .float($0.value)) }
        tensors += teacherHead.stateDict(prefix: "teacher.head").map { ($0.key, .float($0.value)) }
        tensors.append(("center", .float(loss.center)))
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: dir + "/" + DINOTask.stateFile)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(dino).write(to: URL(fileURLWithPath: dir + "/dino_config.json"), options: .atomic)
    }

    public func loadModel(from dir: String) throws {
        let (m, _) = try FlavaCheckpoint.loadPreTraining(dir)
        guard model.copyParameters(from: m) else {
            throw ConfigError(dir, "was trained with another model (its config.json differs from this run's model)")
        }
        let path = dir + "/" + DINOTask.stateFile
        guard FileManager.default.fileExists(atPath: path) else { throw CheckpointError(dir, "no \(DINOTask.stateFile): not a DINO checkpoint") }
        let f = try openCheckpoint(path)
        try DINOTask.load(head, from: f, prefix: "student.head.", path: path)
        try DINOTask.load(teacher, from: f, prefix: "teacher.backbone.", path: path)
        try DINOTask.load(teacherHead, from: f, prefix: "teacher.head.", path: path)
        let c = try f.floatTensor("center")
        guard c.shape == loss.center.shape else { throw CheckpointError(path, "center has shape \(c.shape), the head has \(loss.center.count) prototypes") }
        loss.center = c.copy()
    }

    public func state() throws -> DINOTaskState { DINOTaskState(position: loader?.position ?? LoaderPosition(), config: config) }

    public func restore(_ state: DINOTaskState, from dir: String) throws {
        try state.config.validate(file: dir + "/trainer_state.json")
        loader?.stop()
        loader = try makeLoader(from: state.position)
    }

    public func stop() { loader?.stop(); loader = nil }
}

extension DINOTask {
    /// The file of a DINO checkpoint beside the FLAVA folder's: the student's head, the teacher and the centre.
    public static let stateFile = "dino.safetensors"

    /// Reads the keys under `prefix` of a DINO state file into `module` (the file's other parts are not its);
    /// a missing or mis-shaped key is an error naming `path`.
    static func load(_ module: Module, from f: TensorSource, prefix: String, path: String) throws {
        let r = try module.load(from: f, keyPrefix: prefix, strict: false, ignoring: { _ in true })
        guard r.missing.isEmpty && r.mismatched.isEmpty else { throw CheckpointError(path, "does not match the DINO model: \(r)") }
    }

    /// Whether `dir` is a DINO checkpoint (it has the DINO state file).
    public static func isCheckpoint(_ dir: String) -> Bool { FileManager.default.fileExists(atPath: dir + "/" + stateFile) }

    /// The teacher's image encoder of the DINO checkpoint `dir` into `encoder` (what DINO releases and evaluates).
    public static func loadTeacherEncoder(_ encoder: FlavaImageModel, fromCheckpoint dir: String) throws {
        let path = dir + "/" + stateFile
        try load(encoder, from: try openCheckpoint(path), prefix: "teacher.backbone.", path: path)
    }
}

/// The held-out check of a DINO encoder on the synthetic world: a linear probe of the first object's shape
/// (the protocol of `flava eval linear-probe` and scripts/eval.sh: held-out scenes 1000–1119 train, 2000–2059
/// validation, 3000–3119 test) on the final [CLS] features.
public enum DINOEvaluation {
    public static func shapeProbe(_ encoder: FlavaImageModel, world: SyntheticWorld, processor: FlavaImageProcessor) -> [String: Double] {
        func split(_ start: Int, _ count: Int) -> ([[Double]], [Int]) {
            let samples = (start..<(start + count)).map { world.sample($0, split: .heldOut) }
            var rows: [[Double]] = []
            for chunk in stride(from: 0, to: samples.count, by: 40) {
                let part = samples[chunk..<min(samples.count, chunk + 40)]
                let px = ShapeKernel.stack(part.map { processor.pixelValues($0.image) })
                let f = withNoGrad { firstToken(encoder(Variable(px)).lastHiddenState).value }
                let d = f.shape[1]
                rows += (0..<f.shape[0]).map { i in (0..<d).map { Double(f[flat: i * d + $0]) } }
            }
            return (rows, samples.map { $0.objects[0].shape })
        }
        let r = LinearProbe.run(train: split(1000, 120), validation: split(2000, 60), test: split(3000, 120),
                                classes: SyntheticWorld.shapes.count)
        return ["shape_probe_accuracy": r.testAccuracy, "shape_probe_chance": 1 / Double(SyntheticWorld.shapes.count)]
    }
}
