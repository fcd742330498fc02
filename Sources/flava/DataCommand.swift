// flava data: filter captions PMD-style, and preview what a data source holds.
import ArgumentParser
import Foundation
import FlavaKit

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Filter caption data and preview data sources.", subcommands: [Filter.self, Preview.self])

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
