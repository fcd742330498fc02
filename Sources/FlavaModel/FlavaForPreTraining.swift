// Mirrors FlavaForPreTraining (modeling_flava.py): the unmasked and masked passes through FlavaModel, the
// five heads and the six losses, with the reference's rules (FLAVA_REFERENCE.md §3):
// - MIM and MLM run only for unimodal batches (no multimodal pass);
// - ITM runs over every pair; afterwards only matching pairs (itm_label ≠ 0, or all if none match) feed
//   MMM-image, MMM-text and the global contrastive loss;
// - labels equal to ce_ignore_index (−100) are left out; each loss is multiplied by its config weight;
// - in training mode the logit scale is clamped to [0, ln 100] in place before use.
// Data-parallel (an input with a communicator of several ranks, each holding an equal slice of the global
// batch): each loss is this rank's share of the global one — masked-token losses divided by the global
// masked-token count, ITM by the global batch, the global contrastive loss over this rank's rows against every
// rank's embeddings (gathered with a gradient) — so the shares sum to one process's loss on the whole batch.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN
import FlavaDistributed

/// Inputs of one pretraining step (the names of HF `FlavaForPreTraining.forward`).
public struct FlavaPreTrainingInput {
    public var inputIds: IntTensor?
    public var inputIdsMasked: IntTensor?
    public var attentionMask: IntTensor?
    public var tokenTypeIds: IntTensor?
    public var pixelValues: Tensor?
    public var codebookPixelValues: Tensor?
    public var boolMaskedPos: IntTensor?
    public var mlmLabels: IntTensor?
    public var mimLabels: IntTensor?
    public var itmLabels: IntTensor?
    /// nil: the config's `skip_unmasked_multimodal_encoder`.
    public var skipUnmaskedMultimodalEncoder: Bool?
    /// Data-parallel: the ranks whose slices (of equal size, rank order) make the global batch; each loss is then
    /// this rank's share of the global batch's loss. nil or one rank: the batch is the whole batch.
    public var communicator: Communicator?

    public init(inputIds: IntTensor? = nil, inputIdsMasked: IntTensor? = nil, attentionMask: IntTensor? = nil,
                tokenTypeIds: IntTensor? = nil, pixelValues: Tensor? = nil, codebookPixelValues: Tensor? = nil,
                boolMaskedPos: IntTensor? = nil, mlmLabels: IntTensor? = nil, mimLabels: IntTensor? = nil,
                itmLabels: IntTensor? = nil, skipUnmaskedMultimodalEncoder: Bool? = nil) {
        self.inputIds = inputIds; self.inputIdsMasked = inputIdsMasked; self.attentionMask = attentionMask
        self.tokenTypeIds = tokenTypeIds; self.pixelValues = pixelValues; self.codebookPixelValues = codebookPixelValues
        self.boolMaskedPos = boolMaskedPos; self.mlmLabels = mlmLabels; self.mimLabels = mimLabels
        self.itmLabels = itmLabels; self.skipUnmaskedMultimodalEncoder = skipUnmaskedMultimodalEncoder
    }
}

/// What a pretraining step produced.
public struct FlavaPreTrainingOutput {
    /// Sum of the weighted losses present (nil when none ran).
    public var loss: Variable?
    /// Weighted losses by HF name: mim, mlm, itm, global_contrastive, mmm_image, mmm_text.
    public var losses: [String: Variable] = [:]
    public var unmasked: FlavaModelOutput?
    public var masked: FlavaModelOutput?
    public var mimLogits: Variable?, mlmLogits: Variable?, itmLogits: Variable?
    public var mmmImageLogits: Variable?, mmmTextLogits: Variable?
    public var contrastiveLogitsPerImage: Variable?, contrastiveLogitsPerText: Variable?
}

/// FlavaForPreTraining.
public final class FlavaForPreTraining: Module {
    @Child("flava") public var flava: FlavaModel
    @OptionalChild("image_codebook") public var imageCodebook: FlavaImageCodebook?
    @Child("mim_head") public var mimHead: FlavaMaskedPredictionHead
    @Child("mlm_head") public var mlmHead: FlavaMaskedPredictionHead
    @Child("itm_head") public var itmHead: FlavaITMHead
    @Child("mmm_image_head") public var mmmImageHead: FlavaMaskedPredictionHead
    @Child("mmm_text_head") public var mmmTextHead: FlavaMaskedPredictionHead
    public let config: FlavaConfig

    /// Logit-scale clamp range used in training mode: [0, ln 100].
    public static let logitScaleClamp: ClosedRange<Float> = 0...4.6052

