// DINO: the loss, its gradient, the centre and the teacher's EMA against an independent PyTorch transcription of
// main_dino.py (scripts/reference/make_dino_cases.py); the schedules; the multi-crop views; a few steps on the
// synthetic world lowering the loss with a fixed seed; an exact resume (teacher, centre and loader included).
import Testing
import Foundation
import FlavaKit
import TestSupport

private struct DINOCase: Decodable {
    var batch: Int, k: Int, ncrops: Int
    var student_temp: Double, teacher_temp: Double, center_momentum: Double, teacher_momentum: Double
    // Read as Double (tiny gradients do not fit a Float literal), compared as Float.
    var student: [Double], teacher: [Double], center: [Double], loss: Double, grad: [Double], new_center: [Double]
    var teacher_params: [Double], student_params: [Double], ema: [Double]
}
private func f(_ x: [Double]) -> [Float] { x.map { Float($0) } }
private struct DINOCases: Decodable { var cases: [DINOCase] }

private func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? .infinity }
private func values(_ t: Tensor) -> [Float] { (0..<t.count).map { t[flat: $0] } }

@Test func dinoLossGradientCentreAndTeacherMatchTheReference() throws {
    let data = try Data(contentsOf: TestPaths.fixtures.appendingPathComponent("dino/dino_cases.json"))
    let cases = try JSONDecoder().decode(DINOCases.self, from: data).cases
    #expect(cases.count == 3)
    for c in cases {
        let loss = DINOLoss(outDim: c.k, studentTemperature: c.student_temp, centerMomentum: c.center_momentum)
        loss.center = Tensor(shape: [c.k], f(c.center))
        let student = Variable(Tensor(shape: [c.ncrops * c.batch, c.k], f(c.student)), requiresGrad: true)
        let teacher = Tensor(shape: [2 * c.batch, c.k], f(c.teacher))
        let (l, stats) = loss(student: student, teacher: teacher, views: c.ncrops, teacherTemperature: Float(c.teacher_temp))
        l.backward()
        #expect(abs(Double(l.value.scalarValue) - c.loss) <= 1e-4 * max(1, abs(c.loss)), "loss \(l.value.scalarValue) vs \(c.loss)")
        let g = values(student.grad!)
        let scale = f(c.grad).map { abs($0) }.max()!
        #expect(maxDiff(g, f(c.grad)) <= 1e-4 * scale, "gradient off by \(maxDiff(g, f(c.grad))) (scale \(scale))")
        #expect(stats.teacherEntropy > 0 && stats.teacherEntropy < stats.maximumEntropy)
        loss.updateCenter(teacher)
        #expect(maxDiff(values(loss.center), f(c.new_center)) <= 1e-5, "centre off by \(maxDiff(values(loss.center), f(c.new_center)))")
        let t = f(c.teacher_params).map { Variable(Tensor(shape: [1], [$0])) }, s = f(c.student_params).map { Variable(Tensor(shape: [1], [$0])) }
        DINOTeacher.update(teacher: t, student: s, momentum: Float(c.teacher_momentum))
        #expect(maxDiff(t.map { $0.value[flat: 0] }, f(c.ema)) <= 1e-6)
    }
}

@Test func dinoSchedulesFollowTheRecipe() {
    var c = DINOConfig()
    c.teacherTemperature = 0.07; c.warmupTeacherTemperature = 0.04; c.teacherTemperatureWarmup = 0.3
    c.teacherMomentum = 0.996; c.freezeLastLayer = 0.01
    #expect(abs(c.teacherTemperature(at: 0, of: 100) - 0.04) < 1e-12)
    #expect(abs(c.teacherTemperature(at: 15, of: 100) - 0.055) < 1e-12)
    #expect(c.teacherTemperature(at: 30, of: 100) == 0.07 && c.teacherTemperature(at: 99, of: 100) == 0.07)
    #expect(abs(c.teacherMomentum(at: 0, of: 100) - 0.996) < 1e-12)
    #expect(abs(c.teacherMomentum(at: 50, of: 100) - 0.998) < 1e-12)
    #expect(abs(c.teacherMomentum(at: 100, of: 100) - 1) < 1e-12)
    #expect(c.lastLayerFrozen(at: 0, of: 300) && c.lastLayerFrozen(at: 2, of: 300) && !c.lastLayerFrozen(at: 3, of: 300))
}

