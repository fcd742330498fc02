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
    // Hostile config.json fields (ConfigValidationTests sweeps every one in process): one line, non-zero exit.
    let model = dir + "/hostile"
    try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
    for name in ["model.safetensors", "vocab.txt"] {
        try FileManager.default.createSymbolicLink(atPath: model + "/" + name, withDestinationPath: tinyDir + "/" + name)
    }
    let config = try String(contentsOfFile: tinyDir + "/config.json", encoding: .utf8)
    for (field, replacement, needle) in [("\"num_attention_heads\": 4", "\"num_attention_heads\": 0", "num_attention_heads"),
                                         ("\"patch_size\": 8", "\"patch_size\": null", "image_config.patch_size"),
                                         ("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1000000000", "num_hidden_layers")] {
        try config.replacingOccurrences(of: field, with: replacement).write(toFile: model + "/config.json", atomically: true, encoding: .utf8)
        for command in [["embed", "--model", model, "--text", "x", "--output", dir + "/o.safetensors"],
                        ["classify", "--model", model, "--image", dir + "/bad.jpg", "--labels", "a,b"]] {
            try expectOneLineFailure(command, needle)
        }
    }
    // A vocabulary larger than the model's embedding table.
    try config.write(toFile: model + "/config.json", atomically: true, encoding: .utf8)
    try FileManager.default.removeItem(atPath: model + "/vocab.txt")
    try ((0..<30600).map { "t\($0)" } + ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]).joined(separator: "\n")
        .write(toFile: model + "/vocab.txt", atomically: true, encoding: .utf8)
    try expectOneLineFailure(["embed", "--model", model, "--text", "x", "--output", dir + "/o.safetensors"], "not this model's vocabulary")
}

@Test func everyCommandHasHelp() throws {
    for cmd in [["--help"], ["embed", "--help"], ["inspect", "--help"]] {
        let r = try runFlava(cmd)
        #expect(r.status == 0)
        #expect(r.out.contains("USAGE") || r.out.contains("Usage"), "\(cmd)")
    }
}

@Test func tokenizerEncodeMatchesTheReferenceFormat() throws {
    let vocab = tinyDir + "/vocab.txt"
    let r = try runFlava(["tokenizer", "encode", "--vocab", vocab, "--max-length", "8", "A photo of a cat"])
    #expect(r.status == 0, "\(r.err)")
    let obj = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
    #expect(obj["ids"] as! [Int] == [101, 1037, 6302, 1997, 1037, 4937, 102, 0])
    #expect(obj["attention_mask"] as! [Int] == [1, 1, 1, 1, 1, 1, 1, 0])
    #expect(obj["tokens"] as! [String] == ["[CLS]", "a", "photo", "of", "a", "cat", "[SEP]", "[PAD]"])
    // Lines of standard input, no padding without --max-length.
    let s = try runFlava(["tokenizer", "encode", "--vocab", vocab], input: "hello world\nsecond line\n")
    let lines = s.out.split(separator: "\n")
    #expect(lines.count == 2)
    let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
    #expect((first["ids"] as! [Int]).first == 101 && (first["ids"] as! [Int]).last == 102)
    // Pairs get token type 1.
    let p = try runFlava(["tokenizer", "encode", "--vocab", vocab, "--pair", "yes", "is it"])
    let pobj = try JSONSerialization.jsonObject(with: Data(p.out.utf8)) as! [String: Any]
    #expect(pobj["token_type_ids"] as! [Int] == [0, 0, 0, 0, 1, 1])
}

@Test func tokenizerErrorsAreOneLine() throws {
    let dir = TestPaths.temporaryDirectory().path
    try expectOneLineFailure(["tokenizer", "encode", "--vocab", dir + "/none.txt", "x"], "cannot read")
    let r = try runFlava(["tokenizer", "encode", "--vocab", tinyDir + "/vocab.txt"], input: String(decoding: [0xff, 0xfe, 0x41], as: UTF8.self))
    #expect(r.status == 0)   // invalid bytes were already replaced by the decoding above; real non-UTF-8 below
    let bad = dir + "/bad.txt"
    try Data([0xff, 0xfe, 0x41, 0x0a]).write(to: URL(fileURLWithPath: bad))
    try expectOneLineFailure(["tokenizer", "train", "--input", bad, "--vocab-size", "50", "--output", dir + "/v.txt"], "not UTF-8")
    try expectOneLineFailure(["tokenizer", "train", "--vocab-size", "50", "--output", dir + "/v.txt"], "--input")
}

@Test func tokenizerTrainWritesAVocabulary() throws {
    let dir = TestPaths.temporaryDirectory().path
    let corpus = (0..<200).map { ["a red circle", "two blue squares", "a green triangle above a circle"][$0 % 3] }.joined(separator: "\n")
    try corpus.write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
    let r = try runFlava(["tokenizer", "train", "--input", dir + "/corpus.txt", "--vocab-size", "60", "--output", dir + "/vocab.txt"])
    #expect(r.status == 0, "\(r.err)")
    let vocab = try String(contentsOfFile: dir + "/vocab.txt", encoding: .utf8).split(separator: "\n")
    #expect(vocab.count <= 60 && vocab.contains("circle"))
    let e = try runFlava(["tokenizer", "encode", "--vocab", dir + "/vocab.txt", "a red circle"])
    #expect(e.out.contains("\"circle\""))
}

