// Data in the formats people already have, read as streams of raw records (nothing decoded yet, never the
// whole dataset in memory): JSONL/CSV/TSV manifests, WebDataset tar shards, COCO captions JSON, ImageFolder
// trees, text files and JSONL text, and the built-in synthetic world.
import Foundation
import FlavaTensor

/// Where a record's image comes from.
public enum ImageRef: Sendable {
    case file(String)
    case bytes(Data, name: String)
    case decoded(RGBImage)

    /// Decodes the image; errors name the file.
    public func load() throws -> RGBImage {
        switch self {
        case .file(let p): return try RGBImage.load(p)
        case .bytes(let d, let name): return try RGBImage.decode(d, name: name)
        case .decoded(let i): return i
        }
    }
}

/// One undecoded sample: an image and/or a text, an optional class label, and where it came from
/// ("manifest.jsonl:12") for error messages.
public struct RawRecord: Sendable {
    public var image: ImageRef?
    public var text: String?
    public var label: Int?
    public var origin: String
    public init(image: ImageRef? = nil, text: String? = nil, label: Int? = nil, origin: String) {
        self.image = image; self.text = text; self.label = label; self.origin = origin
    }
}

/// A sequential stream of records for one pass over a source. `next()` throws for a malformed record (the
/// error names file and line) and can be called again afterwards to continue with the following one.
public protocol RecordStream: AnyObject {
    func next() throws -> RawRecord?
}

/// A dataset: opens a fresh stream per epoch (sources with several files shuffle their order by epoch).
public protocol DataSource: Sendable {
    /// A short human description.
    var name: String { get }
    func stream(epoch: Int, seed: UInt64) throws -> RecordStream
}

// MARK: line reading

/// Reads a text file line by line without loading it whole.
public final class LineReader {
    public let path: String
    let handle: FileHandle
    var buffer = Data()
    var eof = false
    /// The number of the line last returned (1-based).
    public private(set) var lineNumber = 0
    /// The longest line read; a longer one (a binary file, a file with no newlines) is an error, not unbounded memory.
    public static let maximumLineBytes = 64 << 20

    public init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw DataError("\(path): no such file") }
        guard !isDir.boolValue, let h = FileHandle(forReadingAtPath: path) else { throw DataError("\(path): cannot open for reading") }
        handle = h
    }
    deinit { try? handle.close() }

    /// The next line (without its newline), or nil at the end. Invalid UTF-8 throws, naming the line.
    public func nextLine() throws -> String? {
        while true {
            if let nl = buffer.firstIndex(of: 0x0a) {
                var line = buffer[buffer.startIndex..<nl]
                buffer = Data(buffer[(nl + 1)...])
                if line.last == 0x0d { line = line.dropLast() }
                lineNumber += 1
                guard let s = String(data: line, encoding: .utf8) else { throw DataError("\(path):\(lineNumber): not UTF-8 text") }
                return s
            }
            if eof {
                guard !buffer.isEmpty else { return nil }
                let line = buffer; buffer = Data()
                lineNumber += 1
                guard let s = String(data: line, encoding: .utf8) else { throw DataError("\(path):\(lineNumber): not UTF-8 text") }
                return s
            }
            if buffer.count > LineReader.maximumLineBytes {
                throw DataError("\(path):\(lineNumber + 1): line longer than \(LineReader.maximumLineBytes >> 20) MB (not a text file?)")
            }
            let chunk = (try? handle.read(upToCount: 1 << 16)) ?? nil
            if let chunk, !chunk.isEmpty { buffer.append(chunk) } else { eof = true }
        }
    }
}

/// Splits one CSV/TSV record (RFC 4180 quoting: "" inside quotes is a quote). Quoted newlines are joined by
/// the caller reading further lines while a quote is open. Walks code points: a separator or quote followed by
/// a combining mark is one Character but still two code points.
func splitDelimited(_ line: String, separator: Unicode.Scalar) -> (fields: [String], openQuote: Bool) {
    var fields: [String] = [], cur = String.UnicodeScalarView(), inQuotes = false
    var it = line.unicodeScalars.makeIterator()
    var prevQuote = false
    while let c = it.next() {
        if inQuotes {
            if c == "\"" { inQuotes = false; prevQuote = true; continue }
            cur.append(c)
        } else {
            if c == "\"" { if prevQuote { cur.append("\"") }; inQuotes = true; prevQuote = false; continue }
            prevQuote = false
            if c == separator { fields.append(String(cur)); cur = String.UnicodeScalarView() } else { cur.append(c) }
        }
    }
    fields.append(String(cur))
    return (fields, inQuotes)
}

