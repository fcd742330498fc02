// int8 inference of the whole model (every Linear quantized): embeddings close to fp32 on a small FLAVA, the
// fused GELU, training untouched (anything recording gradients uses the float weights), and back to fp32.
import Testing
import Foundation
import FlavaKit
import TestSupport

private func cosines(_ a: Tensor, _ b: Tensor) -> [Double] {
    let (n, d) = (a.shape[0], a.count / a.shape[0])
    let x = a.array, y = b.array
    return (0..<n).map { i in
        var dot = 0.0, nx = 0.0, ny = 0.0
        for j in 0..<d { let (u, v) = (Double(x[i * d + j]), Double(y[i * d + j])); dot += u * v; nx += u * u; ny += v * v }
        return dot / (nx * ny).squareRoot()
    }
}

@Test func int8EmbeddingsStayCloseToFloat() throws {
    var ini = Initializer(seed: 5)
    let model = FlavaModel(FlavaTrainingPresets.smallConfig(vocabSize: 500), init: &ini)
    let embedder = try FlavaEmbedder(model: model, tokenizer: nil)
    var g = SeededGenerator(seed: 6)
    let s = model.config.imageConfig.imageSize
    let pixels = Tensor.randomNormal([4, 3, s, s], using: &g)
    let ids = IntTensor(shape: [4, 20], (0..<80).map { _ in 5 + Int(g.next() % 490) })
    let batch = FlavaEmbedder.TextBatch(ids: ids, mask: IntTensor(shape: [4, 20], repeating: 1))
    let (image32, text32) = (embedder.imageEmbeddings(pixels), embedder.textEmbeddings(batch))
    let mm32 = withNoGrad { model(pixelValues: Variable(pixels), inputIds: ids, attentionMask: batch.mask).multimodalEmbeddings!.value }
    #expect(model.prepareForInference(.int8) > 50)
    let (image8, text8) = (embedder.imageEmbeddings(pixels), embedder.textEmbeddings(batch))
    let mm8 = withNoGrad { model(pixelValues: Variable(pixels), inputIds: ids, attentionMask: batch.mask).multimodalEmbeddings!.value }
    for (name, a, b) in [("image", image32, image8), ("text", text32, text8), ("multimodal", mm32, mm8)] {
        let flat = { (t: Tensor) in Tensor(shape: [t.shape[0] * (t.shape.count == 3 ? t.shape[1] : 1), t.shape.last!], t.array) }
        let c = cosines(flat(a), flat(b))
        #expect(c.min()! >= 0.99, "\(name): cosines \(c.min()!)…\(c.max()!)")
        #expect(a.array != b.array, "\(name): int8 was not used")
    }
    // Recording gradients, the float weights are used: the same output as before quantizing.
    let recorded = model.textEmbedding(ids, attentionMask: batch.mask).value
    #expect(cosines(recorded, text32).allSatisfy { abs($0 - 1) < 1e-6 })
    model.releaseInferenceForms()
    #expect(model.namedModules().allSatisfy { ($0.1 as? Linear)?.inference == nil })
    // Float32 again: text32's numbers up to float rounding. Not bit for bit: tests run concurrently, and while
    // another test is inside BLAS.singleThreaded (attention, convolutions) OpenBLAS runs this test's products on
    // one thread, which rounds differently from two (BLAS.singleThreaded says so too).
    #expect(closenessReport(embedder.textEmbeddings(batch), text32, atol: 1e-6, rtol: 1e-5) == nil)
}

