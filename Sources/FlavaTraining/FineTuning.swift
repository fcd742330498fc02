// Fine-tuning FLAVA for multimodal classification over the multimodal encoder's [CLS_M] state with the paper's
// two-layer head (hidden 1536): VQA-style answer classification with soft scores and binary cross-entropy
// (VQAv2's recipe), or single-label classification with cross-entropy (SNLI-VE, Hateful Memes).
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN
import FlavaModel
import FlavaData
import FlavaEval
import FlavaDistributed

/// The classification head: Linear(H, 1536) → GELU → LayerNorm → Linear(1536, classes).
public final class FlavaClassificationHead: Module {
    @Child("dense") public var dense: Linear
    @Child("layer_norm") public var norm: LayerNorm
    @Child("classifier") public var classifier: Linear

    public init(hidden: Int, classes: Int, headHidden: Int = 1536, init ini: inout Initializer) {
        super.init()
        dense = Linear(hidden, headHidden, init: &ini)
        norm = LayerNorm(headHidden, eps: 1e-12)
        classifier = Linear(headHidden, classes, init: &ini)
    }

    public func callAsFunction(_ x: Variable) -> Variable { classifier(norm(gelu(dense(x)))) }
}

/// A FLAVA with a multimodal classification head.
public final class FlavaForMultimodalClassification: Module {
    @Child("flava") public var flava: FlavaModel
    @Child("classifier_head") public var head: FlavaClassificationHead

    public init(flava: FlavaModel, classes: Int, init ini: inout Initializer) {
        super.init()
        self.flava = flava
        head = FlavaClassificationHead(hidden: flava.config.multimodalConfig.hiddenSize, classes: classes, init: &ini)
    }

    /// logits [B, classes] from pixels [B, 3, S, S] and text ids/mask [B, L].
    public func callAsFunction(pixels: Tensor, ids: IntTensor, mask: IntTensor) -> Variable {
        let out = flava(pixelValues: Variable(pixels), inputIds: ids, attentionMask: mask)
        return head(firstToken(out.multimodalEmbeddings!))
    }
}

/// The synthetic world's question answering as a VQA task: answer vocabulary from the training answers,
/// soft scores (here one annotator: score 1 for the answer), BCE, and VQA accuracy.
public struct SyntheticVQA {
    public let answers: [String]
    public let world: SyntheticWorld

    public init(world: SyntheticWorld, trainScenes: Int = 2000) {
        self.world = world
        var set = Set<String>()
        for i in 0..<trainScenes { for qa in world.sample(i).questions { set.insert(qa.answer) } }
        answers = set.sorted()
    }

    /// (image, question, answer index) triples of a split.
    public func examples(_ range: Range<Int>, split: SyntheticWorld.Split) -> [(RGBImage, String, Int)] {
        range.flatMap { i -> [(RGBImage, String, Int)] in
            let s = world.sample(i, split: split)
            return s.questions.compactMap { qa in answers.firstIndex(of: qa.answer).map { (s.image, qa.question, $0) } }
        }
    }
}

/// A FLAVA text encoder with a classification (or regression, classes = 1) head over its [CLS] state.
public final class FlavaForTextClassification: Module {
    @Child("flava.text_model") public var text: FlavaTextModel
    @Child("classifier_head") public var head: FlavaClassificationHead

    public init(text: FlavaTextModel, classes: Int, init ini: inout Initializer) {
        super.init()
        self.text = text
        head = FlavaClassificationHead(hidden: text.config.hiddenSize, classes: classes, init: &ini)
    }

    public func callAsFunction(ids: IntTensor, mask: IntTensor, types: IntTensor) -> Variable {
        head(firstToken(text(ids, attentionMask: mask, tokenTypeIds: types).lastHiddenState))
    }
}

/// Fine-tunes a FlavaForMultimodalClassification on (image, text, target) examples: soft-score targets with
/// BCE (VQA) or single labels with cross-entropy (SNLI-VE, Hateful Memes), AdamW with warmup + cosine.
public final class MultimodalFineTuner {
    public struct Example { public var image: ImageRef; public var text: String; public var soft: [Float]?; public var label: Int?
        public init(image: ImageRef, text: String, soft: [Float]? = nil, label: Int? = nil) { self.image = image; self.text = text; self.soft = soft; self.label = label }
    }
    public let model: FlavaForMultimodalClassification
    public let embedder: FlavaEmbedder
    public let classes: Int
    public let maxTextLength: Int
    public let tokenizer: BertTokenizer

    public init(flava: FlavaModel, tokenizer: BertTokenizer, classes: Int, maxTextLength: Int = 32, seed: UInt64 = 0) throws {
        self.tokenizer = tokenizer
        var ini = Initializer(seed: seed)
        model = FlavaForMultimodalClassification(flava: flava, classes: classes, init: &ini)
        embedder = try FlavaEmbedder(model: flava, tokenizer: tokenizer)
        self.classes = classes
        self.maxTextLength = min(maxTextLength, flava.config.textConfig.maxPositionEmbeddings)
    }