@Test func codebookTrainEncodeAndReconstruct() throws {
    let dir = TestPaths.temporaryDirectory().path
    let cfg = #"{"codebook": {"vocab_size": 64, "hidden_size": 4}, "image_size": 32, "batch_size": 8, "kmeans_images": 16, "eval_images": 8, "warmup_steps": 2}"#
    try Data(cfg.utf8).write(to: URL(fileURLWithPath: dir + "/cb.json"))
    let r = try runFlava(["codebook", "train", "--config", dir + "/cb.json", "--steps", "4", "--eval-every", "2",
                          "--output", dir + "/cb", "--summary", dir + "/summary.json"])
    #expect(r.status == 0, "\(r.err)")
    #expect(r.out.contains("psnr_db"))
    let s = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/summary.json"))) as! [String: Any]
    #expect((s["vocab_size"] as? Int) == 64)
    #expect(((s["psnr_db"] as? Double) ?? 0) > 5)
    #expect(((s["codes_used"] as? Int) ?? 0) >= 1)
    #expect(((s["perplexity"] as? Double) ?? 0) >= 1)
    for f in ["config.json", "model.safetensors", "decoder.safetensors", "metrics.jsonl", "report.svg", "reconstructions.png"] {
        #expect(FileManager.default.fileExists(atPath: dir + "/cb/" + f), "\(f)")
    }
    #expect(try String(contentsOfFile: dir + "/cb/metrics.jsonl", encoding: .utf8).split(separator: "\n").count == 4)

    // Encode: JSON tokens at the training side (32 → 4×4), safetensors, and a reconstruction picture.
    try RGBImage(width: 50, height: 40, fill: (200, 30, 30)).savePNG(dir + "/red.png")
    try RGBImage(width: 32, height: 32, fill: (20, 30, 220)).savePNG(dir + "/blue.png")
    let e = try runFlava(["codebook", "encode", "--codebook", dir + "/cb", "--image", dir + "/red.png", dir + "/blue.png",
                          "--reconstruct", dir + "/recon.png"])
    #expect(e.status == 0, "\(e.err)")
    let json = try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as! [String: Any]
    #expect((json["image_size"] as? Int) == 32)
    let images = json["images"] as! [[String: Any]]
    #expect(images.count == 2)
    let grid = images[0]["tokens"] as! [[Int]]
    #expect(grid.count == 4 && grid.allSatisfy { $0.count == 4 && $0.allSatisfy { (0..<64).contains($0) } })
    let picture = try RGBImage.load(dir + "/recon.png")
    #expect(picture.width > 4 * 128)
    let st = try runFlava(["codebook", "encode", "--codebook", dir + "/cb", "--image", dir + "/red.png", "--output", dir + "/t.safetensors"])
    #expect(st.status == 0, "\(st.err)")
    let f = try SafeTensorsFile(path: dir + "/t.safetensors")
    #expect(try f.intTensor("tokens").values == grid.flatMap { $0 })
    #expect(f.metadata["image_size"] == "32")

    // Bad input: one line, non-zero exit, nothing half-written.
    try expectOneLineFailure(["codebook", "encode", "--codebook", dir + "/nowhere", "--image", dir + "/red.png"], "nowhere")
    try Data("not an image".utf8).write(to: URL(fileURLWithPath: dir + "/bad.png"))
    try expectOneLineFailure(["codebook", "encode", "--codebook", dir + "/cb", "--image", dir + "/bad.png"], "bad.png")
    try expectOneLineFailure(["codebook", "encode", "--codebook", dir + "/cb", "--image", dir + "/red.png", "--image-size", "30"], "multiple of 8")
    try Data("{\"codebook\": {\"vocab_size\": \"many\"}}".utf8).write(to: URL(fileURLWithPath: dir + "/badcfg.json"))
    try expectOneLineFailure(["codebook", "train", "--config", dir + "/badcfg.json", "--output", dir + "/x"], "vocab_size")
    try expectOneLineFailure(["codebook", "train", "--config", dir + "/missing.json", "--output", dir + "/x"], "no such file")
    try expectOneLineFailure(["codebook", "train", "--image-size", "36", "--output", dir + "/x"], "multiple of 8")
    try Data().write(to: URL(fileURLWithPath: dir + "/empty.jsonl"))
    try expectOneLineFailure(["codebook", "train", "--config", dir + "/cb.json", "--images", dir + "/empty.jsonl", "--held-out", dir + "/empty.jsonl",
                              "--steps", "2", "--output", dir + "/x"], "empty.jsonl")
    #expect(!FileManager.default.fileExists(atPath: dir + "/x/model.safetensors"))
    let help = try runFlava(["codebook", "train", "--help"])
    #expect(help.status == 0 && help.out.contains("USAGE"))
}

