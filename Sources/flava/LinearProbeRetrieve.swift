// flava eval linear-probe (the paper's protocol on image-encoder features) and flava retrieve (top-k over a
// folder with an on-disk embedding index reused across queries).
import ArgumentParser
import Foundation
import FlavaKit

struct LinearProbeEval: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "linear-probe",
        abstract: "Linear probe: logistic regression on frozen image-encoder features, λ swept on validation, refit on train+validation.",
        discussion: "Features are the final-layer [CLS] state of the image encoder (after its last LayerNorm), cached in --cache as safetensors. Each split is an ImageFolder (same class folders) or a labelled manifest.")
    @Option(help: "Model folder.") var model: String
    @Option(help: "Arithmetic: fp32, or int8 (dynamic int8 Linear layers: faster, embeddings within about 1 % of fp32).") var precision: InferencePrecision = .fp32
    @Option(help: "Training split (ImageFolder root or manifest).") var train: String
    @Option(help: "Validation split.") var validation: String
    @Option(help: "Test split.") var test: String
    @Option(help: "Label column when a split is a manifest.") var labelColumn = "label"
    @Option(help: "Feature cache folder.") var cache: String?
    @Option(help: "L-BFGS iterations per fit.") var iterations = 1000
    @Option(help: "Write a JSON summary here.") var summary: String?

    func records(_ spec: String) throws -> (paths: [String], labels: [Int]) {
        var isDir: ObjCBool = false
        let source: DataSource = FileManager.default.fileExists(atPath: spec, isDirectory: &isDir) && isDir.boolValue
            ? try ImageFolderSource(root: spec) : try ManifestSource(path: spec, labelColumn: labelColumn)
        let s = try source.stream(epoch: 0, seed: 0)
        var paths: [String] = [], labels: [Int] = []
        while let r = try s.next() {
            guard case .file(let p)? = r.image, let l = r.label else { throw DataError("\(r.origin): needs an image file and a label") }
            paths.append(p); labels.append(l)
        }
        guard !paths.isEmpty else { throw DataError("\(spec): no labelled images") }
        return (paths, labels)
    }

    func features(_ embedder: FlavaEmbedder, _ name: String, _ paths: [String]) throws -> [[Double]] {
        let cacheFile = cache.map { "\($0)/\(name).safetensors" }
        if let f = cacheFile, FileManager.default.fileExists(atPath: f) {
            let t = try SafeTensorsFile(path: f).floatTensor("features")
            if t.shape[0] == paths.count { return rows(t) }
        }
        let bar = ProgressBar(total: paths.count, label: name)
        var parts: [Tensor] = []
        for start in stride(from: 0, to: paths.count, by: 32) {
            let chunk = Array(paths[start..<min(paths.count, start + 32)])
            let px = embedder.pixelValues(try chunk.map { try RGBImage.load($0) })
            parts.append(withNoGrad { firstToken(embedder.model.imageModel(Variable(px)).lastHiddenState).value })
            bar.update(start + chunk.count)
        }
        let t = ShapeKernel.concat(parts, axis: 0)
        if let f = cacheFile {
            try FileManager.default.createDirectory(atPath: cache!, withIntermediateDirectories: true)
            try SafeTensors.write([("features", .float(t))], to: f)
        }
        return rows(t)
    }

    func rows(_ t: Tensor) -> [[Double]] { (0..<t.shape[0]).map { i in (0..<t.shape[1]).map { Double(t[flat: i * t.shape[1] + $0]) } } }

    func run() throws {
        let embedder = try FlavaEmbedder(directory: model, precision: precision)
        let (tr, va, te) = (try records(train), try records(validation), try records(test))
        let classes = (tr.labels + va.labels + te.labels).max()! + 1
        let r = LinearProbe.run(train: (try features(embedder, "train", tr.paths), tr.labels),
                                validation: (try features(embedder, "validation", va.paths), va.labels),
                                test: (try features(embedder, "test", te.paths), te.labels), classes: classes, maxIterations: iterations)
        var t = TextTable(["metric", "value"])
        t.add(["best C (1/λ)", String(format: "%g", r.bestC)])
        t.add(["validation accuracy", String(format: "%.4f", r.validationAccuracy)])
        t.add(["test accuracy", String(format: "%.4f", r.testAccuracy)])
        t.add(["chance", String(format: "%.4f", 1 / Double(classes))])
        print(t.render())
        try writeSummary(["test_accuracy": r.testAccuracy, "validation_accuracy": r.validationAccuracy, "best_c": r.bestC,
                          "chance": 1 / Double(classes)], to: summary)
    }
}

struct Retrieve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Top-k images of a folder for a text, or top-k texts of a file for an image, with an on-disk embedding index.",
        discussion: "The index (INDEX/embeddings.safetensors + INDEX/items.json) is built once and reused while the folder's files, their sizes and modification times and the model are unchanged.")
    @Option(help: "Model folder.") var model: String
    @Option(help: "Arithmetic: fp32, or int8 (dynamic int8 Linear layers: faster, embeddings within about 1 % of fp32).") var precision: InferencePrecision = .fp32
    @Option(help: "Folder of images to search.") var folder: String?
    @Option(help: "File of texts (one a line) to search.") var texts: String?
    @Option(help: "Index folder (default: FOLDER/.flava-index or TEXTS.flava-index).") var index: String?
    @Option(help: "Query text (searches --folder).") var text: String?
    @Option(help: "Query image (searches --texts).") var image: String?
    @Option(help: "Results to show.") var topK = 5

    func validate() throws {
        if topK < 1 { throw ValidationError("--top-k must be at least 1") }
    }

    func run() throws {
        guard (text != nil && folder != nil) || (image != nil && texts != nil) else {
            throw ValidationError("give --text with --folder, or --image with --texts")
        }
        let embedder = try FlavaEmbedder(directory: model, precision: precision)
        let idx = try EmbeddingIndex.open(folder: folder, texts: texts, directory: index, embedder: embedder,
                                          embedImages: { try embedImages(embedder, $0, batchSize: 16, label: "index") })
        if idx.built { print("indexed \(idx.items.count) items in \(idx.directory)") }
        let query = text != nil ? embedder.textEmbeddings(try embedder.tokenize([text!])) : try embedImages(embedder, [image!], batchSize: 1, label: "query")
        var t = TextTable(["rank", "similarity", folder != nil ? "image" : "text"])
        for (r, hit) in idx.search(query, k: topK).enumerated() {
            let item = idx.items[hit.index]
            t.add([String(r + 1), String(format: "%.4f", hit.similarity), folder != nil ? URL(fileURLWithPath: item).lastPathComponent : item])
        }
        print(t.render())
    }
}