// MARK: manifests

/// Image–text (or image–label) manifests: JSONL (one object a line), CSV or TSV with a header. Image paths are
/// relative to the manifest's folder unless absolute. Column names are configurable; by default the first of
/// image/image_path/filepath/file/path and caption/text/title/description present is used.
public struct ManifestSource: DataSource {
    public enum Format: String, Sendable { case jsonl, csv, tsv }
    public let path: String
    public let format: Format
    public var imageColumn: String?
    public var textColumn: String?
    public var labelColumn: String?
    public var name: String { "manifest \(path)" }

    public static let imageColumns = ["image", "image_path", "filepath", "file", "path", "img"]
    public static let textColumns = ["caption", "text", "title", "description", "sentence"]

    public init(path: String, format: Format? = nil, imageColumn: String? = nil, textColumn: String? = nil, labelColumn: String? = nil) throws {
        self.path = path
        if let format { self.format = format } else {
            let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
            guard let f = Format(rawValue: ext == "json" ? "jsonl" : ext) else {
                throw DataError("\(path): unknown manifest format '.\(ext)' (expected .jsonl, .csv or .tsv)")
            }
            self.format = f
        }
        self.imageColumn = imageColumn; self.textColumn = textColumn; self.labelColumn = labelColumn
    }

    public func stream(epoch: Int, seed: UInt64) throws -> RecordStream { try Stream(self) }

    final class Stream: RecordStream {
        let source: ManifestSource
        let reader: LineReader
        let base: URL
        var header: [String]?

        init(_ s: ManifestSource) throws {
            source = s
            reader = try LineReader(path: s.path)
            base = URL(fileURLWithPath: s.path).deletingLastPathComponent()
        }

        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : base.appendingPathComponent(p).path }

        func record(_ fields: [String: Any], line: Int) throws -> RawRecord {
            let origin = "\(source.path):\(line)"
            func column(_ explicit: String?, _ defaults: [String]) throws -> String? {
                if let c = explicit {
                    guard fields[c] != nil else { throw DataError("\(origin): no '\(c)' field") }
                    return c
                }
                return defaults.first { fields[$0] != nil }
            }
            let ic = try column(source.imageColumn, ManifestSource.imageColumns)
            let tc = try column(source.textColumn, ManifestSource.textColumns)
            guard ic != nil || tc != nil else {
                throw DataError("\(origin): no image or text field (looked for \((ManifestSource.imageColumns + ManifestSource.textColumns).joined(separator: ", ")))")
            }
            var r = RawRecord(origin: origin)
            if let ic {
                guard let p = fields[ic] as? String, !p.isEmpty else { throw DataError("\(origin): '\(ic)' is not a file path") }
                r.image = .file(resolve(p))
            }
            if let tc {
                guard let t = fields[tc] as? String else { throw DataError("\(origin): '\(tc)' is not text") }
                r.text = t
            }
            if let lc = source.labelColumn {
                if let n = fields[lc] as? Int { r.label = n } else if let s = fields[lc] as? String, let n = Int(s) { r.label = n }
                else { throw DataError("\(origin): '\(lc)' is not an integer label") }
            }
            return r
        }

