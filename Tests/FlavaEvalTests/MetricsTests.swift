// Every metric and the logistic-regression solver against ../shared/reference/metrics/cases.json
// (scikit-learn and scipy).
import Testing
import Foundation
import FlavaKit
import TestSupport

/// The parsed cases, read fresh by each test (Foundation's JSON objects are not Sendable, so no shared global).
private var cases: [String: [String: Any]] {
    let data = try! Data(contentsOf: TestPaths.reference.appendingPathComponent("metrics/cases.json"))
    return try! JSONSerialization.jsonObject(with: data) as! [String: [String: Any]]
}

private func ints(_ v: Any?) -> [Int] { (v as! [Any]).map { ($0 as! NSNumber).intValue } }
private func doubles(_ v: Any?) -> [Double] { (v as! [Any]).map { ($0 as! NSNumber).doubleValue } }
private func num(_ v: Any?) -> Double { (v as! NSNumber).doubleValue }

@Test func binaryMetricsMatchScikitLearn() {
    let c = cases["binary"]!
    let y = ints(c["y"]), pred = ints(c["pred"]), score = doubles(c["score"])
    #expect(abs(Metrics.accuracy(y, pred) - num(c["accuracy"])) < 1e-12)
    #expect(abs(Metrics.f1(y, pred) - num(c["f1"])) < 1e-12)
    #expect(abs(Metrics.mcc(y, pred) - num(c["mcc"])) < 1e-12)
    #expect(abs(Metrics.rocAUC(y, score) - num(c["roc_auc"])) < 1e-12)
}

@Test func regressionAndMulticlassMetricsMatch() {
    let r = cases["regression"]!
    #expect(abs(Metrics.pearson(doubles(r["a"]), doubles(r["b"])) - num(r["pearson"])) < 1e-12)
    #expect(abs(Metrics.spearman(doubles(r["a"]), doubles(r["b"])) - num(r["spearman"])) < 1e-12)
    let m = cases["multiclass"]!
    let y = ints(m["y"]), p = ints(m["pred"])
    #expect(abs(Metrics.accuracy(y, p) - num(m["accuracy"])) < 1e-12)
    #expect(abs(Metrics.macroF1(y, p) - num(m["macro_f1"])) < 1e-12)
    #expect(abs(Metrics.mcc(y, p) - num(m["mcc"])) < 1e-12)
}

@Test func vqaAndRetrievalMetricsMatch() {
    let v = cases["vqa"]!
    let answers = (v["answers"] as! [[String]]), preds = v["pred"] as! [String]
    let per = zip(preds, answers).map { Metrics.vqaAccuracy(prediction: $0, answers: $1) }
    #expect(per == doubles(v["per_question"]))
    let r = cases["retrieval"]!
    let sim = (r["similarity"] as! [[Any]]).map { $0.map { ($0 as! NSNumber).doubleValue } }
    let truth = (r["truth"] as! [[Any]]).map { $0.map { ($0 as! NSNumber).intValue } }
    #expect(Metrics.recallAtK(similarity: sim, truth: truth, k: 1) == num(r["recall@1"]))
    #expect(abs(Metrics.recallAtK(similarity: sim, truth: truth, k: 5) - num(r["recall@5"])) < 1e-12)
}

@Test func logisticRegressionLandsOnScikitLearnsOptimum() {
    let c = cases["logistic"]!
    let x = (c["X"] as! [[Any]]).map { $0.map { ($0 as! NSNumber).doubleValue } }
    let y = ints(c["y"])
    let model = LogisticRegression.fit(x: x, y: y, c: num(c["C"]))
    #expect(model.converged)
    let coef = (c["coef"] as! [[Any]]).map { $0.map { ($0 as! NSNumber).doubleValue } }
    // scikit-learn's multinomial parametrisation is identifiable through the penalty, so coefficients match.
    for (a, b) in zip(model.coef.joined(), coef.joined()) { #expect(abs(a - b) < 1e-5, "coef \(a) vs \(b)") }
    // Intercepts are unpenalised and defined up to a shared constant: compare after centring.
    let ours = model.intercept.map { $0 - model.intercept.reduce(0, +) / 3 }
    let want = doubles(c["intercept"]).map { $0 - doubles(c["intercept"]).reduce(0, +) / 3 }
    for (a, b) in zip(ours, want) { #expect(abs(a - b) < 1e-5, "intercept \(a) vs \(b)") }
    #expect(abs(Metrics.accuracy(y, model.predict(x)) - num(c["train_accuracy"])) < 1e-12)
    let probs = (c["predict_proba_first3"] as! [[Any]]).map { $0.map { ($0 as! NSNumber).doubleValue } }
    for i in 0..<3 { for (a, b) in zip(model.probabilities(x[i]), probs[i]) { #expect(abs(a - b) < 1e-6) } }
}

@Test func zeroShotAndRetrievalOnPlantedEmbeddings() {
    // Classes are axis directions; images are noisy copies of their class's prompt embedding.
    var g = SeededGenerator(seed: 2)
    let c = 6, d = 8, t = 3
    let prompts = Tensor(shape: [c * t, d], (0..<(c * t * d)).map { i in
        let (row, j) = (i / d, i % d)
        return (j == row / t ? 1 : 0) + 0.05 * g.nextNormal()
    })
    let classes = ZeroShot.classEmbeddings(promptEmbeddings: prompts, templatesPerClass: t)
    #expect(classes.shape == [c, d])
    let labels = (0..<60).map { $0 % c }
    let images = ZeroShot.normalizeRows(Tensor(shape: [60, d], (0..<(60 * d)).map { i in (i % d == labels[i / d] ? 1 : 0) + 0.2 * g.nextNormal() }))
    let r = ZeroShot.classify(images: images, classes: classes, labels: labels)
    #expect(r.top1 > 0.9 && r.top5 == 1 && r.meanPerClassRecall > 0.9)
    // Two captions per image, each a noisy copy of the image embedding.
    let texts = ZeroShot.normalizeRows(Tensor(shape: [12, d], (0..<(12 * d)).map { i in images[flat: (i / d / 2) * d + i % d] + 0.01 * g.nextNormal() }))
    let ret = ZeroShot.retrieval(images: ShapeKernel.slice(images, axis: 0, start: 0, end: 6), texts: texts, textImage: (0..<12).map { $0 / 2 })
    #expect(ret.imageToText[1] == 1 && ret.textToImage[1] == 1 && ret.textToImageMedianRank == 1)
    #expect(ret.summary["image_to_text_R@10"] == 1)
}

@Test func linearProbeSweepsRegularisation() {
    var g = SeededGenerator(seed: 3)
    func split(_ n: Int) -> ([[Double]], [Int]) {
        let y = (0..<n).map { $0 % 3 }
        return (y.map { l in (0..<4).map { j in (j == l ? 2.0 : 0.0) + Double(g.nextNormal()) } }, y)
    }
    let r = LinearProbe.run(train: split(90), validation: split(30), test: split(60), classes: 3)
    #expect(r.testAccuracy > 0.7, "\(r)")
}
