// flava eval zero-shot | retrieval, and the everyday commands built on the same embeddings:
// flava classify (zero-shot labels for images) and flava match (image–text matching probability).
import ArgumentParser
import Foundation
import FlavaKit

/// Loads images in order, decoding with the embedder's processor; a bad file is a one-line error naming it.
func embedImages(_ embedder: FlavaEmbedder, _ paths: [String], batchSize: Int, label: String) throws -> Tensor {
    let bar = ProgressBar(total: paths.count, label: label)
    var parts: [Tensor] = []
    for start in stride(from: 0, to: paths.count, by: 64) {
        let chunk = Array(paths[start..<min(paths.count, start + 64)])
        let px = embedder.pixelValues(try chunk.map { try RGBImage.load($0) })
        parts.append(embedder.imageEmbeddings(px, batchSize: batchSize))
        bar.update(start + chunk.count)
    }
    return ShapeKernel.concat(parts, axis: 0)
}

/// Writes a command's --summary JSON (sorted keys, atomically); nothing when no path was given.
func writeSummary(_ dict: [String: Any], to path: String?) throws {
    guard let path else { return }
    let data = try JSONSerialization.data(withJSONObject: dict, options: [.prettyPrinted, .sortedKeys])
    try AtomicFile.write(to: path) { sink in try data.withUnsafeBytes { try sink.write($0) } }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Zero-shot evaluation: classification and retrieval.",
                                                    subcommands: [ZeroShotEval.self, RetrievalEval.self, LinearProbeEval.self])

    struct ZeroShotEval: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "zero-shot",
            abstract: "Zero-shot classification: top-1/top-5 accuracy and mean per-class recall.",
            discussion: "Images come from an ImageFolder tree (class = folder name, used as the class name unless --classes is given) or a manifest with an integer label column. Class embedding = mean of the normalized prompt embeddings, re-normalized.")
        @Option(help: "Model folder.") var model: String
        @Option(help: "Arithmetic: fp32, or int8 (dynamic int8 Linear layers: faster, embeddings within about 1 % of fp32).") var precision: InferencePrecision = .fp32
        @Option(help: "ImageFolder root.") var folder: String?
        @Option(help: "Manifest with image and label columns.") var manifest: String?
        @Option(help: "Label column of the manifest.") var labelColumn = "label"
        @Option(help: "Comma-separated class names (default: the folder names).") var classes: String?
        @Option(help: "Prompt templates: clip, plain, or a JSON file of strings with {}.") var templates = "clip"
        @Option(help: "Items per forward pass.") var batchSize = 16
        @Option(help: "Write a JSON summary here.") var summary: String?

        func run() throws {
            let embedder = try FlavaEmbedder(directory: model, precision: precision)
            var paths: [String] = [], labels: [Int] = [], names: [String]
            if let folder {
                let src = try ImageFolderSource(root: folder)
                let stream = try src.stream(epoch: 0, seed: 0)
                while let r = try stream.next() { if case .file(let p)? = r.image { paths.append(p); labels.append(r.label!) } }
                names = src.classes.map { $0.replacingOccurrences(of: "_", with: " ") }
            } else if let manifest {
                let stream = try ManifestSource(path: manifest, labelColumn: labelColumn).stream(epoch: 0, seed: 0)
                while let r = try stream.next() { if case .file(let p)? = r.image, let l = r.label { paths.append(p); labels.append(l) } }
                guard let c = classes else { throw ValidationError("--classes is needed with --manifest") }
                names = c.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            } else { throw ValidationError("give --folder or --manifest") }
            if let c = classes { names = c.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
            guard !paths.isEmpty else { throw DataError("no images to evaluate") }
            guard let maxLabel = labels.max(), maxLabel < names.count else { throw DataError("labels go up to \(labels.max() ?? 0) but there are \(names.count) classes") }
            let images = try embedImages(embedder, paths, batchSize: batchSize, label: "images")
            let r = ZeroShot.classify(images: images, classes: try embedder.classEmbeddings(classes: names, templates: try PromptTemplates.load(templates)), labels: labels)
            var t = TextTable(["metric", "value", "chance"])
            t.add(["top-1 accuracy", String(format: "%.4f", r.top1), String(format: "%.4f", 1 / Double(names.count))])
            t.add(["top-5 accuracy", String(format: "%.4f", r.top5), String(format: "%.4f", min(1, 5 / Double(names.count)))])
            t.add(["mean per-class recall", String(format: "%.4f", r.meanPerClassRecall), String(format: "%.4f", 1 / Double(names.count))])
            print(t.render())
            print("\(r.count) images, \(r.classes) classes")
            try writeSummary(["top1_accuracy": r.top1, "top5_accuracy": r.top5, "mean_per_class_recall": r.meanPerClassRecall,
                              "chance": 1 / Double(names.count)], to: summary)
        }
    }

    struct RetrievalEval: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "retrieval",
            abstract: "Image→text and text→image recall@1/5/10 (several captions per image), mean and median rank.")
        @Option(help: "Model folder.") var model: String
        @Option(help: "Arithmetic: fp32, or int8 (dynamic int8 Linear layers: faster, embeddings within about 1 % of fp32).") var precision: InferencePrecision = .fp32
        @Option(help: "Karpathy split file (dataset_flickr30k.json / dataset_coco.json).") var karpathy: String?
        @Option(help: "Image folder for the Karpathy file.") var imageRoot: String?
        @Option(help: "Karpathy split name.") var split = "test"
        @Option(help: "Or a manifest of image + caption rows (several rows per image allowed).") var manifest: String?
        @Option(help: "Items per forward pass.") var batchSize = 16
        @Option(help: "Write a JSON summary here.") var summary: String?

        func run() throws {
            let set: RetrievalSet
            if let karpathy {
                guard let root = imageRoot else { throw ValidationError("--image-root is needed with --karpathy") }
                set = try RetrievalSet.karpathy(karpathy, imageRoot: root, split: split)
            } else if let manifest {
                set = try RetrievalSet.manifest(try ManifestSource(path: manifest))
            } else { throw ValidationError("give --karpathy FILE --image-root DIR, or --manifest FILE") }
            let embedder = try FlavaEmbedder(directory: model, precision: precision)
            let images = try embedImages(embedder, set.images, batchSize: batchSize, label: "images")
            let texts = embedder.textEmbeddings(try embedder.tokenize(set.captions), batchSize: 64)
            let r = ZeroShot.retrieval(images: images, texts: texts, textImage: set.captionImage)
            var t = TextTable(["direction", "R@1", "R@5", "R@10", "mean rank", "median rank"])
            t.add(["image → text", String(format: "%.4f", r.imageToText[1]!), String(format: "%.4f", r.imageToText[5]!),
                   String(format: "%.4f", r.imageToText[10]!), String(format: "%.1f", r.imageToTextMeanRank), String(format: "%.1f", r.imageToTextMedianRank)])
            t.add(["text → image", String(format: "%.4f", r.textToImage[1]!), String(format: "%.4f", r.textToImage[5]!),
                   String(format: "%.4f", r.textToImage[10]!), String(format: "%.1f", r.textToImageMeanRank), String(format: "%.1f", r.textToImageMedianRank)])
            print(t.render())
            print("\(set.images.count) images, \(set.captions.count) captions")
            try writeSummary(r.summary, to: summary)
        }
    }
}

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Zero-shot labels for images: the most similar of the given labels.")
    @Option(help: "Model folder.") var model: String
    @Option(help: "Arithmetic: fp32, or int8 (dynamic int8 Linear layers: faster, embeddings within about 1 % of fp32).") var precision: InferencePrecision = .fp32
    @Option(name: .customLong("image"), help: "An image; repeat for several.") var images: [String] = []
    @Option(help: "Comma-separated candidate labels.") var labels: String
    @Option(help: "Prompt templates: clip, plain, or a JSON file.") var templates = "clip"
    @Option(help: "How many labels to show per image.") var top = 3

    func run() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one --image") }
        let names = labels.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard names.count >= 2 else { throw ValidationError("--labels needs at least two labels") }
        let embedder = try FlavaEmbedder(directory: model, precision: precision)
        let classes = try embedder.classEmbeddings(classes: names, templates: try PromptTemplates.load(templates))
        let emb = try embedImages(embedder, images, batchSize: 8, label: "images")
        var t = TextTable(["image", "label", "probability"])
        for (i, p) in embedder.labelProbabilities(images: emb, classes: classes).enumerated() {
            for (rank, j) in p.indices.sorted(by: { p[$0] > p[$1] }).prefix(top).enumerated() {
                t.add([rank == 0 ? URL(fileURLWithPath: images[i]).lastPathComponent : "", names[j], String(format: "%.3f", p[j])])
            }
        }
        print(t.render())
    }
}

struct Match: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Image–text matching: the ITM head's probability that each text describes the image.")
    @Option(help: "Model folder (with the ITM head: a FlavaForPreTraining checkpoint).") var model: String
    @Option(help: "Arithmetic: fp32, or int8 (dynamic int8 Linear layers: faster, embeddings within about 1 % of fp32).") var precision: InferencePrecision = .fp32
    @Option(help: "The image.") var image: String
    @Option(name: .customLong("text"), help: "A text; repeat for several.") var texts: [String] = []

    func run() throws {
        guard !texts.isEmpty else { throw ValidationError("give at least one --text") }
        let matcher = try ImageTextMatcher(directory: model, precision: precision)
        let p = try matcher.probabilities(pixels: matcher.embedder.pixelValues([try RGBImage.load(image)]), texts: texts)
        var t = TextTable(["text", "match probability"])
        for i in 0..<texts.count { t.add([texts[i], String(format: "%.3f", p[i])]) }
        print(t.render())
    }
}
