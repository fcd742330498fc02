// TensorBoard event files: CRC-32C against its standard check value, and records that read back.
import Testing
import Foundation
import FlavaKit
import TestSupport

@Test func crc32cMatchesTheStandardCheckValue() {
    #expect(CRC32C.checksum(Data("123456789".utf8)) == 0xE306_9283)
}

@Test func eventFilesAreWellFormedTFRecords() throws {
    let dir = TestPaths.temporaryDirectory().path
    let w = try TensorBoardWriter(directory: dir)
    w.scalars(["loss/mlm": 2.5, "eval/R@1": 0.25], step: 7)
    w.scalars(["loss/mlm": 2.0], step: 8)
    let data = try Data(contentsOf: URL(fileURLWithPath: w.path))
    var offset = 0, records: [Data] = []
    while offset < data.count {
        let lenBytes = data.subdata(in: offset..<(offset + 8))
        let len = Int(lenBytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let lenCRC = data.subdata(in: (offset + 8)..<(offset + 12)).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        #expect(lenCRC == CRC32C.masked(lenBytes))
        let payload = data.subdata(in: (offset + 12)..<(offset + 12 + len))
        let crc = data.subdata(in: (offset + 12 + len)..<(offset + 16 + len)).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        #expect(crc == CRC32C.masked(payload))
        records.append(payload)
        offset += 16 + len
    }
    #expect(records.count == 3)
    #expect(String(decoding: records[0], as: UTF8.self).contains("brain.Event:2"))
    #expect(String(decoding: records[1], as: UTF8.self).contains("loss/mlm"))
}
