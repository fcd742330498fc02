// AdamW, clipping and schedules against ../shared/reference/optim (torch.optim.AdamW, clip_grad_norm_,
// transformers' schedules).
import Testing
import Foundation
import FlavaKit
import TestSupport

private let optimDir = TestPaths.reference.appendingPathComponent("optim")

@Test(arguments: ["default", "flava", "odd"]) func adamWMatchesPyTorch(set: String) throws {
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: optimDir.appendingPathComponent("adamw.json"))) as! [String: Any]
    let hp = json[set] as! [String: Any]
    let betas = (hp["betas"] as! [Any]).map { Float(($0 as! NSNumber).doubleValue) }
    let hyper = AdamWHyperParameters(learningRate: Float((hp["lr"] as! NSNumber).doubleValue), beta1: betas[0],
                                     beta2: betas[1], eps: Float((hp["eps"] as! NSNumber).doubleValue),
                                     weightDecay: Float((hp["weight_decay"] as! NSNumber).doubleValue))
    let file = try SafeTensorsFile(path: optimDir.appendingPathComponent("adamw.safetensors").path)
    let names = ["a", "b", "c"]
    let params = try names.map { Variable(try file.floatTensor("\(set).param0.\($0)").copy(), requiresGrad: true) }
    let opt = AdamW(params, hyper)
    for step in 1...6 {
        for (p, n) in zip(params, names) { p.grad = try file.floatTensor("\(set).grad\(step).\(n)") }
        opt.step()
        for (p, n) in zip(params, names) {
            let want = try file.floatTensor("\(set).param\(step).\(n)")
            #expect(closenessReport(p.value, want, atol: 1e-6, rtol: 1e-5, name: "\(set) step \(step) \(n)") == nil)
        }
    }
}

@Test func clippingMatchesPyTorch() throws {
    let file = try SafeTensorsFile(path: optimDir.appendingPathComponent("adamw.safetensors").path)
    let params = try (0..<2).map { i -> Variable in
        let v = Variable(Tensor.zeros(file.info("clip.grad_before.\(i)")!.shape), requiresGrad: true)
        v.grad = try file.floatTensor("clip.grad_before.\(i)").copy()
        return v
    }
    let norm = Gradients.clipGlobalNorm(params, maxNorm: 1.0)
    #expect(abs(norm - (try file.floatTensor("clip.total_norm").scalarValue)) < 1e-5)
    for i in 0..<2 {
        #expect(closenessReport(params[i].grad!, try file.floatTensor("clip.grad_after.\(i)"), atol: 1e-7, rtol: 1e-5) == nil)
    }
}

@Test func schedulesMatchTransformers() throws {
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: optimDir.appendingPathComponent("schedules.json"))) as! [String: Any]
    for (name, make) in [("cosine", LearningRateSchedule.cosine), ("linear", LearningRateSchedule.linear)] {
        let s = json[name] as! [String: Any]
        let warmup = (s["warmup"] as! NSNumber).intValue, total = (s["total"] as! NSNumber).intValue
        let values = (s["lr_multiplier_per_step"] as! [Any]).map { ($0 as! NSNumber).doubleValue }
        let schedule = make(warmup, total)
        for (step, want) in values.enumerated() {
            #expect(abs(schedule.multiplier(at: step) - want) < 1e-12, "\(name) step \(step)")
        }
    }
}

@Test func parameterGroupsSkipDecayOnBiasesAndNorms() {
    #expect(AdamW.skipsDecay(key: "encoder.layer.0.attention.attention.query.bias", shape: [768]))
    #expect(AdamW.skipsDecay(key: "encoder.layer.0.layernorm_before.weight", shape: [768]))
    #expect(AdamW.skipsDecay(key: "logit_scale", shape: []))
    #expect(!AdamW.skipsDecay(key: "encoder.layer.0.attention.attention.query.weight", shape: [768, 768]))
    // Weight decay leaves a no-decay parameter alone when its gradient is zero, and shrinks a decayed one.
    let w = Variable(Tensor.ones([2, 2]), requiresGrad: true), b = Variable(Tensor.ones([2]), requiresGrad: true)
    let opt = AdamW(namedParameters: [("dense.weight", w), ("dense.bias", b)], .init(learningRate: 0.1, weightDecay: 0.5))
    w.grad = Tensor.zeros([2, 2]); b.grad = Tensor.zeros([2])
    opt.step()
    #expect(b.value.array == [1, 1])
    #expect(w.value.array.allSatisfy { abs($0 - 0.95) < 1e-6 })
}

@Test func gradientAccumulationEqualsTheFullBatchGradient() {
    var g = SeededGenerator(seed: 9)
    let x = Tensor.randomNormal([8, 5], using: &g)
    let labels = [0, 1, 2, 0, 1, 2, 0, 1]
    let w = Variable(Tensor.randomNormal([3, 5], using: &g), requiresGrad: true)
    crossEntropy(linear(Variable(x), weight: w, bias: nil), labels: labels).backward()
    let full = w.grad!
    w.grad = nil
    for k in 0..<4 {
        let xb = ShapeKernel.slice(x, axis: 0, start: 2 * k, end: 2 * k + 2)
        crossEntropy(linear(Variable(xb), weight: w, bias: nil), labels: Array(labels[(2 * k)..<(2 * k + 2)])).backward()
    }
    Gradients.averageAccumulated([w], microBatches: 4)
    #expect(closenessReport(w.grad!, full, atol: 1e-6, rtol: 1e-5) == nil)
}
