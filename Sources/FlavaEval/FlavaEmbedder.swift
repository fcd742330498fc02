// The inference pipeline behind `flava embed` and everything built on it (classification, retrieval, matching):
// a model folder's FlavaModel, tokenizer and image processor; batched, no-grad, L2-normalized embeddings.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN
import FlavaModel
import FlavaData

/// A FLAVA model folder ready for inference.
///
/// Sendable, so a server may call it from many tasks at once. Unchecked, because the model it holds is a
/// `Module` (reference types with mutable parameters): every method of the embedder only reads the model's
/// parameters, under `withNoGrad` (grad mode is per thread), records nothing and keeps no state between calls,
/// and the tokenizer and the image processor are immutable. Changing `model` while other tasks use the
/// embedder (training it, loading weights into it, switching it to training mode) is a data race the type
/// cannot prevent. Concurrent calls compete for the same cores and BLAS threads: a service should run them
/// through one worker that batches them.
public final class FlavaEmbedder: @unchecked Sendable {
    public let model: FlavaModel
    public let tokenizer: BertTokenizer?
    public let processor: FlavaImageProcessor
    public let directory: String

    /// Loads config.json, the weights (any layout), vocab.txt (if present) and preprocessor_config.json
    /// (or the FLAVA defaults at the model's image size).
    /// The model is prepared for inference at `precision` (`Module.prepareForInference`: the fused
    /// query/key/value product; int8: every Linear quantized). `inferenceOnly` (the default) frees the float
    /// weights those forms replace, so an int8 model takes about a third of the memory; pass false to keep a
    /// model that can still be trained or saved.
    public init(directory: String, precision: InferencePrecision = .fp32, inferenceOnly: Bool = true) throws {
        self.directory = directory
        model = try FlavaCheckpoint.loadModel(directory)
        model.prepareForInference(precision, releasingFloatWeights: inferenceOnly)
        let vocab = URL(fileURLWithPath: directory).appendingPathComponent("vocab.txt").path
        tokenizer = FileManager.default.fileExists(atPath: vocab) ? try BertTokenizer(vocabFile: vocab) : nil
        try tokenizer?.checkFits(vocabularySize: model.config.textConfig.vocabSize)
        processor = FlavaImageProcessor(try FlavaImageProcessorConfig.load(modelDirectory: directory,
                                                                            imageSize: model.config.imageConfig.imageSize))
    }

    /// Wraps an already-built model; the tokenizer must fit its embedding table.
    public init(model: FlavaModel, tokenizer: BertTokenizer?, processor: FlavaImageProcessor? = nil) throws {
        try tokenizer?.checkFits(vocabularySize: model.config.textConfig.vocabSize)
        self.model = model
        self.tokenizer = tokenizer
        self.processor = processor ?? FlavaImageProcessor(FlavaImageProcessorConfig(imageSize: model.config.imageConfig.imageSize))
        directory = ""
    }

    /// The longest text the model takes (its position table).
    public var maxPositions: Int { model.config.textConfig.maxPositionEmbeddings }

    /// Tokenized texts padded to a common length: ids and mask [N, L].
    public struct TextBatch {
        public let ids: IntTensor; public let mask: IntTensor
        public init(ids: IntTensor, mask: IntTensor) { self.ids = ids; self.mask = mask }
    }

    /// Tokenizes `texts` with [CLS] … [SEP], truncated to `maxLength` (capped at the model's positions),
    /// padded to the longest (or to `padTo`).
    public func tokenize(_ texts: [String], maxLength: Int = 77, padTo: Int? = nil) throws -> TextBatch {
        guard let tok = tokenizer else { throw TokenizerError("\(directory): no vocab.txt in the model folder, cannot encode text") }
        let limit = min(maxLength, maxPositions)
        let encs = texts.map { tok.encode($0, maxLength: limit) }
        let l = max(padTo ?? 0, encs.map(\.ids.count).max() ?? 0)
        var ids: [Int] = [], mask: [Int] = []
        for e in encs {
            let pad = l - e.ids.count
            ids += e.ids + Array(repeating: tok.padId, count: pad)
            mask += e.attentionMask + Array(repeating: 0, count: pad)
        }
        return TextBatch(ids: IntTensor(shape: [texts.count, l], ids), mask: IntTensor(shape: [texts.count, l], mask))
    }

    /// Token ids of each text ([CLS] … [SEP], truncated to `maxLength`, capped at the model's positions), unpadded:
    /// for callers that batch texts from several sources later (`batch(ids:)`).
    public func tokenIds(_ texts: [String], maxLength: Int = 77) throws -> [[Int]] {
        guard let tok = tokenizer else { throw TokenizerError("\(directory): no vocab.txt in the model folder, cannot encode text") }
        let limit = min(maxLength, maxPositions)
        return texts.map { tok.encode($0, maxLength: limit).ids }
    }

