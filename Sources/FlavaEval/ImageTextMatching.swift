// Image–text matching (flava match, the service's /v1/match and search reranking): the ITM head of a
// FlavaForPreTraining on the multimodal encoder's [CLS] of each (image, text) pair, softmax over
// (no match, match) — FLAVA_REFERENCE.md, FlavaITMHead.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN
import FlavaModel
import FlavaData

/// A pretraining checkpoint's encoders and ITM head, ready for inference. Unchecked Sendable for the same
/// reasons as FlavaEmbedder (read-only use under withNoGrad); run calls through one worker.
public final class ImageTextMatcher: @unchecked Sendable {
    public let pretraining: FlavaForPreTraining
    /// The same encoders as `pretraining.flava`, with the folder's tokenizer and image processor.
    public let embedder: FlavaEmbedder

    /// Loads a FlavaForPreTraining folder; throws when the checkpoint has no ITM head (a FlavaModel checkpoint).
    /// The model is prepared for inference at `precision`; `inferenceOnly` frees the float weights replaced.
    public init(directory: String, precision: InferencePrecision = .fp32, inferenceOnly: Bool = true) throws {
        let (pt, report) = try FlavaCheckpoint.loadPreTraining(directory)
        if report.missing.contains(where: { $0.hasPrefix("itm_head.") }) {
            throw ConfigError(directory, "this checkpoint has no ITM head (a FlavaModel checkpoint?)")
        }
        pt.prepareForInference(precision, releasingFloatWeights: inferenceOnly)
        pretraining = pt
        let vocab = URL(fileURLWithPath: directory).appendingPathComponent("vocab.txt").path
        guard FileManager.default.fileExists(atPath: vocab) else { throw TokenizerError("\(directory): no vocab.txt in the model folder, cannot encode text") }
        embedder = try FlavaEmbedder(model: pt.flava, tokenizer: try BertTokenizer(vocabFile: vocab),
                                     processor: FlavaImageProcessor(try FlavaImageProcessorConfig.load(modelDirectory: directory,
                                                                                                       imageSize: pt.config.imageConfig.imageSize)))
    }

    /// The probability that each of `texts` describes its image: `pixels` is one image ([3, S, S] or
    /// [1, 3, S, S]) for all the texts, or one image per text ([N, 3, S, S]); in pairs of at most `batchSize`.
    public func probabilities(pixels: Tensor, texts: [String], batchSize: Int = 8) throws -> [Double] {
        guard !texts.isEmpty else { return [] }
        let s = pixels.shape[pixels.shape.count - 1]
        let images = pixels.shape.count == 4 ? pixels.shape[0] : 1
        guard images == 1 || images == texts.count else {
            throw DataError("image-text matching: \(images) images for \(texts.count) texts (give one image, or one per text)")
        }
        let all = pixels.reshaped([images, 3, s, s])
        let batch = try embedder.tokenize(texts)
        var out: [Double] = []
        for start in stride(from: 0, to: texts.count, by: batchSize) {
            let r = start..<min(texts.count, start + batchSize)
            let px = images == 1 ? ShapeKernel.concat(Array(repeating: all, count: r.count), axis: 0)
                                 : ShapeKernel.slice(all, axis: 0, start: r.lowerBound, end: r.upperBound)
            let logits = withNoGrad { () -> Tensor in
                let o = pretraining.flava(pixelValues: Variable(px), inputIds: FlavaEmbedder.rows(batch.ids, r),
                                          attentionMask: FlavaEmbedder.rows(batch.mask, r))
                return pretraining.itmHead(o.multimodalEmbeddings!).value          // [n, 2]
            }
            for i in 0..<r.count {
                let a = Double(logits[flat: 2 * i]), b = Double(logits[flat: 2 * i + 1]), m = max(a, b)
                out.append(exp(b - m) / (exp(a - m) + exp(b - m)))
            }
        }
        return out
    }
}
