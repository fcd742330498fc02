// TensorBoard event files (`events.out.tfevents.*`), so `tensorboard --logdir RUN` shows a run's curves:
// TFRecord framing (length, masked CRC-32C, payload, masked CRC-32C) around hand-encoded `Event` protocol
// buffers carrying scalar summaries. No protobuf dependency: the three messages involved are tiny.
import Foundation
import FlavaData

/// Writes scalar summaries to a TensorBoard event file.
public final class TensorBoardWriter {
    public let path: String
    let handle: FileHandle

    /// Creates `events.out.tfevents.TIME.HOST` in `directory`.
    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")
        path = directory + "/events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host)"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let h = FileHandle(forWritingAtPath: path) else { throw CocoaError(.fileWriteNoPermission) }
        handle = h
        var event = Data()
        TensorBoardWriter.fixed64(&event, field: 1, Date().timeIntervalSince1970)
        TensorBoardWriter.bytes(&event, field: 3, Data("brain.Event:2".utf8))
        write(event)
    }

    deinit { try? handle.close() }

    /// Appends scalars for one step (tags like "loss/mlm", "eval/image_to_text_R@1").
    public func scalars(_ values: [String: Double], step: Int) {
        var summary = Data()
        for (tag, v) in values.sorted(by: { $0.key < $1.key }) where v.isFinite {
            var value = Data()
            TensorBoardWriter.bytes(&value, field: 1, Data(tag.utf8))
            value.append(0x15)   // field 2, fixed32: simple_value
            withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { value.append(contentsOf: $0) }
            TensorBoardWriter.bytes(&summary, field: 1, value)
        }
        var event = Data()
        TensorBoardWriter.fixed64(&event, field: 1, Date().timeIntervalSince1970)
        // field 2, int64 step as a varint (a negative step is its two's complement, as protobuf encodes int64)
        event.append(0x10); TensorBoardWriter.varint(&event, UInt64(bitPattern: Int64(step)))
        TensorBoardWriter.bytes(&event, field: 5, summary)
        write(event)
    }

    func write(_ payload: Data) {
        var record = Data()
        let len = UInt64(payload.count).littleEndian
        let lenBytes = withUnsafeBytes(of: len) { Data($0) }
        record.append(lenBytes)
        withUnsafeBytes(of: CRC32C.masked(lenBytes).littleEndian) { record.append(contentsOf: $0) }
        record.append(payload)
        withUnsafeBytes(of: CRC32C.masked(payload).littleEndian) { record.append(contentsOf: $0) }
        handle.write(record)
    }

    static func varint(_ d: inout Data, _ v: UInt64) {
        var v = v
        while v >= 0x80 { d.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        d.append(UInt8(v))
    }
    static func bytes(_ d: inout Data, field: Int, _ b: Data) {
        varint(&d, UInt64(field << 3 | 2)); varint(&d, UInt64(b.count)); d.append(b)
    }
    static func fixed64(_ d: inout Data, field: Int, _ v: Double) {
        varint(&d, UInt64(field << 3 | 1))
        withUnsafeBytes(of: v.bitPattern.littleEndian) { d.append(contentsOf: $0) }
    }
}

/// Reads TFRecord framing (what `TensorBoardWriter` writes): each record is a little-endian UInt64 length, its
/// masked CRC-32C, the payload and the payload's masked CRC-32C.
public enum TFRecordReader {
    /// The payloads of every record; a truncated record or a wrong checksum is an error naming the offset.
    public static func records(in data: Data) throws -> [Data] {
        let bytes = [UInt8](data)
        func word<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            (0..<MemoryLayout<T>.size).reduce(T(0)) { $0 | T(bytes[at + $1]) << (8 * $1) }
        }
        var out: [Data] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 12 else { throw DataError("TFRecord at byte \(offset): truncated length") }
            let lengthBytes = Data(bytes[offset..<(offset + 8)])
            guard word(offset + 8, UInt32.self) == CRC32C.masked(lengthBytes) else {
                throw DataError("TFRecord at byte \(offset): length checksum mismatch")
            }
            let length = word(offset, UInt64.self)
            guard length <= UInt64(bytes.count - offset - 12), bytes.count - offset - 12 - Int(length) >= 4 else {
                throw DataError("TFRecord at byte \(offset): truncated payload of \(length) bytes")
            }
            let start = offset + 12, end = start + Int(length)
            let payload = Data(bytes[start..<end])
            guard word(end, UInt32.self) == CRC32C.masked(payload) else {
                throw DataError("TFRecord at byte \(offset): payload checksum mismatch")
            }
            out.append(payload)
            offset = end + 4
        }
        return out
    }
}

/// CRC-32C (Castagnoli), as TFRecord uses, and its masked form.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public static func checksum(_ data: Data) -> UInt32 {
        var c: UInt32 = 0xffff_ffff
        for b in data { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xffff_ffff
    }

    /// TFRecord's mask: rotate right by 15 and add a constant.
    public static func masked(_ data: Data) -> UInt32 {
        let c = checksum(data)
        return ((c >> 15) | (c << 17)) &+ 0xa282_ead8
    }
}
