// flava finetune / predict: fine-tuning over the multimodal encoder's [CLS_M] with the paper's two-layer head.
// Implemented task: synthetic-vqa (the built-in world's questions about colour, shape, count and position,
// as VQA: answer vocabulary from training answers, soft scores, BCE, VQA accuracy).
import ArgumentParser
import Foundation
import FlavaKit

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a FLAVA checkpoint on a task and report its metrics.",
        discussion: "Tasks: synthetic-vqa, vqa (VQAv2 JSON), snli-ve (JSONL), hateful-memes (JSONL) over the multimodal [CLS_M]; glue-cola, glue-sst2, glue-mrpc, glue-qqp, glue-stsb, glue-mnli, glue-qnli, glue-rte (text encoder [CLS], from GLUE TSV files given by --train and --dev). Saves the fine-tuned model (flava.* + classifier_head.*) and vocab.txt to --output. Under 'mpirun -np N' the ranks share each batch (data-parallel); rank 0 evaluates and writes.")
    @Option(help: "Pretrained model folder (e.g. runs/pretrain/best).") var model: String
    @Option(help: "Task.") var task = "synthetic-vqa"
    @Option(help: "Output folder.") var output = "runs/finetune"
    @Option(help: "Optimizer steps.") var steps = 600
    @Option(help: "Batch size.") var batchSize = 32
    @Option(help: "Peak learning rate.") var learningRate: Float = 5e-4
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(help: "Write a JSON summary here.") var summary: String?
    @Option(help: "GLUE training TSV; for vqa QUESTIONS.json,ANNOTATIONS.json; for snli-ve / hateful-memes the JSONL.") var train: String?
    @Option(help: "GLUE development TSV (scored); for vqa QUESTIONS.json,ANNOTATIONS.json; for snli-ve / hateful-memes the JSONL.") var dev: String?
    @Option(help: "Image folder (VQAv2: COCO images; SNLI-VE: Flickr30K; Hateful Memes: the dataset folder, default beside the JSONL).") var imageRoot: String?
    @Option(help: "Write a resumable checkpoint (OUTPUT/checkpoints/checkpoint-STEP, with metrics.jsonl) every N steps and at the last (default: none).") var checkpointEvery: Int?
    @Option(help: "Continue exactly from a checkpoint folder of this run (same model, task, data and settings).") var resume: String?

    func validate() throws {
        if let c = checkpointEvery, c < 1 { throw ValidationError("--checkpoint-every must be positive") }
        if let r = resume { _ = try TrainingCheckpoint.statePath(in: r) }
        do { try FineTuningSettings.check(steps: steps, batchSize: batchSize, learningRate: learningRate, file: "flags") }
        catch let e as ConfigError {   // "field 'batch_size' = 0: …" → "--batch-size 0: …"
            let flag = e.reason.replacingOccurrences(of: "field '", with: "--").replacingOccurrences(of: "' = ", with: " ")
            throw ValidationError(flag.replacingOccurrences(of: "_", with: "-"))
        }
    }

    /// The job's ranks (under mpirun, every rank trains on its slice of each batch; rank 0 evaluates and writes).
    func world() throws -> Communicator {
        let comm = try DataParallel.world()
        if comm.size > 1 && comm.isRoot {
            print("data-parallel: \(comm.size) ranks sharing each batch of \(batchSize)")
        }
        return comm
    }

    /// Checkpoints go beside the model, in OUTPUT/checkpoints, when asked for (or when resuming).
    var checkpoints: FineTuningCheckpoints? {
        guard checkpointEvery != nil || resume != nil else { return nil }
        return FineTuningCheckpoints(output: output + "/checkpoints", every: checkpointEvery, resume: resume)
    }

    func run() throws {
        if task.hasPrefix("glue-") { return try runGLUE(String(task.dropFirst(5))) }
        if task != "synthetic-vqa" { return try runBenchmark() }
        let flava = try FlavaCheckpoint.loadModel(model)
        let tokenizer = try BertTokenizer(vocabFile: model + "/vocab.txt")
        let vqa = SyntheticVQA(world: SyntheticWorld(seed: seed, imageSize: flava.config.imageConfig.imageSize))
        let index = Dictionary(uniqueKeysWithValues: vqa.answers.enumerated().map { ($1, $0) })
        func examples(_ ex: [(RGBImage, String, Int)]) -> [MultimodalFineTuner.Example] {
            ex.map { MultimodalFineTuner.Example(image: .decoded($0.0), text: $0.1,
                                                 soft: MultimodalTasks.softScores(Array(repeating: vqa.answers[$0.2], count: 3), vocabulary: index, classes: vqa.answers.count)) }
        }
        let tuner = try MultimodalFineTuner(flava: flava, tokenizer: tokenizer, classes: vqa.answers.count, seed: seed)
        tuner.answers = vqa.answers
        let comm = try world()
        let bar = ProgressBar(total: steps, label: "finetune")
        try tuner.train(examples(vqa.examples(0..<4000, split: .train)), steps: steps, batchSize: batchSize, learningRate: learningRate,
                        seed: seed &+ 5, checkpoints: checkpoints, communicator: comm) { bar.update($0, extra: String(format: "loss %.3f", $1)) }
        guard comm.isRoot else { return }   // rank 0 evaluates and writes the model
        func accuracy(_ raw: [(RGBImage, String, Int)]) throws -> (vqa: Double, byType: [String: Double]) {
            let scores = try tuner.predict(examples(raw), sigmoid: true)
            var total = 0.0
            var typeTotal: [String: (Double, Int)] = [:]
            for (e, row) in zip(raw, scores) {
                let pred = vqa.answers[row.indices.max { row[$0] < row[$1] }!]
                // One "annotator" per question here: VQA accuracy with the answer given three times is exact match.
                let score = Metrics.vqaAccuracy(prediction: pred, answers: Array(repeating: vqa.answers[e.2], count: 3))
                total += score
                let type = e.1.hasPrefix("what color") ? "color" : e.1.hasPrefix("what shape") ? "shape" : e.1.hasPrefix("how many") ? "count" : "position"
                typeTotal[type, default: (0, 0)].0 += score; typeTotal[type, default: (0, 0)].1 += 1
            }
            return (total / Double(raw.count), typeTotal.mapValues { $0.0 / Double($0.1) })
        }
        let heldOutRaw = vqa.examples(0..<150, split: .heldOut)
        let heldOut = try accuracy(heldOutRaw)
        let seen = try accuracy(vqa.examples(8000..<8150, split: .train))
        var counts: [String: [Int: Int]] = [:]
        for e in heldOutRaw { counts[String(e.1.prefix(10)), default: [:]][e.2, default: 0] += 1 }
        let majority = Double(counts.values.map { $0.values.max()! }.reduce(0, +)) / Double(heldOutRaw.count)
        var t = TextTable(["split", "VQA accuracy", "color", "shape", "count", "position"])
        for (name, r) in [("held-out scenes", heldOut), ("unseen training-split scenes", seen)] {
            t.add([name, String(format: "%.3f", r.vqa)] + ["color", "shape", "count", "position"].map { String(format: "%.3f", r.byType[$0] ?? .nan) })
        }
        print(t.render())
        print(String(format: "majority answer per question type (chance baseline): %.3f; %d answers", majority, vqa.answers.count))
        try tuner.save(to: output)
        try writeSummary(["vqa_accuracy_held_out": heldOut.vqa, "vqa_accuracy_train_split": seen.vqa, "majority_baseline": majority], to: summary)
    }

    /// VQAv2, SNLI-VE and Hateful Memes from their files.
    func runBenchmark() throws {
        guard ["vqa", "snli-ve", "hateful-memes"].contains(task) else {
            throw ValidationError("unknown task '\(task)' (available: synthetic-vqa, vqa, snli-ve, hateful-memes, glue-cola, glue-sst2, glue-mrpc, glue-qqp, glue-stsb, glue-mnli, glue-qnli, glue-rte)")
        }
        guard let train, let dev else { throw ValidationError("--train and --dev are needed for \(task)") }
        func files(_ spec: String) -> [String] { spec.split(separator: ",").map(String.init) }
        var trainSet: [MultimodalExample], devSet: [MultimodalExample]
        switch task {
        case "vqa":
            guard let root = imageRoot, files(train).count == 2, files(dev).count == 2 else {
                throw ValidationError("vqa needs --train QUESTIONS.json,ANNOTATIONS.json, the same for --dev, and --image-root")
            }
            trainSet = try MultimodalTasks.vqa(questions: files(train)[0], annotations: files(train)[1], imageRoot: root)
            devSet = try MultimodalTasks.vqa(questions: files(dev)[0], annotations: files(dev)[1], imageRoot: root)
        case "snli-ve":
            guard let root = imageRoot else { throw ValidationError("snli-ve needs --image-root (Flickr30K images)") }
            trainSet = try MultimodalTasks.snliVE(train, imageRoot: root); devSet = try MultimodalTasks.snliVE(dev, imageRoot: root)
        default:
            trainSet = try MultimodalTasks.hatefulMemes(train, imageRoot: imageRoot); devSet = try MultimodalTasks.hatefulMemes(dev, imageRoot: imageRoot)
        }
        let flava = try FlavaCheckpoint.loadModel(model)
        let tokenizer = try BertTokenizer(vocabFile: model + "/vocab.txt")
        let answers = task == "vqa" ? MultimodalTasks.answerVocabulary(trainSet) : (task == "snli-ve" ? MultimodalTasks.snliVELabels : ["not hateful", "hateful"])
        let index = Dictionary(uniqueKeysWithValues: answers.enumerated().map { ($1, $0) })
        func convert(_ e: [MultimodalExample]) -> [MultimodalFineTuner.Example] {
            e.map { x in task == "vqa" ? .init(image: .file(x.image), text: x.text, soft: MultimodalTasks.softScores(x.answers, vocabulary: index, classes: answers.count))
                                       : .init(image: .file(x.image), text: x.text, label: x.label) }
        }
        let tuner = try MultimodalFineTuner(flava: flava, tokenizer: tokenizer, classes: answers.count, maxTextLength: 40, seed: seed)
        tuner.answers = answers
        let comm = try world()
        let bar = ProgressBar(total: steps, label: "finetune")
        try tuner.train(convert(trainSet.filter { task == "vqa" || $0.label != nil }), steps: steps, batchSize: batchSize,
                        learningRate: learningRate, seed: seed &+ 5, checkpoints: checkpoints, communicator: comm) {
            bar.update($0, extra: String(format: "loss %.3f", $1))
        }
        guard comm.isRoot else { return }
        let scores = try tuner.predict(convert(devSet), sigmoid: task == "vqa")
        var m: [String: Double] = [:]
        if task == "vqa" {
            m["vqa_accuracy"] = zip(devSet, scores).map { e, row in Metrics.vqaAccuracy(prediction: answers[row.indices.max { row[$0] < row[$1] }!], answers: e.answers) }
                .reduce(0, +) / Double(devSet.count)
        } else {
            let gold = devSet.map { $0.label ?? 0 }, pred = scores.map { row in row.indices.max { row[$0] < row[$1] }! }
            m["accuracy"] = Metrics.accuracy(gold, pred)
            if task == "hateful-memes" && Set(gold).count == 2 { m["roc_auc"] = Metrics.rocAUC(gold, scores.map { $0[1] }) }
        }
        var t = TextTable(["task", "metric", "value"])
        for (k, v) in m.sorted(by: { $0.key < $1.key }) { t.add([task, k, String(format: "%.4f", v)]) }
        print(t.render())
        try tuner.save(to: output)
        try writeSummary(m, to: summary)
    }
}