    func logits(_ ex: [Example]) throws -> Variable {
        let px = embedder.pixelValues(try ex.map { try $0.image.load() })
        let t = try embedder.tokenize(ex.map(\.text), maxLength: maxTextLength)
        return model(pixels: px, ids: t.ids, mask: t.mask)
    }

    /// The answers (or labels) the head's outputs stand for, written as answers.json beside the model.
    public var answers: [String]?

    /// Trains for `steps` steps (0: none) of `batchSize` examples drawn with replacement; `progress(step, loss)`.
    /// With `checkpoints`, the run writes resumable checkpoints (and metrics.jsonl) into its folder.
    /// Data-parallel (`communicator` of several ranks): each rank trains on its slice of every batch; rank 0 writes
    /// the checkpoints and reports progress.
    public func train(_ examples: [Example], steps: Int, batchSize: Int, learningRate: Float, seed: UInt64,
                      checkpoints: FineTuningCheckpoints? = nil, communicator: Communicator = LocalCommunicator.shared,
                      progress: @escaping (Int, Float) -> Void) throws {
        guard !examples.isEmpty else { throw DataError("no training examples") }
        try FineTuningSettings.check(steps: steps, batchSize: batchSize, learningRate: learningRate)
        let task = try FineTuningTask(model, examples: examples.count, batchSize: batchSize, communicator: communicator) { indices in
            let ex = indices.map { examples[$0] }
            let out = try self.logits(ex)
            if ex[0].soft != nil {
                let targets = Tensor(shape: [ex.count, self.classes], ex.flatMap { $0.soft! })
                return binaryCrossEntropyWithLogits(out, targets: targets) * Float(self.classes)   // summed over answers, as VQA
            }
            return crossEntropy(out, labels: ex.map { $0.label! })
        } save: { dir in try self.write(into: dir) }
        try FineTuningSettings.run(task, steps: steps, learningRate: learningRate, seed: seed, checkpoints: checkpoints, progress: progress)
    }

    /// Writes the fine-tuned model folder atomically: model.safetensors (flava.* and classifier_head.*),
    /// config.json, vocab.txt and answers.json (other files there, such as checkpoints/, are kept).
    public func save(to dir: String) throws {
        try AtomicFolder.write(to: dir, keepingOtherFiles: true) { try write(into: $0) }
    }

    func write(into dir: String) throws {
        try FineTuningSettings.writeModel(model, config: model.flava.config, tokenizer: tokenizer, answers: answers, to: dir)
    }

    /// Class probabilities (softmax) or answer scores (sigmoid) for each example.
    public func predict(_ examples: [Example], sigmoid: Bool) throws -> [[Double]] {
        var out: [[Double]] = []
        for start in stride(from: 0, to: examples.count, by: 32) {
            let chunk = Array(examples[start..<min(examples.count, start + 32)])
            let l = try withNoGrad { try logits(chunk).value }
            for i in 0..<chunk.count {
                let row = (0..<classes).map { Double(l[flat: i * classes + $0]) }
                if sigmoid { out.append(row.map { 1 / (1 + exp(-$0)) }) } else {
                    let m = row.max()!, e = row.map { exp($0 - m) }, s = e.reduce(0, +)
                    out.append(e.map { $0 / s })
                }
            }
        }
        return out
    }
}

/// Fine-tunes a FlavaForTextClassification on a GLUE task (classification with cross-entropy, STS-B regression
/// with MSE), AdamW with warmup + cosine, and predicts on examples: the text side of the paper's evaluation.
public final class GLUEFineTuner {
    public let task: GLUETask
    public let model: FlavaForTextClassification
    public let tokenizer: BertTokenizer
    public let maxLength: Int

    /// A fresh head (seeded by `seed`) over `text`; sequences cut to `maxLength` (at most the model's positions).
    public init(text: FlavaTextModel, tokenizer: BertTokenizer, task: GLUETask, maxLength: Int = 128, seed: UInt64 = 0) throws {
        try tokenizer.checkFits(vocabularySize: text.config.vocabSize)
        var ini = Initializer(seed: seed)
        model = FlavaForTextClassification(text: text, classes: task.isRegression ? 1 : task.labels.count, init: &ini)
        self.task = task
        self.tokenizer = tokenizer
        self.maxLength = min(maxLength, text.config.maxPositionEmbeddings)
    }