        func next() throws -> RawRecord? {
            while true {
                guard var line = try reader.nextLine() else { return nil }
                let lineNumber = reader.lineNumber
                if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                switch source.format {
                case .jsonl:
                    guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                        throw DataError("\(source.path):\(lineNumber): not a JSON object")
                    }
                    return try record(obj, line: lineNumber)
                case .csv, .tsv:
                    let sep: Unicode.Scalar = source.format == .csv ? "," : "\t"
                    var (fields, open) = splitDelimited(line, separator: sep)
                    while open, let more = try reader.nextLine() {    // a quoted field spanning lines
                        line += "\n" + more
                        if line.utf8.count > LineReader.maximumLineBytes {
                            throw DataError("\(source.path):\(lineNumber): quoted field longer than \(LineReader.maximumLineBytes >> 20) MB (unterminated quote?)")
                        }
                        (fields, open) = splitDelimited(line, separator: sep)
                    }
                    if open { throw DataError("\(source.path):\(lineNumber): unterminated quoted field") }
                    guard let h = header else { header = fields; continue }
                    guard fields.count == h.count else {
                        throw DataError("\(source.path):\(lineNumber): \(fields.count) fields, header has \(h.count)")
                    }
                    return try record(Dictionary(zip(h, fields.map { $0 as Any }), uniquingKeysWith: { a, _ in a }), line: lineNumber)
                }
            }
        }
    }
}

// MARK: WebDataset

/// WebDataset tar shards (same-stem jpg|jpeg|png + txt|json), several by brace pattern
/// (`shard-{0000..0099}.tar`); shard order is shuffled per epoch.
public struct WebDatasetSource: DataSource {
    public let shards: [String]
    public var name: String { "webdataset (\(shards.count) shards)" }

    public init(pattern: String) throws {
        shards = expandBraces(pattern)
        for s in shards where !FileManager.default.fileExists(atPath: s) { throw DataError("\(s): no such shard") }
        guard !shards.isEmpty else { throw DataError("\(pattern): no shards") }
    }

    public func stream(epoch: Int, seed: UInt64) throws -> RecordStream {
        var order = shards
        var g = SeededGenerator(seed: seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15))
        if shards.count > 1 { order.shuffle(using: &g) }
        return Stream(order)
    }

    final class Stream: RecordStream {
        var remaining: [String]
        var reader: TarShardReader?
        init(_ shards: [String]) { remaining = shards }

        func next() throws -> RawRecord? {
            while true {
                if reader == nil {
                    guard !remaining.isEmpty else { return nil }
                    reader = try TarShardReader(path: remaining.removeFirst())
                }
                guard let s = reader!.next() else {
                    if let e = reader!.error { reader = nil; throw e }
                    reader = nil; continue
                }
                let origin = "\(reader!.path):\(s.key)"
                var r = RawRecord(origin: origin)
                if let ext = ["jpg", "jpeg", "png"].first(where: { s.files[$0] != nil }) { r.image = .bytes(s.files[ext]!, name: origin + "." + ext) }
                if let t = s.files["txt"] {
                    guard let text = String(data: t, encoding: .utf8) else { throw DataError("\(origin).txt: not UTF-8 text") }
                    r.text = text.trimmingCharacters(in: .whitespacesAndNewlines)
                } else if let j = s.files["json"] {
                    guard let obj = (try? JSONSerialization.jsonObject(with: j)) as? [String: Any] else { throw DataError("\(origin).json: not a JSON object") }
                    r.text = ManifestSource.textColumns.lazy.compactMap { obj[$0] as? String }.first
                }
                if let c = s.files["cls"], let n = Int(String(decoding: c, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) { r.label = n }
                guard r.image != nil || r.text != nil else { throw DataError("\(origin): no image (jpg/jpeg/png) and no text (txt/json)") }
                return r
            }
        }
    }
}

// MARK: COCO

/// COCO captions JSON (`captions_train2017.json`): one record per caption, images under `imageRoot`.
public struct COCOCaptionsSource: DataSource {
    public let annotations: String
    public let imageRoot: String
    public var name: String { "COCO captions \(annotations)" }

    public init(annotations: String, imageRoot: String) { self.annotations = annotations; self.imageRoot = imageRoot }

