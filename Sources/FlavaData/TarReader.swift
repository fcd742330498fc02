// Reading WebDataset shards: POSIX tar files (ustar, GNU long names, pax headers) read sequentially, entries
// grouped by their key (the path up to the first dot of the file name), as webdataset / open_clip /
// img2dataset write them.
import Foundation

/// A sample of a WebDataset shard: key and its files by extension ("jpg", "txt", "json", …).
public struct ShardSample: Sendable {
    public var key: String
    public var files: [String: Data]
}

/// A shard that cannot be read, naming the file and the offset.
public struct DataError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Sequential reader of one tar file, yielding grouped samples.
public final class TarShardReader: Sequence, IteratorProtocol {
    let path: String
    let handle: FileHandle
    var offset: UInt64 = 0
    var pending: ShardSample?
    var done = false
    /// Set when the shard is malformed; iteration stops and the error is reported here.
    public private(set) var error: DataError?

    public init(path: String) throws {
        self.path = path
        guard let h = FileHandle(forReadingAtPath: path) else { throw DataError("\(path): cannot open shard") }
        handle = h
    }

    deinit { try? handle.close() }

    func read(_ n: Int) -> Data? {
        guard n > 0 else { return Data() }
        guard let d = try? handle.read(upToCount: n), d.count == n else { return nil }
        offset += UInt64(n)
        return d
    }

    static func octal(_ d: Data, _ r: Range<Int>) -> Int? {
        let field = d[d.startIndex + r.lowerBound..<d.startIndex + r.upperBound]
        if let first = field.first, first & 0x80 != 0 {   // base-256 (GNU) for sizes over 8 GB
            return field.dropFirst().reduce(0) { $0 << 8 | Int($1) }
        }
        let s = String(decoding: field.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        return s.isEmpty ? 0 : Int(s, radix: 8)
    }

    /// The next (name, data) file entry, skipping directories and metadata entries.
    func nextEntry() -> (String, Data)? {
        var longName: String? = nil
        while true {
            let headerOffset = offset
            guard let header = read(512) else { return nil }
            if header.allSatisfy({ $0 == 0 }) { return nil }   // end-of-archive block
            // Verify the header checksum (the checksum field counts as spaces).
            var sum = 0
            for (i, b) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(b) }
            guard let stored = TarShardReader.octal(header, 148..<156), stored == sum,
                  let size = TarShardReader.octal(header, 124..<136), size >= 0 else {
                error = DataError("\(path): corrupt tar header at byte \(headerOffset)")
                return nil
            }
            let type = header[header.startIndex + 156]
            var name = String(decoding: header.prefix(100).prefix { $0 != 0 }, as: UTF8.self)
            let magic = String(decoding: header[(header.startIndex + 257)..<(header.startIndex + 262)], as: UTF8.self)
            if magic == "ustar" {
                let prefix = String(decoding: header[(header.startIndex + 345)..<(header.startIndex + 500)].prefix { $0 != 0 }, as: UTF8.self)
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            guard let body = read(size) else {
                error = DataError("\(path): truncated tar entry '\(name)' at byte \(headerOffset)")
                return nil
            }
            let padding = (512 - size % 512) % 512
            if padding > 0 && read(padding) == nil && size > 0 {
                error = DataError("\(path): truncated tar file after '\(name)'")
                return nil
            }
            switch type {
            case UInt8(ascii: "L"): longName = String(decoding: body.prefix { $0 != 0 }, as: UTF8.self); continue
            case UInt8(ascii: "x"):
                // pax extended header: "len key=value\n" records; take path.
                for rec in String(decoding: body, as: UTF8.self).split(separator: "\n") {
                    if let eq = rec.firstIndex(of: "="), rec[..<eq].hasSuffix(" path") { longName = String(rec[rec.index(after: eq)...]) }
                }
                continue
            case UInt8(ascii: "g"), UInt8(ascii: "5"): continue
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
                return (longName ?? name, body)
            default: continue   // links, devices
            }
        }
    }

    /// WebDataset key and extension: "dir/000123.jpg" → ("dir/000123", "jpg"); "a.seg.png" → ("a", "seg.png").
    static func split(_ name: String) -> (String, String) {
        let slash = name.lastIndex(of: "/").map { name.index(after: $0) } ?? name.startIndex
        guard let dot = name[slash...].firstIndex(of: ".") else { return (name, "") }
        return (String(name[..<dot]), String(name[name.index(after: dot)...]).lowercased())
    }

    public func next() -> ShardSample? {
        if done { return nil }
        while let (name, data) = nextEntry() {
            let (key, ext) = TarShardReader.split(name)
            if key.hasPrefix("__") || ext.isEmpty { continue }
            if var p = pending, p.key == key { p.files[ext] = data; pending = p; continue }
            let out = pending
            pending = ShardSample(key: key, files: [ext: data])
            if let out { return out }
        }
        done = true
        defer { pending = nil }
        return pending
    }
}

/// Expands brace patterns as webdataset does: "shard-{0000..0099}.tar" (zero-padded ranges) and
/// "{a,b}" alternatives, left to right.
public func expandBraces(_ pattern: String) -> [String] {
    guard let open = pattern.firstIndex(of: "{"), let close = pattern[open...].firstIndex(of: "}") else { return [pattern] }
    let head = String(pattern[..<open]), tail = String(pattern[pattern.index(after: close)...])
    let body = String(pattern[pattern.index(after: open)..<close])
    var options: [String]
    if let range = body.range(of: ".."), let a = Int(body[..<range.lowerBound]), let b = Int(body[range.upperBound...]) {
        let width = body[..<range.lowerBound].count
        options = stride(from: a, through: b, by: a <= b ? 1 : -1).map { n in
            let s = String(n)
            return s.count < width ? String(repeating: "0", count: width - s.count) + s : s
        }
    } else {
        options = body.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    }
    return options.flatMap { opt in expandBraces(tail).map { head + opt + $0 } }
}