    /// ids, attention mask and token types [N, L] of examples (pairs as segment A / B), padded to the longest.
    func encode(_ ex: [GLUEExample]) -> (IntTensor, IntTensor, IntTensor) {
        let encs = ex.map { tokenizer.encode($0.textA, pair: $0.textB, maxLength: maxLength) }
        let l = encs.map(\.ids.count).max() ?? 2
        func pad(_ a: [Int], _ v: Int) -> [Int] { a + Array(repeating: v, count: l - a.count) }
        return (IntTensor(shape: [ex.count, l], encs.flatMap { pad($0.ids, tokenizer.padId) }),
                IntTensor(shape: [ex.count, l], encs.flatMap { pad($0.attentionMask, 0) }),
                IntTensor(shape: [ex.count, l], encs.flatMap { pad($0.tokenTypeIds, 0) }))
    }

    /// Trains for `steps` steps of `batchSize` labelled examples drawn with replacement; `progress(step, loss)`.
    /// With `checkpoints`, the run writes resumable checkpoints (and metrics.jsonl) into its folder.
    /// Data-parallel (`communicator` of several ranks): each rank trains on its slice of every batch.
    public func train(_ examples: [GLUEExample], steps: Int, batchSize: Int, learningRate: Float, seed: UInt64,
                      checkpoints: FineTuningCheckpoints? = nil, communicator: Communicator = LocalCommunicator.shared,
                      progress: @escaping (Int, Float) -> Void) throws {
        guard !examples.isEmpty else { throw DataError("no training examples") }
        guard examples.allSatisfy({ $0.label != nil || $0.score != nil }) else { throw DataError("unlabelled training examples") }
        try FineTuningSettings.check(steps: steps, batchSize: batchSize, learningRate: learningRate)
        let glue = task
        let fine = try FineTuningTask(model, examples: examples.count, batchSize: min(batchSize, examples.count),
                                      communicator: communicator) { indices in
            let ex = indices.map { examples[$0] }
            let (ids, mask, types) = self.encode(ex)
            let out = self.model(ids: ids, mask: mask, types: types)
            return glue.isRegression ? mseLoss(out, Tensor(shape: [ex.count, 1], ex.map { Float($0.score!) }))
                                     : crossEntropy(out, labels: ex.map { $0.label! })
        } save: { dir in try self.write(into: dir) }
        try FineTuningSettings.run(fine, steps: steps, learningRate: learningRate, seed: seed, checkpoints: checkpoints, progress: progress)
    }

    /// The FLAVA config written beside the weights (set it to the config the text encoder came from; by default
    /// FLAVA's with this text encoder's section).
    public lazy var flavaConfig: FlavaConfig = { var c = FlavaConfig(); c.textConfig = model.text.config; return c }()

    /// Writes the fine-tuned model folder atomically: model.safetensors (flava.text_model.* and classifier_head.*),
    /// config.json (`flavaConfig`) and vocab.txt (other files there, such as checkpoints/, are kept).
    public func save(to dir: String) throws {
        try AtomicFolder.write(to: dir, keepingOtherFiles: true) { try write(into: $0) }
    }

    func write(into dir: String) throws {
        try FineTuningSettings.writeModel(model, config: flavaConfig, tokenizer: tokenizer, answers: nil, to: dir)
    }

    /// The predicted class (or, for regression, the score) of each example.
    public func predict(_ examples: [GLUEExample]) -> [Double] {
        var preds: [Double] = []
        for start in stride(from: 0, to: examples.count, by: 64) {
            let chunk = Array(examples[start..<min(examples.count, start + 64)])
            let (ids, mask, types) = encode(chunk)
            let out = withNoGrad { model(ids: ids, mask: mask, types: types).value }
            let k = out.shape[1]
            for i in 0..<chunk.count {
                if task.isRegression { preds.append(Double(out[flat: i])) } else {
                    let row = (0..<k).map { out[flat: i * k + $0] }
                    preds.append(Double(row.indices.max { row[$0] < row[$1] }!))
                }
            }
        }
        return preds
    }
}

/// The checks every fine-tuning run's settings get before any work.
public enum FineTuningSettings {
    /// `steps` ≥ 0, `batchSize` ≥ 1, `learningRate` positive and finite; the error names the setting.
    public static func check(steps: Int, batchSize: Int, learningRate: Float, file: String = "fine-tuning settings") throws {
        let k = ConfigChecker(file: file)
        try k.int("steps", steps, in: 0...100_000_000)
        try k.int("batch_size", batchSize, in: 1...65_536)
        try k.number("learning_rate", Double(learningRate), in: 0...10, aboveLower: true)
    }

    /// The engine settings both tuners share: AdamW (weight decay 0.01) over every parameter, warmup over a tenth
    /// of the steps then cosine, clipping at 1.
    public static func settings(steps: Int, learningRate: Float, seed: UInt64) -> TrainingSettings {
        TrainingSettings(steps: steps, learningRate: learningRate, weightDecay: 0.01, warmupSteps: max(1, steps / 10), maxGradNorm: 1, seed: seed)
    }

