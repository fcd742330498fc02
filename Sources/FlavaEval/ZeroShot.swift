// Zero-shot evaluation as in CLIP / FLAVA (FLAVA_REFERENCE.md §6): class embeddings from prompt templates
// (mean of normalized prompt embeddings, re-normalized), image→class by cosine similarity; and image–text
// retrieval with several captions per image, recall@1/5/10 both ways and mean/median rank.
import Foundation
import FlavaTensor

/// CLIP's prompt templates (a subset of the 80 ImageNet ones, the commonly used "ensemble of 7" first).
public let clipTemplates = [
    "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.", "a {} in a video game.",
    "art of the {}.", "a photo of the small {}.", "a photo of a {}.", "a blurry photo of a {}.", "a close-up photo of a {}.",
    "a bright photo of a {}.", "a cropped photo of a {}.", "a good photo of a {}.", "a rendering of a {}.",
]

/// Results of zero-shot classification.
public struct ZeroShotResult: Codable, Sendable {
    public var top1: Double, top5: Double, meanPerClassRecall: Double, count: Int, classes: Int
    enum CodingKeys: String, CodingKey { case top1 = "top1_accuracy", top5 = "top5_accuracy", meanPerClassRecall = "mean_per_class_recall", count, classes }
}

/// Results of retrieval in both directions.
public struct RetrievalResult: Codable, Sendable {
    public var imageToText: [Int: Double], textToImage: [Int: Double]
    public var imageToTextMeanRank: Double, imageToTextMedianRank: Double
    public var textToImageMeanRank: Double, textToImageMedianRank: Double

    /// The summary keys: image_to_text_R@1 … text_to_image_R@10, and the ranks.
    public var summary: [String: Double] {
        var d: [String: Double] = [:]
        for (k, v) in imageToText { d["image_to_text_R@\(k)"] = v }
        for (k, v) in textToImage { d["text_to_image_R@\(k)"] = v }
        d["image_to_text_mean_rank"] = imageToTextMeanRank; d["image_to_text_median_rank"] = imageToTextMedianRank
        d["text_to_image_mean_rank"] = textToImageMeanRank; d["text_to_image_median_rank"] = textToImageMedianRank
        return d
    }
}

/// Zero-shot classification and retrieval over embeddings.
public enum ZeroShot {
    /// Row-wise L2 normalization of [N, D].
    public static func normalizeRows(_ t: Tensor) -> Tensor {
        let d = t.shape[1]
        let out = t.copy()
        let p = out.storage.pointer
        for r in 0..<t.shape[0] {
            let n = Reduce.dot(p + r * d, p + r * d, d).squareRoot()
            if n > 0 { for j in 0..<d { p[r * d + j] /= n } }
        }
        return out
    }

    /// Class embeddings [C, D] from prompt embeddings [C·T, D] (class-major): mean of the T normalized prompt
    /// embeddings of each class, re-normalized.
    public static func classEmbeddings(promptEmbeddings e: Tensor, templatesPerClass t: Int) -> Tensor {
        let (n, d) = (e.shape[0], e.shape[1])
        precondition(n % t == 0, "\(n) prompt embeddings for \(t) templates per class")
        let ne = normalizeRows(e)
        let out = Tensor.zeros([n / t, d])
        let op = out.storage.pointer, ip = ne.storage.pointer
        for c in 0..<(n / t) { for k in 0..<t { for j in 0..<d { op[c * d + j] += ip[(c * t + k) * d + j] / Float(t) } } }
        return normalizeRows(out)
    }

    /// Cosine similarities [N, M] of normalized rows.
    public static func similarity(_ a: Tensor, _ b: Tensor) -> [[Double]] {
        let s = LinearKernel.matmul(a, b, transB: true)
        return (0..<s.shape[0]).map { i in (0..<s.shape[1]).map { Double(s[flat: i * s.shape[1] + $0]) } }
    }