    public func stream(epoch: Int, seed: UInt64) throws -> RecordStream {
        guard let data = FileManager.default.contents(atPath: annotations) else { throw DataError("\(annotations): no such file") }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let images = obj["images"] as? [[String: Any]], let anns = obj["annotations"] as? [[String: Any]] else {
            throw DataError("\(annotations): not a COCO captions file (needs 'images' and 'annotations' lists)")
        }
        var files: [Int: String] = [:]
        for (i, im) in images.enumerated() {
            guard let id = im["id"] as? Int, let f = im["file_name"] as? String else { throw DataError("\(annotations): images[\(i)] lacks id or file_name") }
            files[id] = f
        }
        var records: [RawRecord] = []
        for (i, a) in anns.enumerated() {
            let origin = "\(annotations): annotations[\(i)]"
            guard let id = a["image_id"] as? Int, let c = a["caption"] as? String else { throw DataError("\(origin) lacks image_id or caption") }
            guard let f = files[id] else { throw DataError("\(origin) refers to unknown image_id \(id)") }
            records.append(RawRecord(image: .file(URL(fileURLWithPath: imageRoot).appendingPathComponent(f).path), text: c, origin: origin))
        }
        return ArrayStream(records)
    }
}

/// A stream over records already listed.
final class ArrayStream: RecordStream {
    var records: [RawRecord]
    var i = 0
    init(_ r: [RawRecord]) { records = r }
    func next() throws -> RawRecord? { defer { i += 1 }; return i < records.count ? records[i] : nil }
}

// MARK: ImageFolder and text

/// ImageFolder trees: ROOT/CLASS/IMAGE; classes are the sorted folder names.
public struct ImageFolderSource: DataSource {
    public let root: String
    public let classes: [String]
    public var name: String { "image folder \(root) (\(classes.count) classes)" }

    public init(root: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else { throw DataError("\(root): no such folder") }
        classes = try FileManager.default.contentsOfDirectory(atPath: root).filter { c in
            var d: ObjCBool = false
            return !c.hasPrefix(".") && FileManager.default.fileExists(atPath: root + "/" + c, isDirectory: &d) && d.boolValue
        }.sorted()
        guard !classes.isEmpty else { throw DataError("\(root): no class folders") }
        self.root = root
    }

    public func stream(epoch: Int, seed: UInt64) throws -> RecordStream {
        var records: [RawRecord] = []
        for (label, c) in classes.enumerated() {
            let dir = root + "/" + c
            for f in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() {
                let ext = URL(fileURLWithPath: f).pathExtension.lowercased()
                guard ["jpg", "jpeg", "png"].contains(ext) else { continue }
                records.append(RawRecord(image: .file(dir + "/" + f), label: label, origin: dir + "/" + f))
            }
        }
        return ArrayStream(records)
    }
}

/// Text alone: plain text files (a document or sentence a line) or JSONL with a text field.
public struct TextSource: DataSource {
    public let files: [String]
    public var textField: String?
    public var name: String { "text \(files.joined(separator: ", "))" }

    public init(files: [String], textField: String? = nil) { self.files = files; self.textField = textField }

    public func stream(epoch: Int, seed: UInt64) throws -> RecordStream { try Stream(self) }

    final class Stream: RecordStream {
        var remaining: [String]
        var reader: LineReader?
        let field: String?
        init(_ s: TextSource) throws { remaining = s.files; field = s.textField }
        func next() throws -> RawRecord? {
            while true {
                if reader == nil {
                    guard !remaining.isEmpty else { return nil }
                    reader = try LineReader(path: remaining.removeFirst())
                }
                guard let line = try reader!.nextLine() else { reader = nil; continue }
                let origin = "\(reader!.path):\(reader!.lineNumber)"
                if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                if reader!.path.hasSuffix(".jsonl") || reader!.path.hasSuffix(".json") {
                    guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                        throw DataError("\(origin): not a JSON object")
                    }
                    guard let t = (field.map { [$0] } ?? ManifestSource.textColumns).lazy.compactMap({ obj[$0] as? String }).first else {
                        throw DataError("\(origin): no text field")
                    }
                    return RawRecord(text: t, origin: origin)
                }
                return RawRecord(text: line, origin: origin)
            }
        }
    }
}

// MARK: the synthetic world

/// The built-in synthetic world as a source: pairs, unpaired images or unpaired text, of a split; `length`
/// samples an epoch (the world itself is unlimited; each epoch sees new scenes).
public struct SyntheticSource: DataSource {
    public enum Kind: String, Sendable { case pairs, images, text }
    public let world: SyntheticWorld
    public let kind: Kind
    public let split: SyntheticWorld.Split
    public let length: Int
    public var name: String { "synthetic \(kind.rawValue) (\(split.rawValue))" }