    /// Runs a fine-tuning task on the engine: checkpoints, resume and metrics.jsonl as `checkpoints` says,
    /// `progress(step, loss)` after each step.
    static func run(_ task: FineTuningTask, steps: Int, learningRate: Float, seed: UInt64, checkpoints: FineTuningCheckpoints?,
                    progress: @escaping (Int, Float) -> Void) throws {
        var s = settings(steps: steps, learningRate: learningRate, seed: seed)
        var callbacks: [TrainingCallback] = [StepCallback { e, _ in progress(e.step, Float(e.losses["loss"] ?? .nan)) }]
        if let c = checkpoints {
            s.output = c.output
            s.checkpointEvery = c.every ?? max(1, steps)
            try FileManager.default.createDirectory(atPath: c.output, withIntermediateDirectories: true)
            if task.communicator.isRoot {
                callbacks.append(try MetricsLogCallback(path: c.output + "/metrics.jsonl", truncate: c.resume == nil))
            }
        }
        let engine = try TrainingEngine(task: task, settings: s, callbacks: task.communicator.isRoot ? callbacks : [],
                                        communicator: task.communicator)
        if let r = checkpoints?.resume { try engine.resume(from: r) }
        _ = try engine.run()
    }

    /// The files of a fine-tuned model folder, written into `dir`: model.safetensors, config.json, vocab.txt and
    /// (multimodal tasks) answers.json.
    public static func writeModel(_ module: Module, config: FlavaConfig, tokenizer: BertTokenizer, answers: [String]?, to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try module.saveSafeTensors(to: dir + "/model.safetensors")
        try config.save(dir + "/config.json")
        if let answers { try JSONEncoder().encode(answers).write(to: URL(fileURLWithPath: dir + "/answers.json"), options: .atomic) }
        try Data((tokenizer.idToToken.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/vocab.txt"), options: .atomic)
    }
}

/// Where a fine-tuning run writes checkpoints, and the checkpoint it continues from.
public struct FineTuningCheckpoints: Sendable {
    /// Folder of checkpoint-STEP folders and metrics.jsonl.
    public var output: String
    /// Write a checkpoint every this many steps and at the last (nil: only at the last).
    public var every: Int?
    /// A checkpoint of this same run to continue from exactly.
    public var resume: String?
    public init(output: String, every: Int? = nil, resume: String? = nil) { self.output = output; self.every = every; self.resume = resume }
}

/// A fine-tuning run as a task of the training engine: each step draws a batch of example indices with the
/// engine's generator (the same on every rank) and takes the loss of this rank's slice of it; the model folder
/// is the checkpoint's model. Data-parallel, a rank's loss is its slice's mean times its share of the batch, and
/// the ranks' losses are summed: one process's mean over the whole batch.
final class FineTuningTask: TrainingTask {
    typealias State = NoTaskState
    let module: Module
    let examples: Int
    let batchSize: Int
    let communicator: Communicator
    let sliceLoss: ([Int]) throws -> Variable
    let save: (String) throws -> Void

    /// `sliceLoss(indices)`: the mean loss over those examples.
    init(_ module: Module, examples: Int, batchSize: Int, communicator: Communicator,
         sliceLoss: @escaping ([Int]) throws -> Variable, save: @escaping (String) throws -> Void) throws {
        guard batchSize >= communicator.size else {
            throw ConfigError("fine-tuning settings", "batch_size = \(batchSize): fewer examples per batch than the \(communicator.size) ranks")
        }
        self.module = module; self.examples = examples; self.batchSize = batchSize; self.communicator = communicator
        self.sliceLoss = sliceLoss; self.save = save
    }

    var crossRankLoss: CrossRankLoss { .sum }
    var trainableParameters: [(key: String, variable: Variable)] { module.namedParameters() }
    func setTraining(_ on: Bool) { module.train(on) }
    func microBatch(step: Int, kind: String?, generator: inout SeededGenerator) throws -> MicroBatchLoss {
        let batch = (0..<batchSize).map { _ in Int(generator.next() % UInt64(examples)) }
        let (r, n) = (communicator.rank, communicator.size)
        let mine = Array(batch[(r * batchSize / n)..<((r + 1) * batchSize / n)])
        var loss = try sliceLoss(mine)
        if n > 1 { loss = loss * Float(Double(mine.count) / Double(batchSize)) }
        return MicroBatchLoss(loss: loss, losses: ["loss": Double(loss.value.scalarValue)], samples: mine.count)
    }
    func saveModel(to dir: String) throws { try save(dir) }
    func loadModel(from dir: String) throws { try module.load(from: try SafeTensorsFile(path: dir + "/model.safetensors")) }
    func state() throws -> NoTaskState { NoTaskState() }
    func restore(_ state: NoTaskState, from dir: String) throws {}
}
