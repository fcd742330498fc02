// flava pretrain: joint FLAVA pretraining; with no options, a small FLAVA on the built-in synthetic world
// (first a vocabulary and a codebook), then held-out zero-shot results against chance.
import ArgumentParser
import Foundation
import FlavaKit

struct Pretrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pretrain FLAVA (contrastive, ITM, MMM, MIM, MLM), or its image encoder alone with DINO; by default a small model on the synthetic world.",
        discussion: """
        --objectives dino runs the DINO stage on the images source (--images): a student (the image encoder + a \
        DINO head) and its EMA teacher on multi-crop views; DINO's recipe scaled to the run (300 steps, learning \
        rate 1e-3, weight decay 0.04, clip 3, warm-up 10 %; the rest in the config's "dino" field); DINO's colour \
        augmentations, toned down on the synthetic world (whose scenes are made of colours). metrics.jsonl \
        logs the teacher's entropy against log K (collapse shows as either end); on the synthetic world the \
        teacher's linear probe of shapes is measured before training and at each evaluation. The checkpoint is a \
        whole FLAVA folder with dino.safetensors beside it; --init-image takes it (the teacher's encoder).

        Each step draws pairs / images / text by --probabilities and takes a full batch. Checkpoints (Hugging Face \
        layout + optimizer and trainer state) go to OUTPUT/checkpoint-STEP, written atomically; --resume DIR \
        continues a run exactly. Metrics go to OUTPUT/metrics.jsonl.

        Data-parallel: 'mpirun -np N flava pretrain …' uses every rank with no further flag. --batch-size is then \
        the global batch, split evenly among the ranks; the losses and weights are those of one process on the \
        whole batch. Rank 0 writes the run folder (keep it on a filesystem every rank sees to resume); a \
        checkpoint resumes on any number of ranks. See the README's "Scale-out" section.
        """)

    @Option(help: "Run folder.") var output = "runs/pretrain"
    @Option(help: "A JSON file of PretrainingConfig fields (steps, batchSize, learningRate, probabilities, objectives, dino, …), laid over the recipe (joint pretraining's, --recipe's, or DINO's with --objectives dino): the fields it gives replace the recipe's, the rest stay. Flags override it.") var config: String?
    @Option(help: "Optimizer steps (default 1200).") var steps: Int?
    @Option(help: "Batch size (default 32).") var batchSize: Int?
    @Option(help: "Micro-batches accumulated per step (default 1).") var accumulation: Int?
    @Option(help: "Peak learning rate (default 1e-3).") var learningRate: Float?
    @Option(help: "Warmup steps, then cosine decay (default 100).") var warmup: Int?
    @Option(help: "Comma-separated objectives (contrastive,itm,mmm_image,mmm_text,mim,mlm) or all; or dino (alone).") var objectives: String?
    @Option(help: "Probabilities of pairs,images,text (default 0.70,0.15,0.15).") var probabilities: String?
    @Option(help: "Start from a unimodal stage's recipe instead of joint pretraining's: text-stage (MLM on text alone, RoBERTa's settings scaled down: 40-token texts, learning rate 2e-3, decay 0.01) or dino (as --objectives dino). Flags override it.")
    var recipe: String?
    @Option(help: "Image-text pairs source spec (default: the synthetic world).") var pairs = "synthetic:pairs"
    @Option(help: "Images-alone source spec.") var images = "synthetic:images"
    @Option(help: "Text-alone source spec.") var text = "synthetic:text"
    @Option(help: "Held-out pairs for retrieval evaluation (default: the synthetic world's held-out split when training on it).") var evalPairs: String?
    @Option(help: "Initialize the text encoder from this checkpoint (e.g. an MLM-only run).") var initText: String?
    @Option(help: "Initialize the image encoder from this checkpoint (a MIM-only run, or a DINO run: its teacher).") var initImage: String?
    @Option(help: "An existing codebook folder (default: train one first).") var codebook: String?
    @Option(help: "Codebook training steps when none is given.") var codebookSteps = 100
    @Option(help: "A vocab.txt (default: --from's or --resume's, else a WordPiece vocabulary trained on the run's own text).") var vocab: String?
    @Option(help: "Evaluate every N steps (default 200).") var evalEvery: Int?
    @Option(help: "Checkpoint every N steps (default 400).") var checkpointEvery: Int?
    @Option(help: "Continue from this checkpoint folder.") var resume: String?
    @Option(help: "Seed (default 0).") var seed: UInt64?
    @Option(help: "Write a JSON summary here.") var summary: String?
    @Flag(help: "Recompute each encoder layer's activations in backward: less memory for larger batches, about one more forward pass of time.")
    var gradCheckpointing = false
    @Option(help: "Model size: small (default) or tiny (for smoke tests).") var size = "small"
    @Option(help: "Train a fresh model of this config.json (any FlavaConfig, e.g. the paper's full size) instead of a preset.") var modelConfig: String?
    @Option(help: "Continue pretraining this checkpoint folder (its config, weights, vocab.txt and codebook when present).") var from: String?
    @Option(help: "Size of the WordPiece vocabulary trained when none is given (default 400 on the synthetic world, 8000 otherwise).") var vocabSize: Int?
    @Option(help: "Loss weights of the model config, e.g. mim=0.5,itm=2 (names: mim, mlm, global_contrastive, itm, mmm_image, mmm_text).") var lossWeights: String?

    @Flag(help: "Data-parallel runs: shard the optimizer's state across the ranks (ZeRO stage 1; same results, less memory per rank).")
    var shardOptimizer = false

    func run() throws {
        let comm = try DataParallel.world()
        var o = PretrainingRunOptions()
        o.shardOptimizer = shardOptimizer
        o.output = output
        // The recipe (--recipe, or DINO's own for --objectives dino), then the --config file's fields over it, then flags.
        if let r = recipe, !["text-stage", "dino"].contains(r) { throw ValidationError("--recipe must be text-stage or dino, not '\(r)'") }
        let base = try recipe ?? (objectives.map { try PretrainingObjectives($0).dino } == true ? "dino" : nil)
        let synthetic = PretrainingRun.isSynthetic(images)
        if let path = config {
            o.settings = try PretrainingConfig.load(path, recipe: base, steps: steps, syntheticImages: synthetic); o.settingsOrigin = path
        } else {
            o.settings = try PretrainingConfig.recipe(base, steps: steps, syntheticImages: synthetic)
        }
        if let p = probabilities {
            let probs = p.split(separator: ",").compactMap { Double($0) }
            guard probs.count == 3, probs.allSatisfy({ $0 >= 0 }), probs.reduce(0, +) > 0 else {
                throw ValidationError("--probabilities needs three non-negative numbers (pairs,images,text)")
            }
            o.settings.probabilities = probs
        }
        if let v = steps { o.settings.steps = v }
        if let v = batchSize { o.settings.batchSize = v }
        if let v = accumulation { o.settings.accumulation = v }
        if let v = learningRate { o.settings.learningRate = v }
        if let v = warmup { o.settings.warmupSteps = v }
        if let v = objectives { o.settings.objectives = try PretrainingObjectives(v) }
        if let v = seed { o.settings.seed = v }
        if let v = evalEvery { o.settings.evalEvery = v }
        if let v = checkpointEvery { o.settings.checkpointEvery = v }
        if gradCheckpointing { o.settings.gradientCheckpointing = true }
        if config == nil && [steps, batchSize, accumulation, warmup, evalEvery, checkpointEvery].contains(where: { $0 != nil }) {
            o.settingsOrigin = "flags"
        }
        switch (modelConfig, from) {
        case (nil, nil): o.model = .preset(size)
        case (let path?, nil): o.model = .config(path)
        case (nil, let dir?): o.model = .from(dir)
        default: throw ValidationError("give --model-config or --from, not both")
        }
        o.pairs = pairs; o.images = images; o.text = text; o.evalPairs = evalPairs
        o.initText = initText; o.initImage = initImage; o.codebook = codebook; o.codebookSteps = codebookSteps
        o.vocab = vocab; o.vocabularySize = vocabSize; o.resume = resume
        for pair in (lossWeights ?? "").split(separator: ",") where !pair.isEmpty {
            let kv = pair.split(separator: "=")
            guard kv.count == 2, let w = Double(kv[1]) else { throw ValidationError("--loss-weights: '\(pair)' is not name=weight") }
            o.lossWeights[String(kv[0])] = w
        }

        var codebookBar: ProgressBar? = nil, bar: ProgressBar? = nil
        if comm.size > 1 && comm.isRoot {
            print("data-parallel: \(comm.size) ranks, \(o.settings.batchSize / comm.size) samples each per batch of \(o.settings.batchSize)" +
                  (shardOptimizer ? ", optimizer state sharded" : ""))
        }
        let result = try PretrainingRun(o, communicator: comm).run { event in
            guard comm.isRoot else { return }
            switch event {
            case .message(let m): print(m)
            case .codebookStep(let s, let total):
                if codebookBar == nil { codebookBar = ProgressBar(total: total, label: "codebook") }
                codebookBar!.update(s)
            case .step(let entry, let total):
                if bar == nil { bar = ProgressBar(total: total, label: "pretrain") }
                let losses = entry.losses.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.3f", $0.value))" }.joined(separator: " ")
                bar!.update(entry.step, extra: losses)
            }
        }

        guard comm.isRoot else { return }
        // Report: the best checkpoint's held-out results (the checkpoint is chosen by them), against chance on
        // the evaluation set used.
        let e = result.evaluation
        var t = TextTable(["held-out metric", "value", "chance"])
        for k in ["image_to_text_R@1", "image_to_text_R@5", "text_to_image_R@1", "text_to_image_R@5", "zero_shot_accuracy"] {
            guard let v = e[k] else { continue }
            t.add([k, String(format: "%.3f", v), result.chance[k].map { String(format: "%.3f", $0) } ?? "–"])
        }
        if let v = e["shape_probe_accuracy"] {
            t.add(["shape linear probe (teacher), test accuracy", String(format: "%.3f", v), result.chance["shape_probe_accuracy"].map { String(format: "%.3f", $0) } ?? "–"])
            if let s = result.startEvaluation?["shape_probe_accuracy"] {
                t.add(["  the same encoder before training", String(format: "%.3f", s), "–"])
            }
        }
        if e.isEmpty { print("no held-out evaluation (give --eval-pairs to evaluate on your data)") } else { print(t.render()) }
        if let v = result.lastValues, let h = v["teacher_entropy"], let hb = v["teacher_batch_entropy"], let hmax = v["max_entropy"] {
            print(String(format: "teacher entropy at the last step: %.2f per image, %.2f of the batch mean, log K = %.2f (%@)", h, hb, hmax,
                         DINOStatistics.collapse(entropy: h, maximum: hmax)))
        }
        let best = result.bestCheckpoint ?? output + "/checkpoint-\(result.steps)"
        print(String(format: "%d steps in %.0f s; best checkpoint: %@", result.steps, result.seconds, best))
        try PretrainReport.write(metrics: output + "/metrics.jsonl", to: output + "/report.svg")
        if let summary {
            var s: [String: Any] = e.mapValues { $0 as Any }
            s["steps"] = result.steps; s["seconds"] = result.seconds; s["checkpoint"] = best
            s["chance"] = result.chance
            if let st = result.startEvaluation { s["start_evaluation"] = st }
            if let v = result.lastValues { s["last_values"] = v }
            try writeSummary(s, to: summary)
        }
    }
}

/// The end-of-run picture: each objective's loss curve and the evaluation curve, as SVG.
enum PretrainReport {
    static func write(metrics: String, to path: String) throws {
        try SVGCharts.trainingReport(metrics: metrics, to: path) { e in
            var points: [(String, Double)] = e.losses.map { ($0.key, $0.value) }
            for (k, v) in e.eval ?? [:] where k.hasSuffix("R@1") || k == "zero_shot_accuracy" || k == "shape_probe_accuracy" { points.append(("eval " + k, v)) }
            for (k, v) in e.values ?? [:] where k.hasPrefix("teacher_") && k.hasSuffix("entropy") { points.append((k, v)) }
            return points
        }
    }
}
