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
    #expect(model.quantize(to: .int8) > 50)
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
    model.quantize(to: .fp32)
    #expect(embedder.textEmbeddings(batch).array == text32.array)
}

@Test func int8LinearGELUIsTheFusedForm() {
    var ini = Initializer(seed: 9)
    let l = Linear(40, 70, init: &ini)
    var g = SeededGenerator(seed: 10)
    let x = Variable(Tensor.randomNormal([3, 40], using: &g))
    let float = withNoGrad { l.gelu(x).value.array }
    #expect(float == withNoGrad { gelu(l(x)).value.array })
    l.int8 = Int8Linear(weight: l.weight.value, bias: l.bias?.value)
    let fused = withNoGrad { l.gelu(x).value.array }
    let unfused = withNoGrad { gelu(l(x)).value.array }
    #expect(zip(fused, unfused).allSatisfy { abs($0 - $1) <= 1e-5 })
    #expect(zip(fused, float).allSatisfy { abs($0 - $1) <= 0.05 })
}
