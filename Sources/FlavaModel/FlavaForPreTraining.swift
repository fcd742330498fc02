// Mirrors FlavaForPreTraining (modeling_flava.py): the unmasked and masked passes through FlavaModel, the
// five heads and the six losses, with the reference's rules (FLAVA_REFERENCE.md §3):
// - MIM and MLM run only for unimodal batches (no multimodal pass);
// - ITM runs over every pair; afterwards only matching pairs (itm_label ≠ 0, or all if none match) feed
//   MMM-image, MMM-text and the global contrastive loss;
// - labels equal to ce_ignore_index (−100) are left out; each loss is multiplied by its config weight;
// - in training mode the logit scale is clamped to [0, ln 100] in place before use.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN

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

    /// Masked-prediction loss over the positions whose label is not ignored.
    private func maskedLoss(_ head: FlavaMaskedPredictionHead, sequence: Variable, labels: [Int], weight: Double)
        -> (logits: Variable, loss: Variable) {
        let ignore = config.ceIgnoreIndex
        let positions = labels.indices.filter { labels[$0] != ignore }
        let logits = head(selectTokens(sequence, positions))                            // [n, V]
        let loss = crossEntropy(logits, labels: positions.map { labels[$0] }, ignoreIndex: ignore) * Float(weight)
        return (logits, loss)
    }

    /// MIM/MMM-image labels: −100 wherever the patch was not masked.
    private func imageLabels(_ labels: IntTensor, masked: IntTensor) -> [Int] {
        precondition(labels.count == masked.count, "mim_labels (\(labels.shape)) and bool_masked_pos (\(masked.shape)) differ in size")
        return zip(labels.values, masked.values).map { $0.1 == 1 ? $0.0 : config.ceIgnoreIndex }
    }

    public func callAsFunction(_ input: FlavaPreTrainingInput) -> FlavaPreTrainingOutput {
        var out = FlavaPreTrainingOutput()
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
            let r = maskedLoss(mimHead, sequence: seq, labels: imageLabels(labels, masked: bmp), weight: config.mimWeight)
            out.mimLogits = r.logits; out.losses["mim"] = r.loss
        }
        // MLM: text-only batches.
        if config.mlmWeight > 0, let textMasked, mmMasked == nil, let labels = mlmLabels {
            let l = labels.shape.last ?? 0
            let seq = textMasked.sliced(axis: 1, (textMasked.shape[1] - l)..<textMasked.shape[1])   // [B, L, H]
            let r = maskedLoss(mlmHead, sequence: seq, labels: labels.values, weight: config.mlmWeight)
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
                keep = positive.isEmpty ? Array(itm.values.indices) : positive
                out.losses["itm"] = crossEntropy(logits, labels: itm.values, ignoreIndex: config.ceIgnoreIndex) * Float(config.itmWeight)
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
            let r = maskedLoss(mmmImageHead, sequence: seq, labels: imageLabels(labels, masked: bmp), weight: config.mmmImageWeight)
            out.mmmImageLogits = r.logits; out.losses["mmm_image"] = r.loss
        }
        // MMM-text: the last L tokens of the multimodal sequence.
        if config.mmmTextWeight > 0, let mm = mmMasked, let textMasked, let labels = mlmLabels {
            let l = textMasked.shape[1]
            let seq = mm.sliced(axis: 1, (mm.shape[1] - l)..<mm.shape[1])               // [B', L, H]
            let r = maskedLoss(mmmTextHead, sequence: seq, labels: labels.values, weight: config.mmmTextWeight)
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
        if config.returnLoss, !out.losses.isEmpty {
            let order = ["mim", "mlm", "itm", "global_contrastive", "mmm_image", "mmm_text"]
            let present = order.compactMap { out.losses[$0] }
            out.loss = present.dropFirst().reduce(present[0], +)
        }
        return out
    }
}
