// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length, a
// JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw little-endian data.
// Reading maps the file and points float32 tensors straight into it; every header field is validated first.
import Foundation
import FlavaTensor

/// A safetensors file opened for reading (memory-mapped).
public final class SafeTensorsFile: TensorSource {
    /// One tensor's entry in the header.
    public struct Entry: Sendable { public let dtype: DType; public let shape: [Int]; public let begin: Int, end: Int }

    public let sourcePath: String
    /// Entries by name.
    public let entries: [String: Entry]
    /// Names in file order (by data offset).
    public let keys: [String]
    /// The `__metadata__` strings.
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    /// Largest header accepted (the format's reference implementation uses 100 MB).
    public static let maximumHeaderBytes = 100_000_000

    public init(path: String) throws {
        sourcePath = path
        file = try MappedFile(path: path)
        guard file.size >= 8 else { throw CheckpointError(path, "truncated safetensors file (\(file.size) bytes, no header)") }
        let n = Int(UInt64(littleEndian: file.base.loadUnaligned(as: UInt64.self)) & 0x7fff_ffff_ffff_ffff)
        guard n <= SafeTensorsFile.maximumHeaderBytes else {
            throw CheckpointError(path, "safetensors header length \(n) is absurd (limit \(SafeTensorsFile.maximumHeaderBytes))")
        }
        guard 8 + n <= file.size else {
            throw CheckpointError(path, "truncated safetensors file: header of \(n) bytes but file has \(file.size)")
        }
        dataStart = 8 + n
        let headerData = Data(file.bytes(8, n))
        guard let json = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw CheckpointError(path, "safetensors header is not a JSON object")
        }
        let dataSize = file.size - dataStart
        var entries: [String: Entry] = [:]
        var meta: [String: String] = [:]
        for (name, value) in json {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw CheckpointError(path, "__metadata__ is not an object") }
                for (k, v) in m { meta[k] = (v as? String) ?? "\(v)" }
                continue
            }
            guard let e = value as? [String: Any] else { throw CheckpointError(path, "tensor '\(name)': entry is not an object") }
            guard let ds = e["dtype"] as? String else { throw CheckpointError(path, "tensor '\(name)': missing dtype") }
            guard let dtype = DType(rawValue: ds) else { throw CheckpointError(path, "tensor '\(name)': unknown dtype \(ds)") }
            guard let shapeAny = e["shape"] as? [Any], let shape = SafeTensorsFile.ints(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
                throw CheckpointError(path, "tensor '\(name)': shape is not a list of non-negative integers")
            }
            guard let offAny = e["data_offsets"] as? [Any], let off = SafeTensorsFile.ints(offAny), off.count == 2 else {
                throw CheckpointError(path, "tensor '\(name)': data_offsets is not a pair of integers")
            }
            let (begin, end) = (off[0], off[1])
            guard 0 <= begin, begin <= end, end <= dataSize else {
                throw CheckpointError(path, "tensor '\(name)': data_offsets [\(begin), \(end)] out of range (data is \(dataSize) bytes; file truncated?)")
            }
            let (count, overflow) = shape.reduce((1, false)) { acc, s in
                let (p, o) = acc.0.multipliedReportingOverflow(by: s); return (p, acc.1 || o)
            }
            guard !overflow, count.multipliedReportingOverflow(by: dtype.size).partialValue == end - begin else {
                throw CheckpointError(path, "tensor '\(name)': \(end - begin) bytes do not hold shape \(shape) of \(ds)")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, begin: begin, end: end)
        }
        let ordered = entries.sorted { ($0.value.begin, $0.value.end, $0.key) < ($1.value.begin, $1.value.end, $1.key) }
        var lastEnd = 0
        var lastName = ""
        for (name, e) in ordered where e.end > e.begin {
            guard e.begin >= lastEnd else {
                throw CheckpointError(path, "tensors '\(lastName)' and '\(name)' overlap in the data section")
            }
            lastEnd = e.end; lastName = name
        }
        self.entries = entries
        self.keys = ordered.map(\.key)
        self.metadata = meta
    }

    static func ints(_ a: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in a {
            if let i = v as? Int { out.append(i) }
            else if let d = v as? Double, d == d.rounded(), abs(d) < 9e15 { out.append(Int(d)) }
            else { return nil }
        }
        return out
    }

    public func info(_ key: String) -> (dtype: DType, shape: [Int])? {
        entries[key].map { ($0.dtype, $0.shape) }
    }

    private func entry(_ key: String) throws -> Entry {
        guard let e = entries[key] else { throw CheckpointError(sourcePath, "no tensor named '\(key)'") }
        return e
    }

    public func floatTensor(_ key: String) throws -> Tensor {
        let e = try entry(key)
        let count = Tensor.elementCount(e.shape)
        let src = file.base + dataStart + e.begin
        if e.dtype == .f32, Int(bitPattern: src) % MemoryLayout<Float>.alignment == 0, count > 0 {
            // Zero-copy: the tensor borrows the mapping (copy-on-write if ever written).
            let storage = TensorStorage(borrowing: src.assumingMemoryBound(to: Float.self), count: count, owner: file)
            return Tensor(shape: e.shape, storage: storage)
        }
        let t = Tensor(uninitializedShape: e.shape)
        e.dtype.toFloat(UnsafeRawPointer(src), count: count, into: t.storage.pointer)
        return t
    }

    public func intTensor(_ key: String) throws -> IntTensor {
        let e = try entry(key)
        let count = Tensor.elementCount(e.shape)
        var values = [Int](repeating: 0, count: count)
        e.dtype.toInt(UnsafeRawPointer(file.base + dataStart + e.begin), count: count, into: &values)
        return IntTensor(shape: e.shape, values)
    }
}

/// Writing safetensors files.
public enum SafeTensors {
    /// Writes `tensors` (float32 as F32, integers as I64) in the given order, atomically: the data goes to a
    /// temporary file in the same folder, is flushed, and is renamed over `path`, so a crash never leaves a
    /// half-written file under the final name.
    public static func write(_ tensors: [(String, StoredTensor)], metadata: [String: String] = [:], to path: String) throws {
        var seen = Set<String>()
        for (k, _) in tensors {
            guard seen.insert(k).inserted else { throw CheckpointError(path, "tensor name '\(k)' given twice") }
            guard k != "__metadata__" else { throw CheckpointError(path, "'__metadata__' is reserved") }
        }
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let m = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            parts.append("\"__metadata__\":{\(m.joined(separator: ","))}")
        }
        var offset = 0
        for (name, t) in tensors {
            let (dtype, bytes): (String, Int) = {
                switch t { case .float(let f): return ("F32", f.count * 4); case .int(let i): return ("I64", i.count * 8) }
            }()
            parts.append("\(jsonString(name)):{\"dtype\":\"\(dtype)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }  // pad so the data starts 8-aligned

        try AtomicFile.write(to: path) { out in
            var len = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: &len) { try out.write($0) }
            try headerBytes.withUnsafeBytes { try out.write($0) }
            for (_, t) in tensors {
                switch t {
                case .float(let f):
                    try f.withBuffer { try out.write(UnsafeRawBufferPointer($0)) }
                case .int(let i):
                    let v = i.values.map { Int64($0).littleEndian }
                    try v.withUnsafeBytes { try out.write($0) }
                }
            }
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
