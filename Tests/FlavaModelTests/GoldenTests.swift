// The contract: every tensor in ../shared/reference/flava_tiny/golden.safetensors reproduced — forward
// outputs and losses within atol 1e-4 + rtol 1e-4, every parameter gradient of the three pretraining passes
// within atol 1e-5 + rtol 1e-3, codebook logits within 1e-4.
import Testing
import Foundation
import FlavaKit
import TestSupport

private let tinyDir = TestPaths.reference.appendingPathComponent("flava_tiny")

private func loadTiny() throws -> (FlavaForPreTraining, SafeTensorsFile) {
    let config = try FlavaConfig.load(tinyDir.appendingPathComponent("config.json").path)
    var ini = Initializer(seed: 0)
    let model = FlavaForPreTraining(config, init: &ini)
    try model.load(from: try SafeTensorsFile(path: tinyDir.appendingPathComponent("model.safetensors").path))
    let golden = try SafeTensorsFile(path: tinyDir.appendingPathComponent("golden.safetensors").path)
    return (model, golden)
}

private func expectClose(_ got: Tensor, _ golden: SafeTensorsFile, _ key: String, atol: Float = 1e-4, rtol: Float = 1e-4,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
    let want = try golden.floatTensor(key)
    let report = closenessReport(got.reshaped(want.shape.isEmpty ? [] : want.shape).copy(), want, atol: atol, rtol: rtol, name: key)
    #expect(got.count == want.count && report == nil, "\(report ?? "size \(got.count) vs \(want.count)")", sourceLocation: sourceLocation)
}

@Test func tinyCheckpointLoadsStrictlyWithEveryKey() throws {
    let (model, _) = try loadTiny()
    #expect(model.namedParameters().count == 182)
}

@Test func forwardOutputsMatchTheReference() throws {
    let (model, g) = try loadTiny()
    let pixels = Variable(try g.floatTensor("input.pixel_values"))
    let ids = try g.intTensor("input.input_ids"), mask = try g.intTensor("input.attention_mask")
    try withNoGrad {
        let out = model.flava(pixelValues: pixels, inputIds: ids, attentionMask: mask)
        try expectClose(out.imageEmbeddings!.value, g, "model.image_embeddings")
        try expectClose(out.image!.poolerOutput.value, g, "model.image_pooler")
        try expectClose(out.textEmbeddings!.value, g, "model.text_embeddings")
        try expectClose(out.text!.poolerOutput.value, g, "model.text_pooler")
        try expectClose(out.multimodalEmbeddings!.value, g, "model.multimodal_embeddings")
        try expectClose(out.multimodal!.poolerOutput.value, g, "model.multimodal_pooler")
        try expectClose(model.flava.imageFeatures(pixels).value, g, "model.image_features")
        try expectClose(model.flava.textFeatures(ids, attentionMask: mask).value, g, "model.text_features")
        let masked = model.flava(pixelValues: pixels, inputIds: try g.intTensor("input.input_ids_masked"), attentionMask: mask,
                                 boolMaskedPos: try g.intTensor("input.bool_masked_pos"))
        try expectClose(masked.imageEmbeddings!.value, g, "model.masked_image_embeddings")
        try expectClose(masked.multimodalEmbeddings!.value, g, "model.masked_multimodal_embeddings")
    }
}

@Test func codebookMatchesTheReference() throws {
    let (model, g) = try loadTiny()
    let cpx = try g.floatTensor("input.codebook_pixel_values")
    let logits = withNoGrad { model.imageCodebook!(Variable(cpx)).value }
    try expectClose(logits, g, "codebook.logits")
    let want = try g.intTensor("codebook.indices")
    let got = model.imageCodebook!.codebookIndices(cpx)
    #expect(got.shape == want.shape)
    // Indices equal except where the reference's top two logits are a near-tie.
    let lp = try g.floatTensor("codebook.logits")
    let (b, v, hw) = (lp.shape[0], lp.shape[1], lp.shape[2] * lp.shape[3])
    for i in 0..<(b * hw) where got.values[i] != want.values[i] {
        let (bi, s) = (i / hw, i % hw)
        let a = lp[flat: (bi * v + got.values[i]) * hw + s], c = lp[flat: (bi * v + want.values[i]) * hw + s]
        #expect(abs(a - c) < 1e-4, "index \(i): \(got.values[i]) vs \(want.values[i]) not a near-tie")
    }
    #expect(model.imageCodebook!.parameters.allSatisfy { !$0.requiresGrad })
}

