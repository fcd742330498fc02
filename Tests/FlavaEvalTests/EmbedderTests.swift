// The inference pipeline against the golden tiny model: embeddings are the reference's projected [CLS]
// features, L2-normalized, whatever the padding and batch size.
import Testing
import Foundation
import FlavaKit
import TestSupport

private let tinyDir = TestPaths.reference.appendingPathComponent("flava_tiny").path

private func normalizedFirstToken(_ features: Tensor) -> Tensor {
    let (b, p) = (features.shape[0], features.shape[2])
    var out = Tensor.zeros([b, p])
    for i in 0..<b {
        var n: Float = 0
        for j in 0..<p { n += features[flat: i * features.shape[1] * p + j] * features[flat: i * features.shape[1] * p + j] }
        for j in 0..<p { out[flat: i * p + j] = features[flat: i * features.shape[1] * p + j] / n.squareRoot() }
    }
    return out
}

@Test func embeddingsAreTheReferencesNormalizedProjectedCLS() throws {
    let embedder = try FlavaEmbedder(directory: tinyDir)
    let golden = try SafeTensorsFile(path: tinyDir + "/golden.safetensors")
    let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tinyDir + "/golden.json"))) as! [String: Any]
    let captions = meta["captions"] as! [String]
    // Texts padded only to the longest (not to 12 as in the reference), in batches of 3.
    let text = try embedder.tokenize(captions, maxLength: 12)
    let t = embedder.textEmbeddings(text, batchSize: 3)
    #expect(closenessReport(t, normalizedFirstToken(try golden.floatTensor("model.text_features")), atol: 1e-4, rtol: 1e-4, name: "text") == nil)
    let i = embedder.imageEmbeddings(try golden.floatTensor("input.pixel_values"), batchSize: 3)
    #expect(closenessReport(i, normalizedFirstToken(try golden.floatTensor("model.image_features")), atol: 1e-4, rtol: 1e-4, name: "image") == nil)
    // Hidden states for pairs: the multimodal sequence matches the reference where the padding agrees.
    let full = try embedder.tokenize(captions, maxLength: 12, padTo: 12)
    let h = embedder.hiddenStates(pixels: try golden.floatTensor("input.pixel_values"), text: full, pairs: true, batchSize: 2)
    #expect(closenessReport(h.multimodal!, try golden.floatTensor("model.multimodal_embeddings"), atol: 1e-4, rtol: 1e-4, name: "mm") == nil)
    #expect(closenessReport(h.text!, try golden.floatTensor("model.text_embeddings"), atol: 1e-4, rtol: 1e-4, name: "text hidden") == nil)
}

@Test func textLongerThanThePositionTableIsTruncated() throws {
    let embedder = try FlavaEmbedder(directory: tinyDir)
    let long = String(repeating: "word ", count: 200)
    let batch = try embedder.tokenize([long], maxLength: 77)
    #expect(batch.ids.shape == [1, 40])   // the tiny model has 40 positions
}