    public init(_ c: FlavaConfig, init ini: inout Initializer) {
        config = c
        super.init()
        flava = FlavaModel(c, init: &ini)
        if c.initCodebook { imageCodebook = FlavaImageCodebook(c.imageCodebookConfig, init: &ini) }
        let ic = c.imageConfig, tc = c.textConfig, mc = c.multimodalConfig
        mimHead = FlavaMaskedPredictionHead(hidden: ic.hiddenSize, vocab: ic.vocabSize, eps: Float(ic.layerNormEps), init: &ini)
        mlmHead = FlavaMaskedPredictionHead(hidden: tc.hiddenSize, vocab: tc.vocabSize, eps: Float(tc.layerNormEps), init: &ini)
        itmHead = FlavaITMHead(hidden: c.hiddenSize, init: &ini)
        mmmImageHead = FlavaMaskedPredictionHead(hidden: mc.hiddenSize, vocab: ic.vocabSize, eps: Float(ic.layerNormEps), init: &ini)
        mmmTextHead = FlavaMaskedPredictionHead(hidden: mc.hiddenSize, vocab: tc.vocabSize, eps: Float(tc.layerNormEps), init: &ini)
    }

    /// Rows of a [B, T, H] sequence at flat (b·T + t) positions → [n, H].
    private func selectTokens(_ seq: Variable, _ positions: [Int]) -> Variable {
        gatherRows(seq.reshaped([-1, seq.shape[2]]), positions)
    }

    /// Masked-prediction loss over the positions whose label is not ignored. `globalCount`: data-parallel, the
    /// masked positions of the whole global batch (the loss is then this slice's share).
    private func maskedLoss(_ head: FlavaMaskedPredictionHead, sequence: Variable, labels: [Int], weight: Double,
                            globalCount: Double? = nil) -> (logits: Variable, loss: Variable) {
        let ignore = config.ceIgnoreIndex
        let positions = labels.indices.filter { labels[$0] != ignore }
        if globalCount != nil, positions.isEmpty {
            // Nothing masked in this slice: no share (the head gets zeros from this rank).
            return (Variable(Tensor.zeros([0, 0])), Variable(Tensor(scalar: 0)))
        }
        let logits = head(selectTokens(sequence, positions))                            // [n, V]
        var loss = crossEntropy(logits, labels: positions.map { labels[$0] }, ignoreIndex: ignore) * Float(weight)
        if let globalCount { loss = loss * Float(Double(positions.count) / max(globalCount, 1)) }
        return (logits, loss)
    }

    /// Data-parallel counts over the global batch, from one all-reduce of this slice's.
    struct GlobalCounts {
        var maskedPatches = 0.0, maskedTokens = 0.0, rows = 0.0, positives = 0.0
        var maskedPatchesOfPositives = 0.0, maskedTokensOfPositives = 0.0
    }

    private func globalCounts(_ input: FlavaPreTrainingInput, _ comm: Communicator) -> GlobalCounts {
        let ignore = config.ceIgnoreIndex
        let rows = input.pixelValues?.shape[0] ?? input.inputIds?.shape[0] ?? 0
        let itm = input.itmLabels?.values ?? []
        let positive = (0..<rows).map { itm.isEmpty ? true : itm[$0] != 0 }
        func perRow(_ t: IntTensor?, _ counted: (Int) -> Bool) -> [Double] {
            guard let t, rows > 0 else { return [Double](repeating: 0, count: rows) }
            let per = t.count / rows
            return (0..<rows).map { r in Double(t.values[(r * per)..<((r + 1) * per)].filter(counted).count) }
        }
        let patches = perRow(input.boolMaskedPos) { $0 == 1 }
        let tokens = perRow(input.mlmLabels) { $0 != ignore }
        var patchesOfPositives = 0.0, tokensOfPositives = 0.0
        for r in 0..<rows where positive[r] { patchesOfPositives += patches[r]; tokensOfPositives += tokens[r] }
        let positives = Double(positive.filter { $0 }.count)
        let local: [Double] = [patches.reduce(0, +), tokens.reduce(0, +), Double(rows), positives, patchesOfPositives, tokensOfPositives]
        let g: [Double] = comm.allReduce(local, .sum)
        return GlobalCounts(maskedPatches: g[0], maskedTokens: g[1], rows: g[2], positives: g[3],
                            maskedPatchesOfPositives: g[4], maskedTokensOfPositives: g[5])
    }