    /// One batch of unpadded token ids (`tokenIds`), padded to the longest with the attention mask: the same
    /// batch as `tokenize` of the texts.
    public func batch(ids: [[Int]]) -> TextBatch {
        let pad = tokenizer?.padId ?? 0, l = ids.map(\.count).max() ?? 0
        var flat: [Int] = [], mask: [Int] = []
        for e in ids {
            flat += e + Array(repeating: pad, count: l - e.count)
            mask += Array(repeating: 1, count: e.count) + Array(repeating: 0, count: l - e.count)
        }
        return TextBatch(ids: IntTensor(shape: [ids.count, l], flat), mask: IntTensor(shape: [ids.count, l], mask))
    }

    /// pixel_values [N, 3, S, S] for decoded images.
    public func pixelValues(_ images: [RGBImage]) -> Tensor {
        ShapeKernel.stack(images.map { processor.pixelValues($0) })
    }

    /// Rows [start, end) of a [N, ...] integer tensor.
    static func rows(_ t: IntTensor, _ r: Range<Int>) -> IntTensor {
        let per = t.count / max(t.shape[0], 1)
        return IntTensor(shape: [r.count] + t.shape.dropFirst(), Array(t.values[(r.lowerBound * per)..<(r.upperBound * per)]))
    }

    /// L2-normalized projected [CLS] image embeddings [N, P], batch by batch; `progress(done)` after each.
    public func imageEmbeddings(_ pixels: Tensor, batchSize: Int = 8, progress: ((Int) -> Void)? = nil) -> Tensor {
        let n = pixels.shape[0]
        var parts: [Tensor] = []
        for start in stride(from: 0, to: n, by: batchSize) {
            let r = start..<min(n, start + batchSize)
            let batch = ShapeKernel.slice(pixels, axis: 0, start: r.lowerBound, end: r.upperBound)
            parts.append(withNoGrad { model.imageEmbedding(Variable(batch)).value })
            progress?(r.upperBound)
        }
        return parts.isEmpty ? Tensor.zeros([0, model.config.projectionDim]) : ShapeKernel.concat(parts, axis: 0)
    }

    /// L2-normalized projected [CLS] text embeddings [N, P].
    public func textEmbeddings(_ batch: TextBatch, batchSize: Int = 32, progress: ((Int) -> Void)? = nil) -> Tensor {
        let n = batch.ids.shape[0]
        var parts: [Tensor] = []
        for start in stride(from: 0, to: n, by: batchSize) {
            let r = start..<min(n, start + batchSize)
            parts.append(withNoGrad { model.textEmbedding(FlavaEmbedder.rows(batch.ids, r), attentionMask: FlavaEmbedder.rows(batch.mask, r)).value })
            progress?(r.upperBound)
        }
        return parts.isEmpty ? Tensor.zeros([0, model.config.projectionDim]) : ShapeKernel.concat(parts, axis: 0)
    }

    /// Final-LayerNorm hidden states of images [N, 1+patches, H], texts [N, L, H] and, for pairs, the
    /// multimodal encoder [N, 1+1+patches+L, H].
    public func hiddenStates(pixels: Tensor?, text: TextBatch?, pairs: Bool, batchSize: Int = 8,
                             progress: ((Int) -> Void)? = nil) -> (image: Tensor?, text: Tensor?, multimodal: Tensor?) {
        var img: [Tensor] = [], txt: [Tensor] = [], mm: [Tensor] = []
        let n = max(pixels?.shape[0] ?? 0, text?.ids.shape[0] ?? 0)
        for start in stride(from: 0, to: n, by: batchSize) {
            let r = start..<min(n, start + batchSize)
            withNoGrad {
                var pv: Variable? = nil
                if let p = pixels, r.lowerBound < p.shape[0] {
                    pv = Variable(ShapeKernel.slice(p, axis: 0, start: r.lowerBound, end: min(r.upperBound, p.shape[0])))
                }
                var ids: IntTensor? = nil, mask: IntTensor? = nil
                if let t = text, r.lowerBound < t.ids.shape[0] {
                    let rr = r.lowerBound..<min(r.upperBound, t.ids.shape[0])
                    ids = FlavaEmbedder.rows(t.ids, rr); mask = FlavaEmbedder.rows(t.mask, rr)
                }
                let out = model(pixelValues: pv, inputIds: ids, attentionMask: mask, skipMultimodalEncoder: !pairs)
                if let e = out.imageEmbeddings { img.append(e.value) }
                if let e = out.textEmbeddings { txt.append(e.value) }
                if let e = out.multimodalEmbeddings { mm.append(e.value) }
            }
            progress?(r.upperBound)
        }
        return (img.isEmpty ? nil : ShapeKernel.concat(img, axis: 0), txt.isEmpty ? nil : ShapeKernel.concat(txt, axis: 0),
                mm.isEmpty ? nil : ShapeKernel.concat(mm, axis: 0))
    }
}
