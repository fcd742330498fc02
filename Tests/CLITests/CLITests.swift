// The flava command as a user meets it: results on good input, one-line errors and non-zero exits on bad.
import Testing
import Foundation
import FlavaKit
import TestSupport

private let tinyDir = TestPaths.reference.appendingPathComponent("flava_tiny").path

@Test func embedWritesSafetensorsAndJSON() throws {
    let dir = TestPaths.temporaryDirectory().path
    let img = RGBImage(width: 40, height: 30, fill: (200, 30, 30))
    try img.savePNG(dir + "/red.png")
    let r = try runFlava(["embed", "--model", tinyDir, "--image", dir + "/red.png", "--text", "a red square",
                          "--output", dir + "/e.safetensors", "--hidden-states"])
    #expect(r.status == 0, "\(r.err)")
    let f = try SafeTensorsFile(path: dir + "/e.safetensors")
    #expect(f.info("image_embeds")?.shape == [1, 32])
    #expect(f.info("text_embeds")?.shape == [1, 32])
    #expect(f.info("image_hidden")?.shape == [1, 17, 48])
    #expect(f.info("multimodal_hidden")?.shape[1] == 1 + 17 + (f.info("text_hidden")!.shape[1]))
    let norm = try f.floatTensor("image_embeds").array.reduce(0) { $0 + $1 * $1 }
    #expect(abs(norm - 1) < 1e-5)
    let j = try runFlava(["embed", "--model", tinyDir, "--text", "hello", "--output", dir + "/e.json", "--format", "json"])
    #expect(j.status == 0)
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/e.json"))) as! [String: Any]
    #expect((json["text_embeds"] as! [[Double]]).first?.count == 32)
}

private func expectOneLineFailure(_ args: [String], _ needle: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let r = try runFlava(args)
    #expect(r.status != 0, sourceLocation: sourceLocation)
    let lines = r.err.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    #expect(lines.count == 1, "stderr: \(r.err)", sourceLocation: sourceLocation)
    #expect(r.err.contains(needle), "stderr: \(r.err)", sourceLocation: sourceLocation)
    #expect(!r.err.contains("Fatal error") && !r.err.contains("Stack dump"), sourceLocation: sourceLocation)
}

@Test func badInputGivesOneLineErrors() throws {
    let dir = TestPaths.temporaryDirectory().path
    try expectOneLineFailure(["embed", "--model", "/nonexistent", "--text", "x", "--output", dir + "/o.safetensors"], "no such folder")
    try expectOneLineFailure(["embed", "--model", tinyDir, "--image", dir + "/missing.png", "--output", dir + "/o.safetensors"], "no such file")
    try Data("not an image".utf8).write(to: URL(fileURLWithPath: dir + "/bad.jpg"))
    try expectOneLineFailure(["embed", "--model", tinyDir, "--image", dir + "/bad.jpg", "--output", dir + "/o.safetensors"], "bad.jpg")
    try expectOneLineFailure(["embed", "--model", tinyDir, "--output", dir + "/o.safetensors"], "at least one")
    try expectOneLineFailure(["embed", "--model", tinyDir, "--text", "x", "--output", "/nonexistent/dir/o.safetensors"], "does not exist")
    try expectOneLineFailure(["inspect", TestPaths.fixtures.appendingPathComponent("torch_malicious.bin").path], "refusing")
    #expect(!FileManager.default.fileExists(atPath: dir + "/o.safetensors"))
}

@Test func everyCommandHasHelp() throws {
    for cmd in [["--help"], ["embed", "--help"], ["inspect", "--help"]] {
        let r = try runFlava(cmd)
        #expect(r.status == 0)
        #expect(r.out.contains("USAGE") || r.out.contains("Usage"), "\(cmd)")
    }
}