    /// MIM/MMM-image labels: −100 wherever the patch was not masked.
    private func imageLabels(_ labels: IntTensor, masked: IntTensor) -> [Int] {
        precondition(labels.count == masked.count, "mim_labels (\(labels.shape)) and bool_masked_pos (\(masked.shape)) differ in size")
        return zip(labels.values, masked.values).map { $0.1 == 1 ? $0.0 : config.ceIgnoreIndex }
    }

    public func callAsFunction(_ input: FlavaPreTrainingInput) -> FlavaPreTrainingOutput {
        var out = FlavaPreTrainingOutput()
        let comm = input.communicator.flatMap { $0.size > 1 ? $0 : nil }
        let counts = comm.map { globalCounts(input, $0) }
        let pixels = input.pixelValues.map { Variable($0) }
        let idsMasked = input.inputIdsMasked ?? input.inputIds
        // Unmasked pass (for the contrastive loss) and masked pass.
        let unmasked = flava(pixelValues: pixels, inputIds: input.inputIds, attentionMask: input.attentionMask,
                             tokenTypeIds: input.tokenTypeIds,
                             skipMultimodalEncoder: input.skipUnmaskedMultimodalEncoder ?? config.skipUnmaskedMultimodalEncoder)
        let masked = flava(pixelValues: pixels, inputIds: idsMasked, attentionMask: input.attentionMask,
                           tokenTypeIds: input.tokenTypeIds, boolMaskedPos: input.boolMaskedPos)
        out.unmasked = unmasked; out.masked = masked
        let imageMasked = masked.imageEmbeddings, textMasked = masked.textEmbeddings
        var mmMasked = masked.multimodalEmbeddings

        var mimLabels = input.mimLabels
        if mimLabels == nil, config.returnLoss, imageMasked != nil || mmMasked != nil {
            guard let cb = imageCodebook, let cpx = input.codebookPixelValues else {
                preconditionFailure("MIM/MMM labels need an image codebook and codebook_pixel_values (or pass mim_labels)")
            }
            mimLabels = cb.codebookIndices(cpx)
        }
        var mlmLabels = input.mlmLabels
        var boolMaskedPos = input.boolMaskedPos

        // MIM: image-only batches.
        if config.mimWeight > 0, let imageMasked, mmMasked == nil, let labels = mimLabels {
            guard let bmp = boolMaskedPos else { preconditionFailure("MIM needs bool_masked_pos") }
            let n = labels.count / labels.shape[0]
            let seq = imageMasked.sliced(axis: 1, (imageMasked.shape[1] - n)..<imageMasked.shape[1])  // [B, N, H]
            let r = maskedLoss(mimHead, sequence: seq, labels: imageLabels(labels, masked: bmp), weight: config.mimWeight,
                               globalCount: counts?.maskedPatches)
            out.mimLogits = r.logits; out.losses["mim"] = r.loss
        }
        // MLM: text-only batches.
        if config.mlmWeight > 0, let textMasked, mmMasked == nil, let labels = mlmLabels {
            let l = labels.shape.last ?? 0
            let seq = textMasked.sliced(axis: 1, (textMasked.shape[1] - l)..<textMasked.shape[1])   // [B, L, H]
            let r = maskedLoss(mlmHead, sequence: seq, labels: labels.values, weight: config.mlmWeight, globalCount: counts?.maskedTokens)
            out.mlmLogits = r.logits; out.losses["mlm"] = r.loss
        }
        // ITM over every pair, then keep the matching pairs for MMM and contrastive.
        var keep: [Int]? = nil
        if config.itmWeight > 0, let mm = mmMasked {
            let logits = itmHead(mm)                                                    // [B, 2]
            out.itmLogits = logits
            if let itm = input.itmLabels {
                precondition(itm.count == mm.shape[0], "itm_labels has \(itm.count) entries for a batch of \(mm.shape[0])")
                let positive = itm.values.indices.filter { itm.values[$0] != 0 }
                // No matching pair: all pairs (data-parallel: none in the whole global batch).
                let nonePositive = counts.map { $0.positives == 0 } ?? positive.isEmpty
                keep = nonePositive ? Array(itm.values.indices) : positive
                out.losses["itm"] = crossEntropy(logits, labels: itm.values, ignoreIndex: config.ceIgnoreIndex) * Float(config.itmWeight)
                if let c = counts { out.losses["itm"] = out.losses["itm"]! * Float(Double(itm.count) / c.rows) }
                let rows = keep!
                mmMasked = gatherRows(mm, rows)
                func pick(_ t: IntTensor?) -> IntTensor? {
                    guard let t else { return nil }
                    let per = t.count / t.shape[0]
                    return IntTensor(shape: [rows.count] + t.shape.dropFirst(), rows.flatMap { t.values[($0 * per)..<(($0 + 1) * per)] })
                }
                mlmLabels = pick(mlmLabels); mimLabels = pick(mimLabels); boolMaskedPos = pick(boolMaskedPos)
            }
        }
        // MMM-image: the patch tokens of the multimodal sequence (skip [CLS_M] and the image [CLS]).
        if config.mmmImageWeight > 0, let mm = mmMasked, let imageMasked, let labels = mimLabels {
            guard let bmp = boolMaskedPos else { preconditionFailure("MMM-image needs bool_masked_pos") }
            let seq = mm.sliced(axis: 1, 2..<(2 + imageMasked.shape[1] - 1))          // [B', N, H]
            let r = maskedLoss(mmmImageHead, sequence: seq, labels: imageLabels(labels, masked: bmp), weight: config.mmmImageWeight,
                               globalCount: counts.map { $0.positives == 0 ? $0.maskedPatches : $0.maskedPatchesOfPositives })
            out.mmmImageLogits = r.logits; out.losses["mmm_image"] = r.loss
        }
        // MMM-text: the last L tokens of the multimodal sequence.
        if config.mmmTextWeight > 0, let mm = mmMasked, let textMasked, let labels = mlmLabels {
            let l = textMasked.shape[1]
            let seq = mm.sliced(axis: 1, (mm.shape[1] - l)..<mm.shape[1])               // [B', L, H]
            let r = maskedLoss(mmmTextHead, sequence: seq, labels: labels.values, weight: config.mmmTextWeight,
                               globalCount: counts.map { $0.positives == 0 ? $0.maskedTokens : $0.maskedTokensOfPositives })
            out.mmmTextLogits = r.logits; out.losses["mmm_text"] = r.loss
        }
        // Global contrastive loss on the unmasked [CLS] embeddings.
        if config.globalContrastiveWeight > 0, let img = unmasked.imageEmbeddings, let txt = unmasked.textEmbeddings {
            let t = l2Normalize(flava.textProjection(firstToken(txt)))                  // [B, P]
            let i = l2Normalize(flava.imageProjection(firstToken(img)))                 // [B, P]
            if isTraining {
                let s = flava.logitScale.value.scalarValue
                let clamped = min(max(s, FlavaForPreTraining.logitScaleClamp.lowerBound), FlavaForPreTraining.logitScaleClamp.upperBound)
                if clamped != s { flava.logitScale.value = Tensor(shape: flava.logitScale.shape, repeating: clamped) }
            }
            if let comm, let c = counts {
                // This slice's rows against every rank's embeddings; labels are global row indices.
                let b = i.shape[0], offset = comm.rank * b
                var (perImage, perText) = FlavaGlobalContrastiveHead.logits(image: i, text: t, logitScale: flava.logitScale,
                                                                            allImages: allGatherRows(i, comm), allTexts: allGatherRows(t, comm))
                let kept = keep ?? Array(0..<b)
                let globalKept = c.positives == 0 || keep == nil ? c.rows : c.positives
                // A slice with no matching pair keeps the same graph (every rank's backward must reach the gathers)
                // and adds nothing.
                let rows = kept.isEmpty ? Array(0..<b) : kept
                let share = kept.isEmpty ? 0 : Double(kept.count) / globalKept
                perImage = gatherRows(perImage, rows); perText = gatherRows(perText, rows)
                let labels = rows.map { offset + $0 }
                out.contrastiveLogitsPerImage = perImage; out.contrastiveLogitsPerText = perText
                out.losses["global_contrastive"] = (crossEntropy(perImage, labels: labels) + crossEntropy(perText, labels: labels))
                    * Float(0.5 * config.globalContrastiveWeight * share)
            } else {
                var (perImage, perText) = FlavaGlobalContrastiveHead.logits(image: i, text: t, logitScale: flava.logitScale)
                var labels = Array(0..<perImage.shape[0])
                if let rows = keep {
                    perImage = gatherRows(perImage, rows); perText = gatherRows(perText, rows)
                    labels = rows.map { labels[$0] }
                }
                out.contrastiveLogitsPerImage = perImage; out.contrastiveLogitsPerText = perText
                let loss = (crossEntropy(perImage, labels: labels) + crossEntropy(perText, labels: labels)) * Float(0.5 * config.globalContrastiveWeight)
                out.losses["global_contrastive"] = loss
            }
        }
        if config.returnLoss, !out.losses.isEmpty {
            let order = ["mim", "mlm", "itm", "global_contrastive", "mmm_image", "mmm_text"]
            let present = order.compactMap { out.losses[$0] }
            out.loss = present.dropFirst().reduce(present[0], +)
        }
        return out
    }
}