extension Finetune {
    func runGLUE(_ name: String) throws {
        guard let glue = GLUETask.all[name] else { throw ValidationError("unknown GLUE task '\(name)'") }
        guard let train, let dev else { throw ValidationError("GLUE tasks need --train and --dev TSV files") }
        let trainSet = try glue.read(train), devSet = try glue.read(dev)
        guard trainSet.allSatisfy({ $0.label != nil || $0.score != nil }) else { throw DataError("\(train): unlabelled examples") }
        guard devSet.allSatisfy({ $0.label != nil || $0.score != nil }) else { throw DataError("\(dev): unlabelled examples cannot be scored") }
        let flava = try FlavaCheckpoint.loadModel(model)
        let tuner = try GLUEFineTuner(text: flava.textModel, tokenizer: try BertTokenizer(vocabFile: model + "/vocab.txt"), task: glue, seed: seed)
        tuner.flavaConfig = flava.config
        let comm = try world()
        let bar = ProgressBar(total: steps, label: "finetune")
        try tuner.train(trainSet, steps: steps, batchSize: batchSize, learningRate: learningRate, seed: seed &+ 9, checkpoints: checkpoints,
                        communicator: comm) {
            bar.update($0, extra: String(format: "loss %.3f", $1))
        }
        guard comm.isRoot else { return }
        let preds = tuner.predict(devSet)
        let m = glue.metrics(predictions: preds, gold: devSet)
        var t = TextTable(["task", "metric", "value"])
        for (k, v) in m.sorted(by: { $0.key < $1.key }) { t.add([name.uppercased(), k, String(format: "%.4f", v)]) }
        print(t.render())
        try tuner.save(to: output)
        try writeSummary(m, to: summary)
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Answer a question about an image with a model from flava finetune (synthetic-vqa).")
    @Option(help: "Fine-tuned model folder.") var model: String
    @Option(help: "Image.") var image: String
    @Option(help: "Question.") var question: String
    @Option(help: "Answers to show.") var top = 3

    func run() throws {
        let config = try FlavaConfig.load(model + "/config.json")
        guard let d = FileManager.default.contents(atPath: model + "/answers.json"), let answers = try? JSONDecoder().decode([String].self, from: d) else {
            throw ConfigError(model + "/answers.json", "missing or unreadable: not a fine-tuned model folder")
        }
        var ini = Initializer(mode: .zeros)
        let clf = FlavaForMultimodalClassification(flava: FlavaModel(config, init: &ini), classes: answers.count, init: &ini)
        try clf.load(from: try SafeTensorsFile(path: model + "/model.safetensors"))
        let embedder = try FlavaEmbedder(model: clf.flava, tokenizer: BertTokenizer(vocabFile: model + "/vocab.txt"))
        let px = embedder.pixelValues([try RGBImage.load(image)])
        let text = try embedder.tokenize([question], maxLength: 32)
        let logits = withNoGrad { clf(pixels: px, ids: text.ids, mask: text.mask).value }
        let probs = (0..<answers.count).map { 1 / (1 + exp(-Double(logits[flat: $0]))) }
        var t = TextTable(["answer", "score"])
        for i in probs.indices.sorted(by: { probs[$0] > probs[$1] }).prefix(top) { t.add([answers[i], String(format: "%.3f", probs[i])]) }
        print(t.render())
    }
}