@Test func fusedQueryKeyValueIsTheSameAttention() throws {
    var ini = Initializer(seed: 11)
    let model = FlavaModel(FlavaTrainingPresets.smallConfig(vocabSize: 300), init: &ini)
    var g = SeededGenerator(seed: 12)
    let s = model.config.imageConfig.imageSize
    let pixels = Tensor.randomNormal([2, 3, s, s], using: &g)
    let ids = IntTensor(shape: [2, 9], (0..<18).map { _ in 5 + Int(g.next() % 290) })
    let mask = IntTensor(shape: [2, 9], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    func run() -> [Float] {
        withNoGrad { model(pixelValues: Variable(pixels), inputIds: ids, attentionMask: mask).multimodalEmbeddings!.value.array }
    }
    let plain = run()
    // fp32: the fused product replaces query/key/value; the other Linears run on packed weights where the CPU
    // has AVX2 or AVX-512, and on their own weights through OpenBLAS elsewhere.
    let fused = model.prepareForInference(.fp32)
    let qkvLinears = 3 * (model.config.imageConfig.numHiddenLayers + model.config.textConfig.numHiddenLayers + model.config.multimodalConfig.numHiddenLayers)
    #expect(fused == (PackedLinear.preferred ? model.namedModules().filter { $0.1 is Linear }.count : qkvLinears))
    let viaFused = run()
    #expect(zip(plain, viaFused).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) })
    // The fused inference kernel on [B, T, 3H] gives the attention of the training kernel on q, k, v apart (to
    // rounding: one sums in another order, and divides by the softmax's sum after the product with v).
    let qkv = Tensor.randomNormal([2, 7, 3 * 16], using: &g)
    let parts = (0..<3).map { i in Tensor(shape: [2, 7, 16], (0..<(2 * 7)).flatMap { r in (0..<16).map { qkv[flat: r * 48 + i * 16 + $0] } }) }
    let additive = Tensor(shape: [2, 7], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude])
    let (apart, _) = AttentionKernel.forward(q: parts[0], k: parts[1], v: parts[2], heads: 4, mask: additive)
    #expect(zip(AttentionKernel.inference(qkv: qkv, heads: 4, mask: additive).array, apart.array).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
    // Gradients still flow through the three Linears.
    model.zeroGrad()
    model.textModel(ids, attentionMask: mask).lastHiddenState.sum().backward()
    #expect(model.textModel.encoder.layers[0].attention.attention.query.weight.grad != nil)
}

@Test func inferenceOnlyModelReleasesItsFloatWeights() throws {
    var ini = Initializer(seed: 13)
    let model = FlavaModel(FlavaTrainingPresets.smallConfig(vocabSize: 300), init: &ini)
    var g = SeededGenerator(seed: 14)
    let ids = IntTensor(shape: [2, 8], (0..<16).map { _ in 5 + Int(g.next() % 290) })
    let mask = IntTensor(shape: [2, 8], repeating: 1)
    let floatBytes = model.parameters.reduce(0) { $0 + $1.value.count } * 4
    model.prepareForInference(.int8)
    let kept = withNoGrad { model.textModel(ids, attentionMask: mask).lastHiddenState.value.array }
    model.prepareForInference(.int8, releasingFloatWeights: true)
    #expect(model.isInferenceOnly)
    let released = withNoGrad { model.textModel(ids, attentionMask: mask).lastHiddenState.value.array }
    #expect(released == kept)
    let left = model.parameters.reduce(0) { $0 + $1.value.count } * 4
    #expect(left < floatBytes / 4, "float weights left: \(left) of \(floatBytes) bytes")
    let dir = TestPaths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    #expect(throws: CheckpointError.self) { try model.saveSafeTensors(to: dir.path + "/model.safetensors") }
    #expect(!FileManager.default.fileExists(atPath: dir.path + "/model.safetensors"))
}

@Test func int8LinearGELUIsTheFusedForm() {
    var ini = Initializer(seed: 9)
    let l = Linear(40, 70, init: &ini)
    var g = SeededGenerator(seed: 10)
    let x = Variable(Tensor.randomNormal([3, 40], using: &g))
    let float = withNoGrad { l.gelu(x).value.array }
    #expect(float == withNoGrad { gelu(l(x)).value.array })
    l.inference = LinearInference(.int8(Int8Linear(weight: l.weight.value, bias: l.bias?.value)))
    let fused = withNoGrad { l.gelu(x).value.array }
    let unfused = withNoGrad { gelu(l(x)).value.array }
    #expect(zip(fused, unfused).allSatisfy { abs($0 - $1) <= 1e-5 })
    #expect(zip(fused, float).allSatisfy { abs($0 - $1) <= 0.05 })
}
