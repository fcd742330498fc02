// The GLUE tasks in their distributed TSV layouts, with the metrics the benchmark reports for each:
// CoLA (MCC), SST-2 (accuracy), MRPC (F1, accuracy), QQP (accuracy, F1), STS-B (Pearson, Spearman),
// MNLI (accuracy), QNLI (accuracy), RTE (accuracy).
import Foundation
import FlavaData

/// One GLUE example: one or two texts and a class index (or a score for STS-B).
public struct GLUEExample: Sendable {
    public var textA: String, textB: String?
    public var label: Int?, score: Double?
}

/// A GLUE task's layout and metrics.
public struct GLUETask: Sendable {
    public let name: String
    /// Label strings in class order (empty for STS-B's regression).
    public let labels: [String]
    public let headered: Bool
    let columns: (a: String, b: String?, label: String)
    /// Column indices for header-less files (CoLA).
    let positional: (a: Int, label: Int)?

    public var isRegression: Bool { labels.isEmpty }

    public static let all: [String: GLUETask] = [
        "cola": GLUETask(name: "cola", labels: ["0", "1"], headered: false, columns: ("", nil, ""), positional: (3, 1)),
        "sst2": GLUETask(name: "sst2", labels: ["0", "1"], headered: true, columns: ("sentence", nil, "label"), positional: nil),
        "mrpc": GLUETask(name: "mrpc", labels: ["0", "1"], headered: true, columns: ("#1 String", "#2 String", "Quality"), positional: nil),
        "qqp": GLUETask(name: "qqp", labels: ["0", "1"], headered: true, columns: ("question1", "question2", "is_duplicate"), positional: nil),
        "stsb": GLUETask(name: "stsb", labels: [], headered: true, columns: ("sentence1", "sentence2", "score"), positional: nil),
        "mnli": GLUETask(name: "mnli", labels: ["contradiction", "entailment", "neutral"], headered: true, columns: ("sentence1", "sentence2", "gold_label"), positional: nil),
        "qnli": GLUETask(name: "qnli", labels: ["entailment", "not_entailment"], headered: true, columns: ("question", "sentence", "label"), positional: nil),
        "rte": GLUETask(name: "rte", labels: ["entailment", "not_entailment"], headered: true, columns: ("sentence1", "sentence2", "label"), positional: nil),
    ]

    /// Reads a TSV split; a malformed line is an error naming file and line. Unlabelled test files give examples
    /// without labels.
    public func read(_ path: String) throws -> [GLUEExample] {
        let reader = try LineReader(path: path)
        var header: [String: Int]? = nil
        var out: [GLUEExample] = []
        while let line = try reader.nextLine() {
            if line.isEmpty { continue }
            // GLUE TSVs are not quoted: fields are split on tabs only.
            let f = line.split(onScalar: "\t", omittingEmptySubsequences: false)
            let at = "\(path):\(reader.lineNumber)"
            if headered && header == nil {
                header = Dictionary(f.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
                guard header![columns.a] != nil else { throw DataError("\(at): no '\(columns.a)' column (is this a \(name.uppercased()) file?)") }
                continue
            }
            if let p = positional {
                guard f.count > max(p.a, p.label) else { throw DataError("\(at): expected at least \(max(p.a, p.label) + 1) tab-separated fields, got \(f.count)") }
                guard let l = labels.firstIndex(of: f[p.label]) else { throw DataError("\(at): unknown label '\(f[p.label])'") }
                out.append(GLUEExample(textA: f[p.a], textB: nil, label: l, score: nil)); continue
            }
            let h = header!
            func field(_ name: String) throws -> String {
                guard let i = h[name] else { throw DataError("\(at): no '\(name)' column") }
                guard i < f.count else { throw DataError("\(at): line has \(f.count) fields, '\(name)' is field \(i + 1)") }
                return f[i]
            }
            var ex = GLUEExample(textA: try field(columns.a), textB: try columns.b.map { try field($0) }, label: nil, score: nil)
            if h[columns.label] != nil {
                let v = try field(columns.label)
                if isRegression {
                    guard let s = Double(v) else { throw DataError("\(at): score '\(v)' is not a number") }
                    ex.score = s
                } else {
                    guard let l = labels.firstIndex(of: v) else { throw DataError("\(at): unknown label '\(v)' (expected \(labels.joined(separator: ", ")))") }
                    ex.label = l
                }
            }
            out.append(ex)
        }
        guard !out.isEmpty else { throw DataError("\(path): no examples") }
        return out
    }

    /// The task's metrics from predictions (class indices or scores) and gold labels.
    public func metrics(predictions: [Double], gold: [GLUEExample]) -> [String: Double] {
        if isRegression {
            let y = gold.map { $0.score ?? 0 }
            return ["pearson": Metrics.pearson(predictions, y), "spearman": Metrics.spearman(predictions, y)]
        }
        let p = predictions.map { Int($0) }, y = gold.map { $0.label ?? 0 }
        switch name {
        case "cola": return ["mcc": Metrics.mcc(y, p)]
        case "mrpc", "qqp": return ["f1": Metrics.f1(y, p), "accuracy": Metrics.accuracy(y, p)]
        default: return ["accuracy": Metrics.accuracy(y, p)]
        }
    }
}
