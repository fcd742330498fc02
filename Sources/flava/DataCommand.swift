// flava data: filter captions PMD-style, and preview what a data source holds.
import ArgumentParser
import Foundation
import FlavaKit

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Filter caption data and preview data sources.", subcommands: [Filter.self, Preview.self, Export.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write synthetic-world scenes to disk as an ImageFolder tree plus a captions manifest.",
            discussion: """
            OUTPUT/<class>/NNNNN.png with the class chosen by --label (the first object's shape, colour, or \
            "colour shape"), and OUTPUT/captions.jsonl with one line per caption: {"image", "caption", "label" (the \
            class's index among the sorted folder names, as ImageFolder numbers them), "label_name"} — ready for `flava eval zero-shot --folder`, `flava eval linear-probe` and `flava eval \
            retrieval --manifest`. Scenes are a pure function of (seed, split, index): --start and --count pick \
            disjoint sets.
            """)
        @Option(help: "Split: train or held_out.") var split = "held_out"
        @Option(help: "First scene index.") var start = 0
        @Option(help: "Number of scenes.") var count = 120
        @Option(help: "Class of a scene: shape, color or class (\"colour shape\").") var label = "shape"
        @Option(help: "Image side in pixels.") var imageSize = 64
        @Option(help: "World seed (default 0, as flava pretrain).") var seed: UInt64 = 0
        @Option(help: "Output folder.") var output: String

        func validate() throws {
            guard SyntheticWorld.Split(rawValue: split) != nil else { throw ValidationError("--split must be train or held_out") }
            guard ["shape", "color", "class"].contains(label) else { throw ValidationError("--label must be shape, color or class") }
            guard count >= 1, start >= 0 else { throw ValidationError("--count must be positive and --start not negative") }
            guard imageSize >= 8 else { throw ValidationError("--image-size must be at least 8") }
        }

        func run() throws {
            let world = SyntheticWorld(seed: seed, imageSize: imageSize)
            let sp = SyntheticWorld.Split(rawValue: split)!
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            var rows = [(image: String, caption: String, cls: String)]()
            var perClass: [String: Int] = [:]
            let bar = ProgressBar(total: count, label: "export")
            for i in start..<(start + count) {
                let s = world.sample(i, split: sp)
                let first = s.objects[0]
                let cls: String
                switch label {
                case "shape": cls = SyntheticWorld.shapes[first.shape]
                case "color": cls = SyntheticWorld.colors[first.color]
                default: cls = SyntheticWorld.classNames[s.label]
                }
                let folder = cls.replacingOccurrences(of: " ", with: "_")
                try FileManager.default.createDirectory(atPath: output + "/" + folder, withIntermediateDirectories: true)
                let rel = folder + "/" + String(format: "%05d.png", i)
                try s.image.savePNG(output + "/" + rel)
                perClass[cls, default: 0] += 1
                for c in s.captions { rows.append((rel, c, cls)) }
                bar.update(i - start + 1)
            }
            let order = perClass.keys.map { $0.replacingOccurrences(of: " ", with: "_") }.sorted()
            let lines = try rows.map { r -> String in
                let obj: [String: Any] = ["image": r.image, "caption": r.caption, "label_name": r.cls,
                                          "label": order.firstIndex(of: r.cls.replacingOccurrences(of: " ", with: "_"))!]
                return String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self)
            }
            let text = lines.joined(separator: "\n") + "\n"
            try AtomicFile.write(to: output + "/captions.jsonl") { sink in try Data(text.utf8).withUnsafeBytes { try sink.write($0) } }
            print("\(output): \(count) \(split) scenes in \(perClass.count) classes (\(perClass.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))), \(lines.count) captions in captions.jsonl")
        }
    }

    struct Filter: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "PMD-style filtering of a JSONL manifest: first text field that passes, English, enough words.",
            discussion: "Keeps each record whose first passing field (in --fields order) has at least --min-words words and, with --language en, looks English; writes it with that text as 'caption'. Prints what was dropped and why.")
        @Option(help: "Input JSONL manifest.") var input: String
        @Option(help: "Comma-separated text fields, tried in order.") var fields = "caption"
        @Option(help: "Least number of words.") var minWords = 3
        @Option(help: "Keep only this language ('en'), or 'any'.") var language = "en"
        @Option(help: "Output JSONL manifest.") var output: String

        func validate() throws {
            guard ["en", "any"].contains(language) else { throw ValidationError("--language must be en or any") }
            guard minWords >= 1 else { throw ValidationError("--min-words must be at least 1") }
        }

        func run() throws {
            let f = PMDFilter(fields: fields.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) },
                              minWords: minWords, language: language == "en" ? "en" : nil)
            let report = try f.run(input: input, output: output)
            print("\(output): \(report)")
        }
    }

    struct Preview: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Draw N samples of a data source with their captions into a PNG grid.",
            discussion: "SOURCE: synthetic[:pairs|images|text][:train|held_out], a manifest (.jsonl/.csv/.tsv), a shard pattern (shard-{0000..0009}.tar), coco:ANNOTATIONS.json:IMAGE_ROOT, folder:ROOT or text:FILE.")
        @Option(help: "Data source spec.") var source = "synthetic"
        @Option(help: "How many samples.") var count = 16
        @Option(help: "Output PNG.") var output: String
        @Option(help: "Grid columns.") var columns = 4
        @Option(help: "Synthetic image size.") var imageSize = 64

        func run() throws {
            guard count >= 1 else { throw ValidationError("--count must be at least 1") }
            let src = try dataSource(spec: source, imageSize: imageSize)
            let stream = try src.stream(epoch: 0, seed: 0)
            var items: [(image: RGBImage, caption: String)] = []
            while items.count < count, let r = try stream.next() {
                let image = try r.image?.load() ?? RGBImage(width: 64, height: 64, fill: (235, 235, 235))
                let label = r.label.map { " [class \($0)]" } ?? ""
                items.append((image, (r.text ?? "") + label))
            }
            guard !items.isEmpty else { throw DataError("\(source): the source is empty") }
            try ImageGrid.compose(items, columns: columns, tile: 160).savePNG(output)
            print("wrote \(output): \(items.count) samples of \(src.name)")
        }
    }
}
