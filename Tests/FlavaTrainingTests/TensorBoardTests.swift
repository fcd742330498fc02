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
    w.scalars(["loss/mlm": 1.5], step: -3)
    let data = try Data(contentsOf: URL(fileURLWithPath: w.path))
    let records = try TFRecordReader.records(in: data)
    #expect(records.count == 4)
    // A negative step is protobuf's ten-byte int64 varint.
    #expect(records[3].range(of: Data([0x10, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])) != nil)
    // Truncation and corruption are errors naming the offset.
    #expect { try TFRecordReader.records(in: data.dropLast()) } throws: { "\($0)".contains("truncated") }
    var corrupt = data; corrupt[20] ^= 0xff
    #expect { try TFRecordReader.records(in: corrupt) } throws: { "\($0)".contains("checksum") }
    #expect(String(decoding: records[0], as: UTF8.self).contains("brain.Event:2"))
    #expect(String(decoding: records[1], as: UTF8.self).contains("loss/mlm"))
}
