// flava eval zero-shot / retrieval, classify and match on the golden tiny model: they run, report in tables
// and JSON, and bad input is a one-line error.
import Testing
import Foundation
import FlavaKit
import TestSupport

private let tinyDir = TestPaths.reference.appendingPathComponent("flava_tiny").path

private func makeFolder(_ dir: String) throws {
    let world = SyntheticWorld(seed: 3, imageSize: 32)
    var lines: [String] = []
    var karpathy: [[String: Any]] = []
    for i in 0..<12 {
        let s = world.sample(i)
        let cls = ["circle", "square", "triangle", "diamond", "cross", "star"][s.objects[0].shape]
        try FileManager.default.createDirectory(atPath: "\(dir)/folder/\(cls)", withIntermediateDirectories: true)
        try s.image.savePNG("\(dir)/folder/\(cls)/\(i).png")
        lines.append(#"{"image": "folder/\#(cls)/\#(i).png", "caption": "\#(s.captions[0])"}"#)
        lines.append(#"{"image": "folder/\#(cls)/\#(i).png", "caption": "\#(s.captions[1])"}"#)
        karpathy.append(["filepath": cls, "filename": "\(i).png", "split": i < 8 ? "test" : "train",
                         "sentences": s.captions.prefix(2).map { ["raw": $0] }])
    }
    try lines.joined(separator: "\n").write(toFile: dir + "/pairs.jsonl", atomically: true, encoding: .utf8)
    try JSONSerialization.data(withJSONObject: ["images": karpathy]).write(to: URL(fileURLWithPath: dir + "/karpathy.json"))
}

@Test func evalCommandsReportTablesAndSummaries() throws {
    let dir = TestPaths.temporaryDirectory().path
    try makeFolder(dir)
    let z = try runFlava(["eval", "zero-shot", "--model", tinyDir, "--folder", dir + "/folder", "--templates", "plain", "--summary", dir + "/z.json"])
    #expect(z.status == 0, "\(z.err)")
    #expect(z.out.contains("top-1 accuracy"))
    let zs = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/z.json"))) as! [String: Double]
    #expect(zs["top1_accuracy"] != nil && zs["chance"]! > 0)
    let r = try runFlava(["eval", "retrieval", "--model", tinyDir, "--manifest", dir + "/pairs.jsonl", "--summary", dir + "/r.json"])
    #expect(r.status == 0, "\(r.err)")
    #expect(r.out.contains("12 images, 24 captions"))
    let rs = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/r.json"))) as! [String: Double]
    for k in ["image_to_text_R@1", "image_to_text_R@5", "image_to_text_R@10", "text_to_image_R@1", "text_to_image_R@5", "text_to_image_R@10"] {
        #expect(rs[k] != nil, "\(k)")
    }
    #expect(rs.filter { $0.key.contains("R@") }.values.allSatisfy { (0...1).contains($0) })
    #expect(rs["text_to_image_R@10"]! >= rs["text_to_image_R@5"]! && rs["text_to_image_R@5"]! >= rs["text_to_image_R@1"]!)
    let k = try runFlava(["eval", "retrieval", "--model", tinyDir, "--karpathy", dir + "/karpathy.json", "--image-root", dir + "/folder"])
    #expect(k.status == 0 && k.out.contains("8 images, 16 captions"), "\(k.err)")
    let firstClass = try FileManager.default.contentsOfDirectory(atPath: dir + "/folder").sorted()[0]
    let image = dir + "/folder/\(firstClass)/" + (try FileManager.default.contentsOfDirectory(atPath: dir + "/folder/" + firstClass).sorted()[0])
    let c = try runFlava(["classify", "--model", tinyDir, "--image", image, "--labels", "a circle,a square,a star"])
    #expect(c.status == 0 && c.out.contains("probability"), "\(c.err)")
    let m = try runFlava(["match", "--model", tinyDir, "--image", image, "--text", "a red circle", "--text", "two blue squares"])
    #expect(m.status == 0 && m.out.contains("match probability"), "\(m.err)")
}

@Test func evalCommandsRejectBadInputInOneLine() throws {
    let dir = TestPaths.temporaryDirectory().path
    for args in [["eval", "zero-shot", "--model", tinyDir, "--folder", dir + "/none"],
                 ["eval", "retrieval", "--model", tinyDir, "--karpathy", dir + "/none.json", "--image-root", dir],
                 ["eval", "retrieval", "--model", tinyDir],
                 ["classify", "--model", tinyDir, "--image", dir + "/none.png", "--labels", "a,b"]] {
        let r = try runFlava(args)
        #expect(r.status != 0, "\(args)")
        #expect(r.err.split(separator: "\n").count == 1, "\(args): \(r.err)")
    }
}

@Test func linearProbeAndRetrieveRun() throws {
    let dir = TestPaths.temporaryDirectory().path
    let world = SyntheticWorld(seed: 4, imageSize: 32)
    for (split, range) in [("train", 0..<24), ("val", 24..<36), ("test", 36..<48)] {
        for i in range {
            let s = world.sample(i)
            let name = SyntheticWorld.shapes[s.objects[0].shape % 2]   // two classes
            try FileManager.default.createDirectory(atPath: "\(dir)/\(split)/\(name)", withIntermediateDirectories: true)
            try s.image.savePNG("\(dir)/\(split)/\(name)/\(i).png")
        }
    }
    let lp = try runFlava(["eval", "linear-probe", "--model", tinyDir, "--train", dir + "/train", "--validation", dir + "/val",
                           "--test", dir + "/test", "--cache", dir + "/cache", "--iterations", "50", "--summary", dir + "/lp.json"])
    #expect(lp.status == 0, "\(lp.err)")
    #expect(FileManager.default.fileExists(atPath: dir + "/cache/train.safetensors"))
    let s = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/lp.json"))) as! [String: Double]
    #expect((0...1).contains(s["test_accuracy"]!))
    let folder = dir + "/test/" + (try FileManager.default.contentsOfDirectory(atPath: dir + "/test").sorted()[0])
    let first = try runFlava(["retrieve", "--model", tinyDir, "--folder", folder, "--text", "a red circle", "--top-k", "2"])
    #expect(first.status == 0 && first.out.contains("indexed"), "\(first.err)")
    let second = try runFlava(["retrieve", "--model", tinyDir, "--folder", folder, "--text", "a blue square", "--top-k", "2"])
    #expect(second.status == 0 && !second.out.contains("indexed") && second.out.contains("rank"))   // the index is reused
    let bad = try runFlava(["retrieve", "--model", tinyDir, "--folder", dir + "/none", "--text", "x"])
    #expect(bad.status != 0 && bad.err.split(separator: "\n").count == 1)
}

@Test func finetuneAndPredictRun() throws {
    let dir = TestPaths.temporaryDirectory().path
    let ft = try runFlava(["finetune", "--model", tinyDir, "--output", dir + "/ft", "--steps", "3", "--batch-size", "4", "--summary", dir + "/ft.json"])
    #expect(ft.status == 0, "\(ft.err)")
    #expect(ft.out.contains("VQA accuracy"))
    let s = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/ft.json"))) as! [String: Double]
    #expect((0...1).contains(s["vqa_accuracy_held_out"]!))
    try SyntheticWorld(seed: 1, imageSize: 32).sample(0).image.savePNG(dir + "/q.png")
    let p = try runFlava(["predict", "--model", dir + "/ft", "--image", dir + "/q.png", "--question", "what color is the circle?"])
    #expect(p.status == 0 && p.out.contains("answer"), "\(p.err)")
    let bad = try runFlava(["predict", "--model", tinyDir, "--image", dir + "/q.png", "--question", "x"])
    #expect(bad.status != 0 && bad.err.contains("answers.json"))
    let unknown = try runFlava(["finetune", "--model", tinyDir, "--task", "bogus"])
    #expect(unknown.status != 0 && unknown.err.contains("unknown task"))
}

@Test func glueFinetuneRunsAndScores() throws {
    let dir = TestPaths.temporaryDirectory().path
    let rows = (0..<16).map { i in i % 2 == 0 ? "a wonderful lovely film \(i)\t1" : "a terrible boring film \(i)\t0" }
    try ("sentence\tlabel\n" + rows.joined(separator: "\n")).write(toFile: dir + "/train.tsv", atomically: true, encoding: .utf8)
    try ("sentence\tlabel\n" + rows.prefix(6).joined(separator: "\n")).write(toFile: dir + "/dev.tsv", atomically: true, encoding: .utf8)
    let r = try runFlava(["finetune", "--model", tinyDir, "--task", "glue-sst2", "--train", dir + "/train.tsv", "--dev", dir + "/dev.tsv",
                          "--steps", "3", "--batch-size", "4", "--output", dir + "/ft", "--summary", dir + "/s.json"])
    #expect(r.status == 0, "\(r.err)")
    #expect(r.out.contains("SST2") && r.out.contains("accuracy"))
    let bad = try runFlava(["finetune", "--model", tinyDir, "--task", "glue-sst2", "--train", dir + "/none.tsv", "--dev", dir + "/dev.tsv"])
    #expect(bad.status != 0 && bad.err.contains("none.tsv"))
}

@Test func multimodalBenchmarksReadTheirFormatsAndFinetune() throws {
    let dir = TestPaths.temporaryDirectory().path
    let world = SyntheticWorld(seed: 6, imageSize: 32)
    // VQAv2: questions + annotations, COCO file names.
    var qs: [[String: Any]] = [], anns: [[String: Any]] = []
    for i in 0..<6 {
        let s = world.sample(i)
        try s.image.savePNG(dir + String(format: "/COCO_train2014_%012d.jpg", i))   // PNG bytes under a .jpg name decode by signature
        qs.append(["image_id": i, "question": s.questions[0].question, "question_id": 100 + i])
        anns.append(["question_id": 100 + i, "image_id": i, "answers": Array(repeating: ["answer": s.questions[0].answer], count: 10)])
    }
    try JSONSerialization.data(withJSONObject: ["data_subtype": "train2014", "questions": qs]).write(to: URL(fileURLWithPath: dir + "/q.json"))
    try JSONSerialization.data(withJSONObject: ["annotations": anns]).write(to: URL(fileURLWithPath: dir + "/a.json"))
    let v = try runFlava(["finetune", "--model", tinyDir, "--task", "vqa", "--train", dir + "/q.json," + dir + "/a.json",
                          "--dev", dir + "/q.json," + dir + "/a.json", "--image-root", dir, "--steps", "2", "--batch-size", "4", "--output", dir + "/v"])
    #expect(v.status == 0 && v.out.contains("vqa_accuracy"), "\(v.err)")
    // SNLI-VE and Hateful Memes JSONL.
    for i in 0..<4 { try world.sample(10 + i).image.savePNG(dir + "/\(i).jpg") }
    try (0..<4).map { #"{"Flickr30K_ID": "\#($0)", "sentence2": "a shape", "gold_label": "\#(["entailment", "neutral", "contradiction", "entailment"][$0])"}"# }
        .joined(separator: "\n").write(toFile: dir + "/ve.jsonl", atomically: true, encoding: .utf8)
    let ve = try runFlava(["finetune", "--model", tinyDir, "--task", "snli-ve", "--train", dir + "/ve.jsonl", "--dev", dir + "/ve.jsonl",
                           "--image-root", dir, "--steps", "2", "--batch-size", "2", "--output", dir + "/ve"])
    #expect(ve.status == 0 && ve.out.contains("accuracy"), "\(ve.err)")
    try (0..<4).map { #"{"id": \#($0), "img": "\#($0).jpg", "text": "some meme text", "label": \#($0 % 2)}"# }
        .joined(separator: "\n").write(toFile: dir + "/hm.jsonl", atomically: true, encoding: .utf8)
    let hm = try runFlava(["finetune", "--model", tinyDir, "--task", "hateful-memes", "--train", dir + "/hm.jsonl", "--dev", dir + "/hm.jsonl",
                           "--steps", "2", "--batch-size", "2", "--output", dir + "/hm"])
    #expect(hm.status == 0 && hm.out.contains("roc_auc"), "\(hm.err)")
    try "{\"img\": \"0.jpg\", \"text\": \"x\", \"label\": 5}\n".write(toFile: dir + "/bad.jsonl", atomically: true, encoding: .utf8)
    let bad = try runFlava(["finetune", "--model", tinyDir, "--task", "hateful-memes", "--train", dir + "/bad.jsonl", "--dev", dir + "/hm.jsonl"])
    #expect(bad.status != 0 && bad.err.contains("bad.jsonl:1"), "\(bad.err)")
}