@Test func dataExportWritesAnImageFolderAndACaptionsManifest() throws {
    let dir = TestPaths.temporaryDirectory().path + "/export"
    let r = try runFlava(["data", "export", "--split", "held_out", "--count", "5", "--label", "shape", "--image-size", "32", "--output", dir])
    #expect(r.status == 0, "\(r.err)")
    let folders = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0 != "captions.jsonl" }.sorted()
    #expect(!folders.isEmpty && folders.allSatisfy { SyntheticWorld.shapes.contains($0) })
    let lines = try String(contentsOfFile: dir + "/captions.jsonl", encoding: .utf8).split(separator: "\n")
    #expect(lines.count >= 5)
    for line in lines {
        let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        let image = o["image"] as! String, label = o["label"] as! Int
        #expect(FileManager.default.fileExists(atPath: dir + "/" + image))
        #expect(folders[label] == image.split(separator: "/").first.map(String.init))   // ImageFolder numbering
        #expect(!(o["caption"] as! String).isEmpty)
    }
    let img = try RGBImage.load(dir + "/" + ((try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any])["image"] as! String))
    #expect(img.width == 32)
    // The records read back as a labelled manifest and as an ImageFolder.
    var n = 0
    let stream = try ManifestSource(path: dir + "/captions.jsonl", labelColumn: "label").stream(epoch: 0, seed: 0)
    while let rec = try stream.next() { #expect(rec.label != nil && rec.text != nil); n += 1 }
    #expect(n == lines.count)
    try expectOneLineFailure(["data", "export", "--split", "validation", "--output", dir], "--split")
}

@Test func codebookTrainsOnAnImageManifest() throws {
    let dir = TestPaths.temporaryDirectory().path
    var lines: [String] = []
    for i in 0..<12 {
        var img = RGBImage(width: 40, height: 40, fill: (UInt8(20 * i), 100, UInt8(255 - 20 * i)))
        for y in 10..<30 { for x in 10..<(10 + i) { img.pixels[(y * 40 + x) * 3] = 255 } }
        try img.savePNG(dir + "/img\(i).png")
        lines.append(#"{"image": "img\#(i).png", "caption": "an image"}"#)
    }
    try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/images.jsonl", atomically: true, encoding: .utf8)
    let cfg = #"{"codebook": {"vocab_size": 16, "hidden_size": 4}, "image_size": 32, "batch_size": 4, "kmeans_images": 8, "eval_images": 4}"#
    try Data(cfg.utf8).write(to: URL(fileURLWithPath: dir + "/cb.json"))
    let r = try runFlava(["codebook", "train", "--config", dir + "/cb.json", "--images", dir + "/images.jsonl",
                          "--held-out", dir + "/images.jsonl", "--steps", "3", "--output", dir + "/cb", "--summary", dir + "/s.json"])
    #expect(r.status == 0, "\(r.err)")
    #expect(r.out.contains("images from manifest"))
    let s = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/s.json"))) as! [String: Any]
    #expect((s["held_out_images"] as? Int) == 4)
    #expect(try FlavaCheckpoint.loadCodebook(dir + "/cb").config.vocabSize == 16)
}

@Test func int8PrecisionOnTheCommands() throws {
    let dir = TestPaths.temporaryDirectory().path
    try RGBImage(width: 40, height: 30, fill: (30, 200, 30)).savePNG(dir + "/green.png")
    var embeds: [String: [Float]] = [:]
    for p in ["fp32", "int8"] {
        let r = try runFlava(["embed", "--model", tinyDir, "--image", dir + "/green.png", "--text", "a green circle",
                              "--output", dir + "/\(p).safetensors", "--precision", p])
        #expect(r.status == 0, "\(r.err)")
        let f = try SafeTensorsFile(path: dir + "/\(p).safetensors")
        embeds[p] = try f.floatTensor("image_embeds").array + f.floatTensor("text_embeds").array
    }
    let (a, b) = (embeds["fp32"]!, embeds["int8"]!)
    let half = a.count / 2
    for part in [0..<half, half..<a.count] {   // unit vectors: the cosine is the dot product
        let cos = part.reduce(0) { $0 + Double(a[$1]) * Double(b[$1]) }
        #expect(cos >= 0.99, "cosine \(cos)")
    }
    let s = try runFlava(["bench", "--model", tinyDir, "--what", "multimodal", "--batch-size", "2", "--iterations", "2",
                          "--precision", "int8", "--summary", dir + "/bench.json"])
    #expect(s.status == 0, "\(s.err)")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/bench.json"))) as! [String: Any]
    #expect(json["precision"] as? String == "int8")
    #expect(((json["items_per_second"] as? Double) ?? 0) > 0 && ((json["peak_rss_bytes"] as? Int) ?? 0) > 0)
    try expectOneLineFailure(["embed", "--model", tinyDir, "--text", "x", "--output", dir + "/o.safetensors", "--precision", "int4"], "int4")
}
