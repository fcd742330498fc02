// safetensors and torch .bin reading/writing, against the golden tiny checkpoint and committed fixtures,
// plus every malformed-file case getting its error.
import Testing
import Foundation
import FlavaKit
import TestSupport

private let tinyModel = TestPaths.reference.appendingPathComponent("flava_tiny/model.safetensors").path

@Test func readsTheGoldenTinyCheckpointWithEveryKeyShapeAndValue() throws {
    let file = try SafeTensorsFile(path: tinyModel)
    #expect(file.keys.count == 182)
    let data = try Data(contentsOf: TestPaths.fixtures.appendingPathComponent("flava_tiny_checksums.json"))
    let expected = try JSONSerialization.jsonObject(with: data) as! [String: [String: Any]]
    #expect(Set(file.keys) == Set(expected.keys))
    for (key, e) in expected {
        let shape = (e["shape"] as! [Any]).map { ($0 as! NSNumber).intValue }
        #expect(file.info(key)?.shape == shape, "\(key)")
        let t = try file.floatTensor(key)
        var sum = 0.0
        for i in 0..<t.count { sum += Double(t[flat: i]) }
        let want = (e["sum"] as! NSNumber).doubleValue
        #expect(abs(sum - want) <= 1e-4 * max(1, abs(want)), "\(key): sum \(sum) vs \(want)")
        let first = (e["first"] as! [Any]).map { Float(($0 as! NSNumber).doubleValue) }
        #expect(Array(t.array.prefix(3)) == first, "\(key)")
    }
}

@Test func safetensorsWrittenHereReadBackIdentically() throws {
    let dir = TestPaths.temporaryDirectory()
    let path = dir.appendingPathComponent("round.safetensors").path
    var g = SeededGenerator(seed: 5)
    let a = Tensor.randomNormal([3, 7], using: &g), s = Tensor(scalar: 2.6592), empty = Tensor.zeros([0, 4])
    let ids = IntTensor(shape: [2, 2], [1, -100, Int(Int32.max) + 5, 0])
    try SafeTensors.write([("a", .float(a)), ("scalar", .float(s)), ("empty", .float(empty)), ("weird \"name\"", .int(ids))],
                          metadata: ["format": "pt"], to: path)
    let f = try SafeTensorsFile(path: path)
    #expect(try f.floatTensor("a").array == a.array)
    #expect(try f.floatTensor("scalar").shape == [])
    #expect(try f.floatTensor("scalar").scalarValue == 2.6592)
    #expect(try f.floatTensor("empty").shape == [0, 4])
    #expect(try f.intTensor("weird \"name\"") == ids)
    #expect(f.metadata["format"] == "pt")
    // No temporary file is left beside it.
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["round.safetensors"])
}

@Test func torchBinReadsIdenticallyToItsSafetensorsTwin() throws {
    let bin = try TorchCheckpoint(path: TestPaths.fixtures.appendingPathComponent("torch_state_dict.bin").path)
    let twin = try SafeTensorsFile(path: TestPaths.fixtures.appendingPathComponent("torch_state_dict.safetensors").path)
    #expect(Set(bin.keys) == Set(twin.keys))
    #expect(bin.keys.count == 9)
    for k in twin.keys {
        #expect(bin.info(k)?.shape == twin.info(k)?.shape, "\(k)")
        if twin.info(k)!.dtype == .i64 {
            #expect(try bin.intTensor(k) == twin.intTensor(k), "\(k)")
        } else {
            #expect(try bin.floatTensor(k).array == twin.floatTensor(k).array, "\(k)")
        }
    }
    #expect(bin.info("half")?.dtype == .f16)
    #expect(bin.info("bfloat")?.dtype == .bf16)
    #expect(bin.info("double")?.dtype == .f64)
}

@Test func torchLoaderRefusesCodeInThePickle() throws {
    let path = TestPaths.fixtures.appendingPathComponent("torch_malicious.bin").path
    #expect { try TorchCheckpoint(path: path) } throws: { e in
        "\(e)".contains("refusing to load global") && "\(e)".contains("system")
    }
}

// MARK: malformed files

private func writeBytes(_ bytes: [UInt8], name: String) -> String {
    let path = TestPaths.temporaryDirectory().appendingPathComponent(name).path
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

private func safetensorsBytes(header: String, data: [UInt8]) -> [UInt8] {
    let h = Array(header.utf8)
    var len = UInt64(h.count).littleEndian
    return withUnsafeBytes(of: &len) { Array($0) } + h + data
}

private func expectError(_ path: String, containing needle: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try openCheckpoint(path)
        Issue.record("no error for \(path)", sourceLocation: sourceLocation)
    } catch {
        let message = "\(error)"
        #expect(message.contains(needle), "error was: \(message)", sourceLocation: sourceLocation)
        #expect(!message.contains("\n"), "error is not one line: \(message)", sourceLocation: sourceLocation)
    }
}

@Test func malformedSafetensorsGetClearErrors() throws {
    let ok = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    let eight = [UInt8](repeating: 0, count: 8)
    expectError(writeBytes([1, 2, 3], name: "short.safetensors"), containing: "truncated")
    expectError(writeBytes(safetensorsBytes(header: ok, data: [0, 0, 0]), name: "trunc.safetensors"), containing: "out of range")
    var huge = UInt64(1 << 40).littleEndian
    expectError(writeBytes(withUnsafeBytes(of: &huge) { Array($0) } + [0], name: "absurd.safetensors"), containing: "absurd")
    var big = UInt64(1000).littleEndian
    expectError(writeBytes(withUnsafeBytes(of: &big) { Array($0) } + Array("{}".utf8), name: "cut.safetensors"), containing: "truncated")
    expectError(writeBytes(safetensorsBytes(header: "not json", data: []), name: "nojson.safetensors"), containing: "not a JSON")
    expectError(writeBytes(safetensorsBytes(header: #"{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#, data: eight),
                           name: "dtype.safetensors"), containing: "unknown dtype Q7")
    expectError(writeBytes(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight),
                           name: "overlap.safetensors"), containing: "overlap")
    expectError(writeBytes(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight),
                           name: "size.safetensors"), containing: "do not hold shape")
    expectError(writeBytes(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight),
                           name: "neg.safetensors"), containing: "shape")
    expectError("/nonexistent/model.safetensors", containing: "no such file")
}

@Test func malformedTorchFilesGetClearErrors() throws {
    let good = try Data(contentsOf: TestPaths.fixtures.appendingPathComponent("torch_state_dict.bin"))
    expectError(writeBytes(Array(good.prefix(good.count / 2)), name: "half.bin"), containing: "zip")
    expectError(writeBytes(Array(good.prefix(100)), name: "tiny.bin"), containing: "zip")
    expectError(writeBytes([0x80, 0x02, 0x8a, 0x0a], name: "legacy.bin"), containing: "legacy")
    expectError(writeBytes(Array("hello world, not a checkpoint".utf8), name: "text.bin"), containing: "not a PyTorch checkpoint")
}

@Test func mmapBackedTensorsAreCopiedBeforeWriting() throws {
    let file = try SafeTensorsFile(path: tinyModel)
    let t = try file.floatTensor("flava.logit_scale")
    #expect(!t.storage.isOwned)
    var u = t
    u[flat: 0] = 42
    #expect(u.storage.isOwned)
    #expect(try file.floatTensor("flava.logit_scale").scalarValue != 42)
}
