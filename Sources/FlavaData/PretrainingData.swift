// Turning raw records into FLAVA pretraining batches, as TorchMultimodal's FLAVA transforms do: both image
// views from one RandomResizedCrop, BEiT block masks for the patches, captions tokenized to a fixed length
// with whole-word MLM masking (token-level for text-only data), and ITM negatives made by giving 10% of the
// pairs another caption from the batch.
import Foundation
import FlavaTensor
import FlavaDistributed

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
    /// A slice not yet finished (PretrainingBatcher.finish): the batch's generator and whether it holds pairs.
    public var finishing: (generator: SeededGenerator, pairs: Bool)?
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
        finish(slice(items, pairs: pairs, g), communicator: LocalCommunicator.shared)
    }

    /// The part of `collate` that needs only this rank's items (run on the loader's thread): stacking. The ITM
    /// negatives and the masking guarantees, which look at the whole global batch, are left to `finish`, with
    /// the batch's generator `g`.
    public func slice(_ items: [PretrainingItem], pairs: Bool, _ g: SeededGenerator) -> PretrainingBatch {
        let b = items.count
        var batch = PretrainingBatch(labels: items.map(\.label), count: b)
        batch.finishing = (g, pairs)
        if let first = items.first, first.pixels != nil {
            let n = config.gridSide * config.gridSide
            batch.pixelValues = ShapeKernel.stack(items.map { $0.pixels! })
            batch.codebookPixelValues = ShapeKernel.stack(items.map { $0.codebookPixels! })
            batch.boolMaskedPos = IntTensor(shape: [b, n], items.flatMap { $0.patchMask! })
        }
        if let first = items.first, first.ids != nil {
            let l = config.maxTextLength
            batch.inputIds = IntTensor(shape: [b, l], items.flatMap { $0.ids! })
            batch.inputIdsMasked = IntTensor(shape: [b, l], items.flatMap { $0.idsMasked! })
            batch.attentionMask = IntTensor(shape: [b, l], items.flatMap { $0.attention! })
            batch.mlmLabels = IntTensor(shape: [b, l], items.flatMap { $0.mlmLabels! })
        }
        return batch
    }

    /// Completes a `slice` (on the training thread, where collectives may run): the ITM negatives (a caption of
    /// another sample of the global batch) and the guarantees of at least one masked patch and token in the
    /// global batch, decided identically on every rank from every rank's token ids and masks (gathered) and
    /// the batch's generator; then this rank's rows. With one process, the batch is the whole batch.
    public func finish(_ slice: PretrainingBatch, communicator comm: Communicator) -> PretrainingBatch {
        var batch = slice
        guard let (g0, pairs) = batch.finishing else { return batch }
        batch.finishing = nil
        var g = g0
        let b = batch.count, total = b * comm.size, offset = comm.rank * b
        func gathered(_ t: IntTensor?) -> [Int]? {
            t.map { comm.allGather($0.values.map { Int32(truncatingIfNeeded: $0) }).map(Int.init) }
        }
        let l = batch.inputIds?.shape[1] ?? 0
        var ids = gathered(batch.inputIds), masked = gathered(batch.inputIdsMasked)
        var attention = gathered(batch.attentionMask), labels = gathered(batch.mlmLabels)
        var itm = [Int](repeating: 1, count: total)
        if pairs && total > 1 {
            let texts = (ids, masked, attention, labels)
            func copyRow(_ dst: inout [Int]?, _ src: [Int]?, _ i: Int, _ j: Int) {
                guard let src else { return }
                dst!.replaceSubrange((i * l)..<((i + 1) * l), with: src[(j * l)..<((j + 1) * l)])
            }
            for i in 0..<total where Double(g.nextUniform()) < config.itmNegativeProbability {
                var j = Int(g.next() % UInt64(total - 1)); if j >= i { j += 1 }
                copyRow(&ids, texts.0, i, j); copyRow(&masked, texts.1, i, j)
                copyRow(&attention, texts.2, i, j); copyRow(&labels, texts.3, i, j)
                itm[i] = 0
            }
        }
        func mine(_ v: [Int], _ per: Int) -> IntTensor { IntTensor(shape: [b, per], Array(v[(offset * per)..<((offset + b) * per)])) }
        if let bmp = batch.boolMaskedPos {
            let n = bmp.shape[1]
            var mask = gathered(bmp)!
            if !mask.contains(1) { mask[Int(g.next() % UInt64(n))] = 1 }
            batch.boolMaskedPos = mine(mask, n)
        }
        if var labels, var masked, let ids {
            if !labels.contains(where: { $0 != -100 }) {
                // Mask one real token of the first sample (position 1 is the first word after [CLS]).
                labels[1] = ids[1]; masked[1] = tokenizer.maskId
            }
            batch.inputIds = mine(ids, l); batch.inputIdsMasked = mine(masked, l)
            batch.attentionMask = mine(attention!, l); batch.mlmLabels = mine(labels, l)
        }
        if pairs { batch.itmLabels = IntTensor(shape: [b], Array(itm[offset..<(offset + b)])) }
        return batch
    }
}