    public init(world: SyntheticWorld, kind: Kind = .pairs, split: SyntheticWorld.Split = .train, length: Int = 10_000) {
        self.world = world; self.kind = kind; self.split = split; self.length = length
    }

    public func stream(epoch: Int, seed: UInt64) throws -> RecordStream { Stream(self, epoch: epoch) }

    final class Stream: RecordStream {
        let s: SyntheticSource
        let offset: Int
        var i = 0
        init(_ s: SyntheticSource, epoch: Int) { self.s = s; offset = epoch * s.length }
        func next() throws -> RawRecord? {
            guard i < s.length else { return nil }
            defer { i += 1 }
            let index = offset + i
            let origin = "synthetic:\(s.split.rawValue):\(index)"
            switch s.kind {
            case .pairs:
                let sample = s.world.sample(index, split: s.split)
                var g = SeededGenerator(seed: UInt64(index) &* 31 &+ 7)
                return RawRecord(image: .decoded(sample.image), text: sample.captions[Int(g.next() % UInt64(sample.captions.count))],
                                 label: sample.label, origin: origin)
            case .images:
                let sample = s.world.sample(1_000_000_000 + index, split: s.split)
                return RawRecord(image: .decoded(sample.image), label: sample.label, origin: origin)
            case .text:
                return RawRecord(text: s.world.unpairedText(index, split: s.split), origin: origin)
            }
        }
    }
}

/// A source restricted to the records `keep` accepts.
public final class FilteredSource: DataSource {
    let base: DataSource
    let keep: @Sendable (RawRecord) -> Bool
    public init(_ base: DataSource, keep: @escaping @Sendable (RawRecord) -> Bool) { self.base = base; self.keep = keep }
    public var name: String { base.name }
    public func stream(epoch: Int, seed: UInt64) throws -> RecordStream { Stream(try base.stream(epoch: epoch, seed: seed), keep) }

    final class Stream: RecordStream {
        let base: RecordStream, keep: (RawRecord) -> Bool
        init(_ base: RecordStream, _ keep: @escaping (RawRecord) -> Bool) { self.base = base; self.keep = keep }
        func next() throws -> RawRecord? {
            while let r = try base.next() { if keep(r) { return r } }
            return nil
        }
    }
}

/// Parses a source spec: `synthetic[:pairs|images|text][:train|held_out]`, a manifest path (.jsonl/.csv/.tsv),
/// a shard pattern (…tar), `coco:ANNOTATIONS.json:IMAGE_ROOT`, `folder:ROOT`, or `text:FILE[,FILE…]`.
public func dataSource(spec: String, imageSize: Int = 64, seed: UInt64 = 0) throws -> DataSource {
    let parts = spec.split(separator: ":", maxSplits: 2).map(String.init)
    switch parts.first {
    case "synthetic":
        var kind = SyntheticSource.Kind.pairs, split = SyntheticWorld.Split.train
        for p in parts.dropFirst() {
            if let k = SyntheticSource.Kind(rawValue: p) { kind = k } else if let s = SyntheticWorld.Split(rawValue: p) { split = s }
            else { throw DataError("\(spec): unknown synthetic option '\(p)' (pairs, images, text, train, held_out)") }
        }
        return SyntheticSource(world: SyntheticWorld(seed: seed, imageSize: imageSize), kind: kind, split: split)
    case "coco":
        guard parts.count == 3 else { throw DataError("\(spec): expected coco:ANNOTATIONS.json:IMAGE_ROOT") }
        return COCOCaptionsSource(annotations: parts[1], imageRoot: parts[2])
    case "folder":
        return try ImageFolderSource(root: String(spec.dropFirst("folder:".count)))
    case "text":
        return TextSource(files: spec.dropFirst("text:".count).split(separator: ",").map(String.init))
    default:
        if spec.contains(".tar") { return try WebDatasetSource(pattern: spec) }
        return try ManifestSource(path: spec)
    }
}