@Test func dinoObjectiveGoesAlone() throws {
    #expect(try PretrainingObjectives("dino").dino)
    #expect(try !PretrainingObjectives("all").dino)
    #expect(throws: DataError.self) { try PretrainingObjectives("dino,mim") }
    // Settings written before DINO existed still decode.
    let old = #"{"contrastive":true,"itm":true,"mmmImage":true,"mmmText":true,"mim":true,"mlm":false}"#
    let o = try JSONDecoder().decode(PretrainingObjectives.self, from: Data(old.utf8))
    #expect(!o.dino && !o.mlm && o.mim)
}

@Test func multiCropViewsHaveTheirSizesAndRepeatWithTheSeed() {
    var c = DINOAugmentationConfig(imageSize: 64, patchSize: 8)
    c.localCrops = 3
    #expect(c.localSize == 24)   // 64 · 96/224 ≈ 27 → 3 patches of 8
    let aug = DINOAugmentation(c, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
    let image = SyntheticWorld(seed: 1, imageSize: 64).sample(0).image
    var g1 = SeededGenerator(seed: 5), g2 = SeededGenerator(seed: 5), g3 = SeededGenerator(seed: 6)
    let a = aug.views(image, using: &g1), b = aug.views(image, using: &g2), d = aug.views(image, using: &g3)
    #expect(a.map(\.shape) == [[3, 64, 64], [3, 64, 64], [3, 24, 24], [3, 24, 24], [3, 24, 24]])
    #expect(zip(a, b).allSatisfy { values($0) == values($1) })
    #expect(!zip(a, d).allSatisfy { values($0) == values($1) })
    // Every value is a normalized pixel in [0, 1]: (x − 0.5)/0.5 ∈ [−1, 1].
    #expect(a.allSatisfy { values($0).allSatisfy { $0 >= -1.0001 && $0 <= 1.0001 } })
    // The two global crops differ (independent crops and photometric draws).
    #expect(values(a[0]) != values(a[1]))
}

@Test func photometricAugmentationsComputeTheirFormulas() {
    // One white, one black, one mid-grey and one pure red pixel.
    let image = RGBImage(width: 4, height: 1, pixels: [255, 255, 255, 0, 0, 0, 128, 128, 128, 255, 0, 0])
    var p = DINOPixels(image)
    p.solarize()
    #expect(p.v[0] == 0 && p.v[3] == 0 && abs(p.v[6] - (1 - 128 / 255)) < 1e-6 && p.v[9] == 0 && p.v[10] == 0)
    p = DINOPixels(image)
    p.grayscale()
    #expect(abs(p.v[9] - 0.299) < 1e-6 && p.v[9] == p.v[10] && p.v[10] == p.v[11])
    p = DINOPixels(image)
    p.hueShift(1.0 / 3)   // red → green
    #expect(abs(p.v[9]) < 1e-5 && abs(p.v[10] - 1) < 1e-5 && abs(p.v[11]) < 1e-5)
    p = DINOPixels(image)
    p.brightness(0.5)
    #expect(abs(p.v[0] - 0.5) < 1e-6 && p.v[3] == 0)
    p = DINOPixels(image)
    p.flipHorizontally()
    #expect(p.v[0] == 1 && p.v[1] == 0 && p.v[9] == 1)
    // Blur keeps a flat image flat and keeps the mean of a symmetric one.
    var flat = DINOPixels(RGBImage(width: 8, height: 8, fill: (100, 100, 100)))
    flat.gaussianBlur(sigma: 1.5)
    #expect(flat.v.allSatisfy { abs($0 - 100 / 255) < 1e-5 })
}

/// A tiny FLAVA on the synthetic world's images, DINO's settings at tiny size.
private func dinoTask(seed: UInt64 = 3, steps: Int, still: Bool = false) throws -> DINOTask {
    var cfg = PretrainingConfig.dino(steps: steps)
    cfg.batchSize = 8
    cfg.seed = seed
    cfg.learningRate = 1e-3
    cfg.data.imageSize = 32
    cfg.dino = .small(imageSize: 32, patchSize: 8)
    cfg.dino.head = DINOHeadConfig(outDim: 64, hiddenDim: 32, bottleneckDim: 16)
    cfg.dino.augmentation.localCrops = 2
    if still { cfg.dino.teacherMomentum = 1; cfg.dino.centerMomentum = 1 }
    var ini = Initializer(seed: seed)
    let model = FlavaForPreTraining(FlavaTrainingPresets.tinyConfig(vocabSize: 30), init: &ini)
    let world = SyntheticWorld(seed: seed, imageSize: 32)
    return try DINOTask(model: model, config: cfg, source: SyntheticSource(world: world, kind: .images, length: 2000))
}

private func settings(_ task: DINOTask, output: String? = nil) -> TrainingSettings {
    var s = PretrainingTask.settings(task.config, output: output)
    s.evalEvery = nil
    return s
}

@Test func aFewDINOStepsLowerTheLossWithAFixedSeed() throws {
    // With the teacher and the centre held still (momenta 1) the student distils a fixed target: the loss must
    // fall. (With both moving, the centre first spreads the teacher's output and the loss rises before it
    // settles: README "DINO".)
    let task = try dinoTask(steps: 40, still: true)
    defer { task.stop() }
    var losses: [Double] = [], entropies: [Double] = []
    let engine = try TrainingEngine(task: task, settings: settings(task), callbacks: [StepCallback { e, _ in
        losses.append(e.losses["dino"]!); entropies.append(e.values!["teacher_entropy"]!)
    }])
    let vBefore = task.head.lastLayerV.value.copy()
    _ = try engine.trainStep()
    // The prototypes are frozen for the first 1 % of the run (the first step here), the rest moved.
    #expect(values(task.head.lastLayerV.value) == values(vBefore))
    _ = try engine.run()
    #expect(losses.count == 39 && losses.allSatisfy(\.isFinite))
    let first = losses.prefix(8).reduce(0, +) / 8, last = losses.suffix(8).reduce(0, +) / 8
    #expect(last < first, "DINO loss \(first) → \(last)")
    #expect(values(task.head.lastLayerV.value) != values(vBefore))
    // The teacher stayed where it was (momentum 1) while the student moved.
    let t = task.teacher.namedParameters().first { $0.key.hasSuffix("patch_embeddings.projection.weight") }!.variable
    let s = task.model.flava.imageModel.namedParameters().first { $0.key.hasSuffix("patch_embeddings.projection.weight") }!.variable
    #expect(values(t.value) != values(s.value))
    #expect(entropies.allSatisfy { $0 > 0 && $0 < log(64) })
}

@Test func aResumedDINORunRepeatsTheUninterruptedOne() throws {
    let dir = TestPaths.temporaryDirectory().path
    let a = try dinoTask(steps: 6)
    defer { a.stop() }
    var sa = settings(a, output: dir + "/a")
    sa.checkpointEvery = 3
    var la: [Double] = []
    _ = try TrainingEngine(task: a, settings: sa, callbacks: [StepCallback { e, _ in la.append(e.losses["dino"]!) }]).run()
    let b = try dinoTask(steps: 6)
    defer { b.stop() }
    var lb: [Double] = []
    let eb = try TrainingEngine(task: b, settings: settings(b, output: dir + "/b"), callbacks: [StepCallback { e, _ in lb.append(e.losses["dino"]!) }])
    try eb.resume(from: dir + "/a/checkpoint-3")
    _ = try eb.run()
    #expect(lb.count == 3)
    for (x, y) in zip(la.suffix(3), lb) { #expect(abs(x - y) <= 1e-5 * max(1, abs(x)), "\(x) vs \(y)") }
    // The centre and the teacher continue where they were (to float rounding: BLAS sums in its own order).
    let dc = maxDiff(values(a.loss.center), values(b.loss.center))
    #expect(dc <= 1e-5, "centre differs by \(dc)")
    var dt: Float = 0
    for (p, q) in zip(a.teacher.parameters + a.teacherHead.parameters, b.teacher.parameters + b.teacherHead.parameters) {
        dt = max(dt, maxDiff(values(p.value), values(q.value)))
    }
    #expect(dt <= 1e-5, "teacher differs by \(dt)")
    // A checkpoint without its DINO state is named as such.
    try FileManager.default.removeItem(atPath: dir + "/a/checkpoint-6/dino.safetensors")
    let c = try dinoTask(steps: 6)
    defer { c.stop() }
    let ec = try TrainingEngine(task: c, settings: settings(c))
    #expect { try ec.resume(from: dir + "/a/checkpoint-6") } throws: { "\($0)".contains("dino.safetensors") }
}