private func pretrainInput(_ g: SafeTensorsFile, _ tag: String) throws -> FlavaPreTrainingInput {
    let pixels = try g.floatTensor("input.pixel_values"), bmp = try g.intTensor("input.bool_masked_pos")
    let ids = try g.intTensor("input.input_ids"), idsM = try g.intTensor("input.input_ids_masked")
    let mask = try g.intTensor("input.attention_mask"), mlm = try g.intTensor("input.mlm_labels")
    let mim = try g.intTensor("input.mim_labels"), itm = try g.intTensor("input.itm_labels")
    switch tag {
    case "pretrain_pair":
        return FlavaPreTrainingInput(inputIds: ids, inputIdsMasked: idsM, attentionMask: mask, pixelValues: pixels,
                                     boolMaskedPos: bmp, mlmLabels: mlm, mimLabels: mim, itmLabels: itm)
    case "pretrain_image":
        return FlavaPreTrainingInput(pixelValues: pixels, boolMaskedPos: bmp, mimLabels: mim)
    default:
        return FlavaPreTrainingInput(inputIds: ids, inputIdsMasked: idsM, attentionMask: mask, mlmLabels: mlm)
    }
}

/// With gradient checkpointing on, the encoders recompute their activations in backward: the same losses and
/// gradients.
@Test(arguments: ["pretrain_pair", "pretrain_image", "pretrain_text"], [false, true])
func pretrainingLossesAndEveryGradientMatchTheReference(tag: String, checkpointing: Bool) throws {
    let (model, g) = try loadTiny()
    model.setGradientCheckpointing(checkpointing)
    let out = model(try pretrainInput(g, tag))
    let loss = try #require(out.loss)
    try expectClose(loss.value, g, "\(tag).loss")
    let expectedLosses = g.keys.filter { $0.hasPrefix("\(tag).loss.") }.map { String($0.dropFirst("\(tag).loss.".count)) }
    #expect(Set(out.losses.keys) == Set(expectedLosses))
    for name in expectedLosses { try expectClose(out.losses[name]!.value, g, "\(tag).loss.\(name)") }
    loss.backward()
    // HF names a tied head bias `xxx_head.bias` in named_parameters(); we declare it as `decoder.bias`.
    let aliases = model.parameterAliases()
    var refKey: [String: String] = [:]   // our key → reference key
    for k in g.keys where k.hasPrefix("\(tag).grad.") {
        let name = String(k.dropFirst("\(tag).grad.".count))
        refKey[aliases[name] ?? name] = name
    }
    let gradKeys = Set(refKey.keys)
    var withGrad = Set<String>()
    for (key, p) in model.namedParameters() {
        guard let grad = p.grad else { continue }
        withGrad.insert(key)
        if let r = refKey[key] { try expectClose(grad, g, "\(tag).grad.\(r)", atol: 1e-5, rtol: 1e-3) }
    }
    #expect(withGrad.count > 0)
    // The same parameters receive gradients as in the reference (zero-gradient ones may differ only if all-zero).
    for key in gradKeys.subtracting(withGrad) {
        let ref = try g.floatTensor("\(tag).grad.\(refKey[key]!)")
        #expect(ref.array.allSatisfy { $0 == 0 }, "\(key) has a reference gradient but none here")
    }
    for key in withGrad.subtracting(gradKeys) {
        let ours = model.namedParameters().first { $0.key == key }!.variable.grad!
        #expect(ours.array.allSatisfy { $0 == 0 }, "\(key) got a gradient here but none in the reference")
    }
}

