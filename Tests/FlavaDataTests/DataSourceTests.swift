// Every data format on small fixtures made here (including a real tar written by the tar tool), malformed
// lines and missing files, the loader's determinism, resumption and bad-sample accounting, the synthetic
// world's splits, and PMD filtering.
import Testing
import Foundation
import FlavaKit
import TestSupport

private func makeImages(_ dir: String, count: Int) throws -> [String] {
    let world = SyntheticWorld(seed: 5, imageSize: 32)
    return try (0..<count).map { i in
        let name = String(format: "img%03d.png", i)
        try world.sample(i).image.savePNG(dir + "/" + name)
        return name
    }
}

private func drain(_ s: RecordStream) throws -> [RawRecord] {
    var out: [RawRecord] = []
    while let r = try s.next() { out.append(r) }
    return out
}

@Test func manifestsInJSONLCSVAndTSV() throws {
    let dir = TestPaths.temporaryDirectory().path
    let names = try makeImages(dir, count: 3)
    try (names.enumerated().map { #"{"image": "\#($0.element)", "caption": "caption \#($0.offset)"}"# }.joined(separator: "\n") + "\n")
        .write(toFile: dir + "/m.jsonl", atomically: true, encoding: .utf8)
    try ("file,text\n" + names.enumerated().map { "\($0.element),\"caption, with comma \($0.offset)\"" }.joined(separator: "\n"))
        .write(toFile: dir + "/m.csv", atomically: true, encoding: .utf8)
    try ("path\ttitle\n" + names.enumerated().map { "\($0.element)\tcaption \($0.offset)" }.joined(separator: "\n"))
        .write(toFile: dir + "/m.tsv", atomically: true, encoding: .utf8)
    for f in ["m.jsonl", "m.csv", "m.tsv"] {
        let recs = try drain(try ManifestSource(path: dir + "/" + f).stream(epoch: 0, seed: 0))
        #expect(recs.count == 3, "\(f)")
        #expect(recs[1].text?.contains("caption") == true)
        #expect(try recs[2].image!.load().width == 32)
    }
    let csv = try drain(try ManifestSource(path: dir + "/m.csv").stream(epoch: 0, seed: 0))
    #expect(csv[0].text == "caption, with comma 0")
    // Custom column names.
    try #"{"img_file": "img000.png", "alt": "x y z"}"#.write(toFile: dir + "/c.jsonl", atomically: true, encoding: .utf8)
    let custom = try drain(try ManifestSource(path: dir + "/c.jsonl", imageColumn: "img_file", textColumn: "alt").stream(epoch: 0, seed: 0))
    #expect(custom.first?.text == "x y z")
}

@Test func malformedManifestLinesNameFileAndLine() throws {
    let dir = TestPaths.temporaryDirectory().path
    try "{\"image\": \"a.png\", \"caption\": \"ok\"}\n{not json\n{\"caption\": 5}\n".write(toFile: dir + "/bad.jsonl", atomically: true, encoding: .utf8)
    let s = try ManifestSource(path: dir + "/bad.jsonl").stream(epoch: 0, seed: 0)
    let first = try s.next()
    #expect(first?.origin == dir + "/bad.jsonl:1")
    #expect { _ = try s.next() } throws: { "\($0)".contains("bad.jsonl:2: not a JSON object") }
    #expect { _ = try s.next() } throws: { "\($0)".contains("bad.jsonl:3") }
    // A missing image is reported when it is read, naming the file.
    #expect { _ = try first!.image!.load() } throws: { "\($0)".contains("a.png: no such file") }
    try "a,b\n1,2,3\n".write(toFile: dir + "/bad.csv", atomically: true, encoding: .utf8)
    #expect { _ = try drain(try ManifestSource(path: dir + "/bad.csv").stream(epoch: 0, seed: 0)) } throws: { "\($0)".contains("bad.csv:2") }
    #expect { _ = try ManifestSource(path: dir + "/x.parquet") } throws: { "\($0)".contains("unknown manifest format") }
}

@Test func webDatasetShardsWrittenByTar() throws {
    let dir = TestPaths.temporaryDirectory().path
    let names = try makeImages(dir, count: 4)
    for shard in 0..<2 {
        let sd = dir + "/s\(shard)"
        try FileManager.default.createDirectory(atPath: sd, withIntermediateDirectories: true)
        var members: [String] = []
        for i in 0..<2 {
            let key = String(format: "%06d", shard * 2 + i)
            try FileManager.default.copyItem(atPath: dir + "/" + names[shard * 2 + i], toPath: sd + "/\(key).png")
            if i == 0 { try "caption \(key)".write(toFile: sd + "/\(key).txt", atomically: true, encoding: .utf8) }
            else { try #"{"caption": "json caption \#(key)"}"#.write(toFile: sd + "/\(key).json", atomically: true, encoding: .utf8) }
            members += ["\(key).png", i == 0 ? "\(key).txt" : "\(key).json"]
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/tar")
        p.arguments = ["-cf", dir + String(format: "/shard-%04d.tar", shard), "-C", sd] + members
        try p.run(); p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }
    let src = try WebDatasetSource(pattern: dir + "/shard-{0000..0001}.tar")
    #expect(src.shards.count == 2)
    let recs = try drain(try src.stream(epoch: 0, seed: 0))
    #expect(recs.count == 4)
    #expect(Set(recs.compactMap(\.text)) == ["caption 000000", "json caption 000001", "caption 000002", "json caption 000003"])
    #expect(try recs.allSatisfy { try $0.image!.load().width == 32 })
    // Truncated shard: a clear error naming the shard.
    let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/shard-0000.tar"))
    try data.prefix(700).write(to: URL(fileURLWithPath: dir + "/cut.tar"))
    #expect { _ = try drain(try WebDatasetSource(pattern: dir + "/cut.tar").stream(epoch: 0, seed: 0)) } throws: { "\($0)".contains("cut.tar") }
    #expect { _ = try WebDatasetSource(pattern: dir + "/shard-{0000..0005}.tar") } throws: { "\($0)".contains("shard-0002.tar: no such shard") }
    #expect(expandBraces("a-{00..02}-{x,y}.tar") == ["a-00-x.tar", "a-00-y.tar", "a-01-x.tar", "a-01-y.tar", "a-02-x.tar", "a-02-y.tar"])
}

@Test func cocoImageFolderAndTextSources() throws {
    let dir = TestPaths.temporaryDirectory().path
    let names = try makeImages(dir, count: 2)
    let coco = #"{"images": [{"id": 1, "file_name": "\#(names[0])"}, {"id": 2, "file_name": "\#(names[1])"}], "annotations": [{"image_id": 1, "caption": "a"}, {"image_id": 1, "caption": "b"}, {"image_id": 2, "caption": "c"}]}"#
    try coco.write(toFile: dir + "/captions.json", atomically: true, encoding: .utf8)
    let recs = try drain(try COCOCaptionsSource(annotations: dir + "/captions.json", imageRoot: dir).stream(epoch: 0, seed: 0))
    #expect(recs.map(\.text) == ["a", "b", "c"])
    try #"{"images": [], "annotations": [{"image_id": 9, "caption": "x"}]}"#.write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
    #expect { _ = try COCOCaptionsSource(annotations: dir + "/bad.json", imageRoot: dir).stream(epoch: 0, seed: 0) } throws: { "\($0)".contains("annotations[0]") }

    for c in ["cats", "dogs"] {
        try FileManager.default.createDirectory(atPath: dir + "/folder/\(c)", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir + "/" + names[0], toPath: dir + "/folder/\(c)/x.png")
    }
    let folder = try ImageFolderSource(root: dir + "/folder")
    #expect(folder.classes == ["cats", "dogs"])
    #expect(try drain(try folder.stream(epoch: 0, seed: 0)).map(\.label) == [0, 1])

    try "first sentence\n\nsecond sentence\n".write(toFile: dir + "/t.txt", atomically: true, encoding: .utf8)
    try "{\"text\": \"json text\"}\n".write(toFile: dir + "/t.jsonl", atomically: true, encoding: .utf8)
    #expect(try drain(try TextSource(files: [dir + "/t.txt", dir + "/t.jsonl"]).stream(epoch: 0, seed: 0)).map(\.text)
            == ["first sentence", "second sentence", "json text"])
    try Data([0x61, 0xff, 0x0a]).write(to: URL(fileURLWithPath: dir + "/bin.txt"))
    #expect { _ = try drain(try TextSource(files: [dir + "/bin.txt"]).stream(epoch: 0, seed: 0)) } throws: { "\($0)".contains("bin.txt:1: not UTF-8") }
}

@Test func syntheticWorldIsDeterministicAndItsHeldOutSplitIsHonest() {
    let a = SyntheticWorld(seed: 3), b = SyntheticWorld(seed: 3), c = SyntheticWorld(seed: 4)
    #expect(a.sample(17).image == b.sample(17).image && a.sample(17).captions == b.sample(17).captions)
    #expect(a.sample(17).image != c.sample(17).image)
    for i in 0..<500 {
        let s = a.sample(i)
        for o in s.objects { #expect(!SyntheticWorld.heldOutCombinations.contains([o.color, o.shape]), "train scene \(i) shows a held-out combination") }
        let h = a.sample(i, split: .heldOut)
        #expect(SyntheticWorld.heldOutCombinations.contains([h.objects[0].color, h.objects[0].shape]))
        #expect(!s.captions.contains { $0.isEmpty } && !s.questions.isEmpty)
    }
    #expect(SyntheticWorld.classNames.count == 48)
    #expect(SyntheticWorld(seed: 0, imageSize: 96).sample(0).image.width == 96)
}

private func loader(_ source: DataSource, seed: UInt64, batch: Int = 4, resume: LoaderPosition = LoaderPosition()) throws
    -> DataLoader<String, [String]> {
    var o = LoaderOptions(batchSize: batch, shuffleBuffer: 16, seed: seed)
    o.epochs = 2
    return try DataLoader(source: source, options: o, resumeFrom: resume, transform: { r, g in
        guard let t = r.text, !t.isEmpty else { throw DataError("empty caption") }
        return "\(t)#\(g.next() % 1000)"
    }, collate: { items, _ in items })
}

@Test func loaderIsDeterministicResumableAndSkipsBadSamples() throws {
    let src = SyntheticSource(world: SyntheticWorld(seed: 1, imageSize: 16), kind: .text, length: 30)
    var all: [[String]] = []
    let l1 = try loader(src, seed: 9)
    var positions: [LoaderPosition] = []
    while let b = try l1.next() { all.append(b); positions.append(l1.position) }
    #expect(all.flatMap { $0 }.count == 60)   // two epochs of 30
    let l2 = try loader(src, seed: 9)
    var again: [[String]] = []
    while let b = try l2.next() { again.append(b) }
    #expect(all == again)
    let l3 = try loader(src, seed: 10)
    #expect(try l3.next() != all[0])
    // Resume after batch 5 (mid-epoch) and after batch 8 (next epoch): the same batches follow.
    for k in [4, 8] {
        let l = try loader(src, seed: 9, resume: positions[k])
        var rest: [[String]] = []
        while let b = try l.next() { rest.append(b) }
        #expect(rest == Array(all[(k + 1)...]), "resume after batch \(k + 1)")
    }
    // Bad samples: skipped and counted; too many fail with a message naming them.
    let dir = TestPaths.temporaryDirectory().path
    let lines = (0..<300).map { i in i % 50 == 0 ? "{\"caption\": \"\"}" : "{\"caption\": \"text \(i)\"}" }
    try lines.joined(separator: "\n").write(toFile: dir + "/few.jsonl", atomically: true, encoding: .utf8)
    let ok = try loader(try ManifestSource(path: dir + "/few.jsonl"), seed: 0, batch: 10)
    var n = 0
    while let b = try ok.next() { n += b.count }
    #expect(n == 2 * 294)
    #expect(ok.badSamples.bad == 12)
    let worse = (0..<300).map { i in i % 5 == 0 ? "{broken" : "{\"caption\": \"text \(i)\"}" }
    try worse.joined(separator: "\n").write(toFile: dir + "/many.jsonl", atomically: true, encoding: .utf8)
    let bad = try loader(try ManifestSource(path: dir + "/many.jsonl"), seed: 0, batch: 10)
    #expect { while try bad.next() != nil {} } throws: { "\($0)".contains("unusable") && "\($0)".contains("many.jsonl:1: not a JSON object") }
    try "".write(toFile: dir + "/empty.jsonl", atomically: true, encoding: .utf8)
    let empty = try loader(try ManifestSource(path: dir + "/empty.jsonl"), seed: 0)
    #expect { _ = try empty.next() } throws: { "\($0)".contains("empty") }
}

@Test func pmdFilterKeepsEnglishCaptionsWithEnoughWords() throws {
    let dir = TestPaths.temporaryDirectory().path
    let rows = [#"{"description": "a dog running on the beach", "title": "dog"}"#,
                #"{"description": "", "title": "two cats sleeping on a sofa"}"#,
                #"{"description": "cat", "title": "ok"}"#,
                #"{"description": "der Hund ist mit dem Ball im Park", "title": "Hund"}"#,
                #"{"description": "一只狗在海滩上奔跑", "title": "狗"}"#,
                #"{"image": "x.jpg"}"#]
    try rows.joined(separator: "\n").write(toFile: dir + "/in.jsonl", atomically: true, encoding: .utf8)
    let report = try PMDFilter(fields: ["description", "title"], minWords: 3).run(input: dir + "/in.jsonl", output: dir + "/out.jsonl")
    #expect(report.read == 6 && report.kept == 2)
    #expect(report.dropped["too short"] == 1 && report.dropped["not English"] == 2 && report.dropped["without any text field"] == 1)
    let kept = try String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8).split(separator: "\n")
    #expect(kept.count == 2 && kept[1].contains("two cats sleeping on a sofa"))
    #expect(EnglishDetector.isEnglish("a man riding a horse") && !EnglishDetector.isEnglish("un homme à cheval sur la plage"))
}

/// Releasing a loader while its thread is still producing stops it without touching freed memory (the thread
/// used to hold the loader unowned).
@Test func releasingABusyLoaderIsSafe() throws {
    let world = SyntheticWorld(seed: 0, imageSize: 32)
    for round in 0..<20 {
        var loader: DataLoader<Int, [Int]>? = try DataLoader(
            source: SyntheticSource(world: world, kind: .images, length: 1_000),
            options: LoaderOptions(batchSize: 4, shuffleBuffer: 8, seed: UInt64(round)),
            transform: { r, _ in (try r.image!.load()).width }, collate: { items, _ in items })
        if round % 2 == 1 { #expect(try loader?.next()?.count == 4) }
        loader = nil
        _ = loader
    }
}
