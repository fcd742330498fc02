// Turning raw records into FLAVA pretraining batches, as TorchMultimodal's FLAVA transforms do: both image
// views from one RandomResizedCrop, BEiT block masks for the patches, captions tokenized to a fixed length
// with whole-word MLM masking (token-level for text-only data), and ITM negatives made by giving 10% of the
// pairs another caption from the batch.
import Foundation
import FlavaTensor

/// Shapes and rates of the pretraining inputs.
public struct PretrainingDataConfig: Sendable, Codable, Equatable {
    public var imageSize = 64
    public var patchSize = 8
    /// Codebook input side: one code per 8×8 codebook pixels, one per patch.
    public var codebookSize: Int { imageSize / patchSize * 8 }
    public var maxTextLength = 32
    /// Fraction of patches masked (BEiT: 75 of 196 ≈ 0.38).
    public var maskRatio = 0.38
    public var mlmProbability = 0.15
    public var itmNegativeProbability = 0.1
    /// Random crops (training) or a plain resize (evaluation).
    public var augment = true

    public init(imageSize: Int = 64, patchSize: Int = 8, maxTextLength: Int = 32) {
        self.imageSize = imageSize; self.patchSize = patchSize; self.maxTextLength = maxTextLength
    }

    public var gridSide: Int { imageSize / patchSize }

    /// Checks every field; errors name the file and the field under the checker's section.
    public func validate(_ k: ConfigChecker) throws {
        try k.int("imageSize", imageSize, in: 8...4_096)
        try k.int("patchSize", patchSize, in: 1...imageSize)
        try k.require(imageSize % patchSize == 0, "imageSize", imageSize, "must be a multiple of patchSize (\(patchSize))")
        try k.int("maxTextLength", maxTextLength, in: 3...65_536)
        try k.number("maskRatio", maskRatio, in: 0...1, aboveLower: true)
        try k.number("mlmProbability", mlmProbability, in: 0...1)
        try k.number("itmNegativeProbability", itmNegativeProbability, in: 0...1)
    }
    public var maskingGenerator: FlavaMaskingGenerator {
        let n = gridSide * gridSide
        let total = max(1, Int((Double(n) * maskRatio).rounded()))
        return FlavaMaskingGenerator(height: gridSide, width: gridSide, totalMaskPatches: total,
                                     minPatches: max(1, min(16, total / 4)))
    }
    public var processor: FlavaImageProcessor {
        var c = FlavaImageProcessorConfig(imageSize: imageSize)
        c.codebookSize = codebookSize
        return FlavaImageProcessor(c)
    }
}

/// One transformed sample.
public struct PretrainingItem: Sendable {
    public var pixels: Tensor?, codebookPixels: Tensor?
    public var patchMask: [Int]?
    public var ids: [Int]?, idsMasked: [Int]?, attention: [Int]?, mlmLabels: [Int]?
    public var label: Int?
}

/// A batch for FlavaForPreTraining (the fields present depend on the data kind).
public struct PretrainingBatch: Sendable {
    public var pixelValues: Tensor?, codebookPixelValues: Tensor?
    public var boolMaskedPos: IntTensor?
    public var inputIds: IntTensor?, inputIdsMasked: IntTensor?, attentionMask: IntTensor?, mlmLabels: IntTensor?
    public var itmLabels: IntTensor?
    public var labels: [Int?] = []
    public var count: Int
}

/// Builds pretraining items and batches.
public struct PretrainingBatcher: Sendable {
    public let config: PretrainingDataConfig
    public let tokenizer: BertTokenizer

    public init(config: PretrainingDataConfig, tokenizer: BertTokenizer) {
        self.config = config; self.tokenizer = tokenizer
    }

    /// Decodes, transforms, tokenizes and masks one record. `wholeWord` for captions of pairs.
    public func item(_ r: RawRecord, needImage: Bool, needText: Bool, wholeWord: Bool, _ g: inout SeededGenerator) throws -> PretrainingItem {
        var it = PretrainingItem(label: r.label)
        if needImage {
            guard let ref = r.image else { throw DataError("no image") }
            let img = try ref.load()
            let p = config.processor
            if config.augment {
                let (a, b) = p.trainingViews(img, using: &g)
                it.pixels = a; it.codebookPixels = b
            } else {
                it.pixels = p.pixelValues(img); it.codebookPixels = p.codebookPixelValues(img)
            }
            it.patchMask = config.maskingGenerator.generate(using: &g)
        }
        if needText {
            guard let text = r.text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw DataError("empty caption") }
            let e = tokenizer.encode(text, maxLength: config.maxTextLength, padToMaxLength: true)
            let m = wholeWord
                ? MLMMasking.maskWholeWords(e.ids, tokens: e.tokens, specialIds: tokenizer.specialIds, maskId: tokenizer.maskId,
                                            vocabSize: tokenizer.count, probability: config.mlmProbability, using: &g)
                : MLMMasking.mask(e.ids, specialIds: tokenizer.specialIds, maskId: tokenizer.maskId, vocabSize: tokenizer.count,
                                  probability: config.mlmProbability, using: &g)
            it.ids = e.ids; it.idsMasked = m.inputIds; it.attention = e.attentionMask; it.mlmLabels = m.labels
        }
        return it
    }

    /// Stacks items; for pairs, gives `itmNegativeProbability` of them another item's caption (itm_label 0).
    /// Guarantees at least one masked token and patch per batch (an empty selection would make the loss NaN).
    public func collate(_ items: [PretrainingItem], pairs: Bool, _ g: inout SeededGenerator) -> PretrainingBatch {
        var items = items
        let b = items.count
        var itm = [Int](repeating: 1, count: b)
        if pairs && b > 1 {
            let texts = items.map { ($0.ids, $0.idsMasked, $0.attention, $0.mlmLabels) }
            for i in 0..<b where Double(g.nextUniform()) < config.itmNegativeProbability {
                var j = Int(g.next() % UInt64(b - 1)); if j >= i { j += 1 }
                (items[i].ids, items[i].idsMasked, items[i].attention, items[i].mlmLabels) = texts[j]
                itm[i] = 0
            }
        }
        var batch = PretrainingBatch(labels: items.map(\.label), count: b)
        if let first = items.first, first.pixels != nil {
            let n = config.gridSide * config.gridSide
            batch.pixelValues = ShapeKernel.stack(items.map { $0.pixels! })
            batch.codebookPixelValues = ShapeKernel.stack(items.map { $0.codebookPixels! })
            var mask = items.flatMap { $0.patchMask! }
            if !mask.contains(1) { mask[Int(g.next() % UInt64(n))] = 1 }
            batch.boolMaskedPos = IntTensor(shape: [b, n], mask)
        }
        if let first = items.first, first.ids != nil {
            let l = config.maxTextLength
            batch.inputIds = IntTensor(shape: [b, l], items.flatMap { $0.ids! })
            var masked = items.flatMap { $0.idsMasked! }, labels = items.flatMap { $0.mlmLabels! }
            if !labels.contains(where: { $0 != -100 }) {
                // Mask one real token of the first sample (position 1 is the first word after [CLS]).
                labels[1] = batch.inputIds!.values[1]; masked[1] = tokenizer.maskId
            }
            batch.inputIdsMasked = IntTensor(shape: [b, l], masked)
            batch.attentionMask = IntTensor(shape: [b, l], items.flatMap { $0.attention! })
            batch.mlmLabels = IntTensor(shape: [b, l], labels)
        }
        if pairs { batch.itmLabels = IntTensor(shape: [b], itm) }
        return batch
    }
}
