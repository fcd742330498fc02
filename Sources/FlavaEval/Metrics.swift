// Evaluation arithmetic as scikit-learn / scipy / the VQA benchmark compute it: accuracy, F1 (binary and
// macro), Matthews correlation, ROC AUC from scores, Pearson and Spearman correlation, VQA accuracy, and
// retrieval recall@K with several true items per query. Checked against ../shared/reference/metrics.
import Foundation

/// Evaluation metrics.
public enum Metrics {
    /// Fraction of predictions equal to the labels.
    public static func accuracy(_ y: [Int], _ pred: [Int]) -> Double {
        precondition(y.count == pred.count && !y.isEmpty, "accuracy needs equally many labels and predictions")
        return Double(zip(y, pred).filter { $0 == $1 }.count) / Double(y.count)
    }

    /// F1 of the positive class (label 1).
    public static func f1(_ y: [Int], _ pred: [Int], positive: Int = 1) -> Double {
        var tp = 0.0, fp = 0.0, fn = 0.0
        for (t, p) in zip(y, pred) {
            if p == positive && t == positive { tp += 1 } else if p == positive { fp += 1 } else if t == positive { fn += 1 }
        }
        return tp == 0 ? 0 : 2 * tp / (2 * tp + fp + fn)
    }

    /// Unweighted mean of per-class F1 over the classes present in labels or predictions.
    public static func macroF1(_ y: [Int], _ pred: [Int]) -> Double {
        let classes = Set(y).union(pred).sorted()
        return classes.map { f1(y, pred, positive: $0) }.reduce(0, +) / Double(classes.count)
    }

    /// Matthews correlation coefficient (multiclass form of Gorodkin, as scikit-learn).
    public static func mcc(_ y: [Int], _ pred: [Int]) -> Double {
        let classes = Set(y).union(pred).sorted()
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        let k = classes.count
        var c = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
        for (t, p) in zip(y, pred) { c[index[t]!][index[p]!] += 1 }
        let tk = (0..<k).map { i in c[i].reduce(0, +) }            // true counts
        let pk = (0..<k).map { j in (0..<k).reduce(0) { $0 + c[$1][j] } }   // predicted counts
        let correct = (0..<k).reduce(0.0) { $0 + c[$1][$1] }
        let s = Double(y.count)
        let cov = correct * s - zip(tk, pk).reduce(0) { $0 + $1.0 * $1.1 }
        let denom = (s * s - pk.reduce(0) { $0 + $1 * $1 }) * (s * s - tk.reduce(0) { $0 + $1 * $1 })
        return denom == 0 ? 0 : cov / denom.squareRoot()
    }

    /// Ranks (1-based) with ties given their average rank.
    public static func averageRanks(_ x: [Double]) -> [Double] {
        let order = x.indices.sorted { x[$0] < x[$1] }
        var ranks = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
            let r = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = r }
            i = j + 1
        }
        return ranks
    }

    /// Area under the ROC curve from scores (ties count half, as the trapezoidal rule does).
    public static func rocAUC(_ y: [Int], _ score: [Double]) -> Double {
        let ranks = averageRanks(score)
        let pos = y.filter { $0 == 1 }.count, neg = y.count - pos
        precondition(pos > 0 && neg > 0, "ROC AUC needs both classes")
        let sumPos = zip(y, ranks).filter { $0.0 == 1 }.reduce(0.0) { $0 + $1.1 }
        return (sumPos - Double(pos * (pos + 1)) / 2) / Double(pos * neg)
    }

    /// Pearson correlation.
    public static func pearson(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count && a.count > 1, "correlation needs two equally long series")
        let ma = a.reduce(0, +) / Double(a.count), mb = b.reduce(0, +) / Double(b.count)
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for (x, y) in zip(a, b) { sab += (x - ma) * (y - mb); saa += (x - ma) * (x - ma); sbb += (y - mb) * (y - mb) }
        return saa == 0 || sbb == 0 ? 0 : sab / (saa * sbb).squareRoot()
    }

    /// Spearman rank correlation (Pearson of average ranks).
    public static func spearman(_ a: [Double], _ b: [Double]) -> Double { pearson(averageRanks(a), averageRanks(b)) }

    /// VQA accuracy of one answer: min(#annotators who gave it / 3, 1).
    public static func vqaAccuracy(prediction: String, answers: [String]) -> Double {
        min(Double(answers.filter { $0 == prediction }.count) / 3, 1)
    }

    /// Recall@K: the fraction of queries (rows of `similarity`) whose top K items include a true one.
    public static func recallAtK(similarity: [[Double]], truth: [[Int]], k: Int) -> Double {
        precondition(similarity.count == truth.count && !truth.isEmpty, "one truth list per query")
        var hits = 0
        for (row, t) in zip(similarity, truth) {
            let top = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }.prefix(k)
            if top.contains(where: t.contains) { hits += 1 }
        }
        return Double(hits) / Double(truth.count)
    }

    /// 1-based rank of the best-ranked true item for each query.
    public static func firstTrueRanks(similarity: [[Double]], truth: [[Int]]) -> [Int] {
        zip(similarity, truth).map { row, t in
            let order = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
            return (order.firstIndex(where: t.contains) ?? order.count) + 1
        }
    }
}