    /// Top-1/top-5 accuracy and mean per-class recall of images [N, D] against classes [C, D].
    public static func classify(images: Tensor, classes: Tensor, labels: [Int]) -> ZeroShotResult {
        let sim = similarity(images, classes)
        let c = classes.shape[0]
        var top1 = 0, top5 = 0
        var perClass = [Int](repeating: 0, count: c), perClassHit = [Int](repeating: 0, count: c)
        for (i, row) in sim.enumerated() {
            let order = row.indices.sorted { row[$0] > row[$1] }
            if order[0] == labels[i] { top1 += 1; perClassHit[labels[i]] += 1 }
            if order.prefix(5).contains(labels[i]) { top5 += 1 }
            perClass[labels[i]] += 1
        }
        let present = (0..<c).filter { perClass[$0] > 0 }
        let recall = present.map { Double(perClassHit[$0]) / Double(perClass[$0]) }.reduce(0, +) / Double(max(present.count, 1))
        let n = Double(labels.count)
        return ZeroShotResult(top1: Double(top1) / n, top5: Double(top5) / n, meanPerClassRecall: recall, count: labels.count, classes: c)
    }

    /// Retrieval between images [N, D] and texts [M, D]; `textImage[j]` is the image of caption j.
    public static func retrieval(images: Tensor, texts: Tensor, textImage: [Int], ks: [Int] = [1, 5, 10]) -> RetrievalResult {
        let i2t = similarity(images, texts)
        let t2i = similarity(texts, images)
        var truthI2T = [[Int]](repeating: [], count: images.shape[0])
        for (j, im) in textImage.enumerated() { truthI2T[im].append(j) }
        let truthT2I = textImage.map { [$0] }
        func ranks(_ r: [Int]) -> (Double, Double) {
            let s = r.sorted()
            let median = s.count % 2 == 1 ? Double(s[s.count / 2]) : Double(s[s.count / 2 - 1] + s[s.count / 2]) / 2
            return (Double(r.reduce(0, +)) / Double(r.count), median)
        }
        let ri = ranks(Metrics.firstTrueRanks(similarity: i2t, truth: truthI2T))
        let rt = ranks(Metrics.firstTrueRanks(similarity: t2i, truth: truthT2I))
        return RetrievalResult(imageToText: Dictionary(uniqueKeysWithValues: ks.map { ($0, Metrics.recallAtK(similarity: i2t, truth: truthI2T, k: $0)) }),
                               textToImage: Dictionary(uniqueKeysWithValues: ks.map { ($0, Metrics.recallAtK(similarity: t2i, truth: truthT2I, k: $0)) }),
                               imageToTextMeanRank: ri.0, imageToTextMedianRank: ri.1,
                               textToImageMeanRank: rt.0, textToImageMedianRank: rt.1)
    }
}

/// The linear probe protocol: λ = 1/C swept over 1e-6 … 1e6 on a validation split, refit on train+validation,
/// scored on test.
public enum LinearProbe {
    public struct Result: Codable, Sendable {
        public var bestC: Double, validationAccuracy: Double, testAccuracy: Double
        enum CodingKeys: String, CodingKey { case bestC = "best_c", validationAccuracy = "validation_accuracy", testAccuracy = "test_accuracy" }
    }

    public static func run(train: ([[Double]], [Int]), validation: ([[Double]], [Int]), test: ([[Double]], [Int]),
                           classes: Int, lambdas: [Double] = (-6...6).map { pow(10, Double($0)) }, maxIterations: Int = 1000) -> Result {
        var best = (c: 1.0, acc: -1.0)
        for lambda in lambdas {
            let c = 1 / lambda
            let m = LogisticRegression.fit(x: train.0, y: train.1, classes: classes, c: c, maxIterations: maxIterations, tolerance: 1e-6)
            let acc = Metrics.accuracy(validation.1, m.predict(validation.0))
            if acc > best.acc { best = (c, acc) }
        }
        let final = LogisticRegression.fit(x: train.0 + validation.0, y: train.1 + validation.1, classes: classes, c: best.c,
                                           maxIterations: maxIterations, tolerance: 1e-6)
        return Result(bestC: best.c, validationAccuracy: best.acc, testAccuracy: Metrics.accuracy(test.1, final.predict(test.0)))
    }
}
