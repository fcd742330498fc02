// The multimodal fine-tuning benchmarks in their distributed formats: VQAv2 (questions + annotations JSON,
// COCO images; answer vocabulary from the training answers, soft scores min(#humans/3, 1)), SNLI-VE (JSONL with
// Flickr30K ids, 3-way), Hateful Memes (JSONL with img/text/label; ROC AUC and accuracy).
import Foundation
import FlavaData

/// One multimodal example: an image file, a text, and either answer scores (VQA) or a class.
public struct MultimodalExample: Sendable {
    public var image: String
    public var text: String
    public var label: Int?
    /// VQA: every annotator's answer (for VQA accuracy) — the training target is their soft scores.
    public var answers: [String]
}

public enum MultimodalTasks {
    /// VQAv2: `questions` (v2_OpenEnded_mscoco_*_questions.json) + `annotations` (v2_mscoco_*_annotations.json);
    /// images `imageRoot/COCO_<split>_<12-digit id>.jpg` where split is read from the questions' data_subtype.
    public static func vqa(questions: String, annotations: String, imageRoot: String) throws -> [MultimodalExample] {
        func load(_ p: String) throws -> [String: Any] {
            guard let d = FileManager.default.contents(atPath: p) else { throw DataError("\(p): no such file") }
            guard let o = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any] else { throw DataError("\(p): not a JSON object") }
            return o
        }
        let q = try load(questions), a = try load(annotations)
        guard let qs = q["questions"] as? [[String: Any]] else { throw DataError("\(questions): no 'questions' list") }
        guard let anns = a["annotations"] as? [[String: Any]] else { throw DataError("\(annotations): no 'annotations' list") }
        let subtype = (q["data_subtype"] as? String) ?? "train2014"
        var byQuestion: [Int: [String]] = [:]
        for (i, ann) in anns.enumerated() {
            guard let id = ann["question_id"] as? Int, let list = ann["answers"] as? [[String: Any]] else {
                throw DataError("\(annotations): annotations[\(i)] lacks question_id or answers")
            }
            byQuestion[id] = list.compactMap { $0["answer"] as? String }
        }
        return try qs.enumerated().map { i, item in
            guard let qid = item["question_id"] as? Int, let img = item["image_id"] as? Int, let text = item["question"] as? String else {
                throw DataError("\(questions): questions[\(i)] lacks question_id, image_id or question")
            }
            let file = String(format: "%@/COCO_%@_%012d.jpg", imageRoot, subtype, img)
            return MultimodalExample(image: file, text: text, label: nil, answers: byQuestion[qid] ?? [])
        }
    }

    /// The answer vocabulary: the `size` most frequent training answers (ties by name).
    public static func answerVocabulary(_ examples: [MultimodalExample], size: Int = 3129) -> [String] {
        var counts: [String: Int] = [:]
        for e in examples { for a in Set(e.answers) { counts[a, default: 0] += 1 } }
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(size).map(\.key)
    }

    /// Soft targets: min(#annotators giving the answer / 3, 1) for each vocabulary answer.
    public static func softScores(_ answers: [String], vocabulary index: [String: Int], classes: Int) -> [Float] {
        var t = [Float](repeating: 0, count: classes)
        var counts: [String: Int] = [:]
        for a in answers { counts[a, default: 0] += 1 }
        for (a, c) in counts { if let i = index[a] { t[i] = min(Float(c) / 3, 1) } }
        return t
    }

    /// SNLI-VE JSONL (snli_ve_{train,dev,test}.jsonl): Flickr30K_ID, sentence2, gold_label.
    public static let snliVELabels = ["contradiction", "entailment", "neutral"]
    public static func snliVE(_ path: String, imageRoot: String) throws -> [MultimodalExample] {
        try jsonl(path) { obj, at in
            guard let id = obj["Flickr30K_ID"] as? String ?? (obj["Flickr30K_ID"] as? Int).map(String.init),
                  let text = obj["sentence2"] as? String, let gold = obj["gold_label"] as? String else {
                throw DataError("\(at): needs Flickr30K_ID, sentence2 and gold_label")
            }
            guard let label = snliVELabels.firstIndex(of: gold) else { throw DataError("\(at): unknown gold_label '\(gold)'") }
            return MultimodalExample(image: "\(imageRoot)/\(id).jpg", text: text, label: label, answers: [])
        }
    }

    /// Hateful Memes JSONL (train.jsonl, dev.jsonl): img (relative to the dataset folder), text, label.
    public static func hatefulMemes(_ path: String, imageRoot: String? = nil) throws -> [MultimodalExample] {
        let root = imageRoot ?? URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try jsonl(path) { obj, at in
            guard let img = obj["img"] as? String, let text = obj["text"] as? String else { throw DataError("\(at): needs img and text") }
            let label = obj["label"] as? Int
            if let l = label, l != 0 && l != 1 { throw DataError("\(at): label must be 0 or 1") }
            return MultimodalExample(image: root + "/" + img, text: text, label: label, answers: [])
        }
    }

    static func jsonl(_ path: String, _ make: ([String: Any], String) throws -> MultimodalExample) throws -> [MultimodalExample] {
        let reader = try LineReader(path: path)
        var out: [MultimodalExample] = []
        while let line = try reader.nextLine() {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let at = "\(path):\(reader.lineNumber)"
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { throw DataError("\(at): not a JSON object") }
            out.append(try make(obj, at))
        }
        guard !out.isEmpty else { throw DataError("\(path): no examples") }
        return out
    }
}
