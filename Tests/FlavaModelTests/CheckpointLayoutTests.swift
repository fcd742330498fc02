// Loading FLAVA folders in every layout (FlavaForPreTraining / FlavaModel / codebook; safetensors / .bin),
// saving in the FlavaForPreTraining layout, and one-line errors for folders that do not fit.
import Testing
import Foundation
import FlavaKit
import TestSupport

private let tinyDir = TestPaths.reference.appendingPathComponent("flava_tiny").path
private let microDir = TestPaths.fixtures.appendingPathComponent("flava_micro_bin").path

@Test func microFlavaModelFromPyTorchBinMatchesTransformers() throws {
    let model = try FlavaCheckpoint.loadModel(microDir)
    let e = try SafeTensorsFile(path: microDir + "/expected.safetensors")
    let ids = try e.intTensor("input_ids"), mask = try e.intTensor("attention_mask")
    let pixels = Variable(try e.floatTensor("pixel_values"))
    try withNoGrad {
        let out = model(pixelValues: pixels, inputIds: ids, attentionMask: mask)
        for (got, key) in [(out.imageEmbeddings!, "image_embeddings"), (out.textEmbeddings!, "text_embeddings"),
                           (out.multimodalEmbeddings!, "multimodal_embeddings"),
                           (model.imageEmbedding(pixels), "image_embeds"), (model.textEmbedding(ids, attentionMask: mask), "text_embeds")] {
            let want = try e.floatTensor(key)
            #expect(closenessReport(got.value, want, atol: 1e-4, rtol: 1e-4, name: key) == nil)
        }
    }
    // The same checkpoint also loads as a FlavaForPreTraining: the heads and codebook stay initialized.
    let (pt, report) = try FlavaCheckpoint.loadPreTraining(microDir)
    #expect(report.isExact)
    #expect(pt.flava.logitScale.value.scalarValue == model.logitScale.value.scalarValue)
}

@Test func savedCheckpointsLoadBackIdentically() throws {
    let (model, report) = try FlavaCheckpoint.loadPreTraining(tinyDir)
    #expect(report.isExact)
    let dir = TestPaths.temporaryDirectory().appendingPathComponent("saved").path
    try FlavaCheckpoint.save(model, to: dir, assetsFrom: tinyDir)
    #expect(FileManager.default.fileExists(atPath: dir + "/vocab.txt"))
    let reread = try SafeTensorsFile(path: dir + "/model.safetensors")
    let original = try SafeTensorsFile(path: tinyDir + "/model.safetensors")
    #expect(Set(reread.keys) == Set(original.keys))     // the same 182 keys transformers wrote
    let (again, r2) = try FlavaCheckpoint.loadPreTraining(dir)
    #expect(r2.isExact)
    #expect(again.config == model.config)
    for ((k1, a), (k2, b)) in zip(model.stateDict(), again.stateDict()) { #expect(k1 == k2 && a.array == b.array) }
}

@Test func flavaModelAndCodebookLayoutsRoundTrip() throws {
    let (model, _) = try FlavaCheckpoint.loadPreTraining(tinyDir)
    // FlavaModel layout: encoder keys without a prefix.
    let mdir = TestPaths.temporaryDirectory().path
    try model.flava.saveSafeTensors(to: mdir + "/model.safetensors")
    try model.config.save(mdir + "/config.json")
    let m = try FlavaCheckpoint.loadModel(mdir)
    #expect(m.stateDict().map(\.value.array) == model.flava.stateDict().map(\.value.array))
    // Standalone codebook layout, as FlavaImageCodebook.save_pretrained writes it.
    let cdir = TestPaths.temporaryDirectory().path
    try FlavaCheckpoint.saveCodebook(model.imageCodebook!, to: cdir)
    let cb = try FlavaCheckpoint.loadCodebook(cdir)
    #expect(cb.config == model.imageCodebook!.config)
    #expect(cb.stateDict().map(\.value.array) == model.imageCodebook!.stateDict().map(\.value.array))
    // The embedded codebook loads from the FlavaForPreTraining folder too.
    let embedded = try FlavaCheckpoint.loadCodebook(tinyDir)
    #expect(embedded.stateDict().map(\.value.array) == cb.stateDict().map(\.value.array))
}

@Test func foldersThatDoNotFitGiveOneLineErrors() throws {
    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return "\(error)" }
    }
    let missing = message { _ = try FlavaCheckpoint.loadPreTraining("/nonexistent/model") }
    #expect(missing.contains("no such folder"))
    // A config that does not match the weights: change the hidden size.
    let dir = TestPaths.temporaryDirectory().path
    try FileManager.default.copyItem(atPath: tinyDir + "/model.safetensors", toPath: dir + "/model.safetensors")
    var config = try FlavaConfig.load(tinyDir + "/config.json")
    config.textConfig.numHiddenLayers = 3
    try config.save(dir + "/config.json")
    // An encoder of another size is refused from the checkpoint's header, before the model is built.
    let mismatch = message { _ = try FlavaCheckpoint.loadPreTraining(dir) }
    #expect(mismatch.contains("flava.text_model.* tensors hold") && mismatch.contains("text_config"), "\(mismatch)")
    #expect(!mismatch.contains("\n"))
    // Tensors of other shapes outside the encoders: every mis-shaped key named by the strict load.
    config.textConfig.numHiddenLayers = 2
    config.projectionDim = 16
    try config.save(dir + "/config.json")
    let projection = message { _ = try FlavaCheckpoint.loadPreTraining(dir) }
    #expect(projection.contains("does not match config.json") && projection.contains("flava.image_projection.weight"), "\(projection)")
    #expect(!projection.contains("\n"))
    // A folder with a config but no weights; a truncated weights file.
    let empty = TestPaths.temporaryDirectory().path
    try config.save(empty + "/config.json")
    #expect(message { _ = try FlavaCheckpoint.loadPreTraining(empty) }.contains("no model.safetensors"))
    let data = try Data(contentsOf: URL(fileURLWithPath: tinyDir + "/model.safetensors"))
    try data.prefix(data.count / 3).write(to: URL(fileURLWithPath: empty + "/model.safetensors"))
    #expect(message { _ = try FlavaCheckpoint.loadPreTraining(empty) }.contains("out of range"))
    // A broken config.json.
    let bad = TestPaths.temporaryDirectory().path
    try "{\"text_config\": {\"hidden_size\": \"wide\"}}".write(toFile: bad + "/config.json", atomically: true, encoding: .utf8)
    #expect(message { _ = try FlavaCheckpoint.loadPreTraining(bad) }.contains("hidden_size"))
}

@Test func legacyConfigDictKeysAreMerged() throws {
    let json = #"{"text_config_dict": {"hidden_size": 32, "num_attention_heads": 4}, "projection_dim": 16, "image_config": {"image_size": 64}}"#
    let c = try JSONDecoder().decode(FlavaConfig.self, from: Data(json.utf8))
    #expect(c.textConfig.hiddenSize == 32 && c.textConfig.numAttentionHeads == 4 && c.textConfig.vocabSize == 30522)
    #expect(c.imageConfig.imageSize == 64 && c.imageConfig.patchSize == 16)
    #expect(c.projectionDim == 16 && c.multimodalConfig.numHiddenLayers == 6)
    // Float fields keep a decimal point when written (transformers refuses `"mim_weight": 1`).
    let text = String(decoding: try ConfigJSON.encode(c), as: UTF8.self)
    #expect(text.contains("\"mim_weight\" : 1.0"), "\(text)")
    #expect(text.contains("\"layer_norm_eps\" : 1e-12") || text.contains("\"layer_norm_eps\" : 1.0e-12"), "\(text)")
    #expect(try JSONDecoder().decode(FlavaConfig.self, from: ConfigJSON.encode(c)) == c)
}

@Test func defaultConfigBuildsThePaperSizedModel() {
    // FlavaConfig() defaults: 241,356,289 parameters in FlavaModel, ≈357.6M with the heads and the codebook.
    var ini = Initializer(mode: .zeros)
    let model = FlavaForPreTraining(FlavaConfig(), init: &ini)
    #expect(model.flava.parameterCount == 241_356_289)
    #expect(model.flava.textModel.parameterCount == 109_483_776)
    #expect(model.flava.imageModel.parameterCount == 86_390_016)
    #expect(model.flava.multimodalModel.parameterCount == 43_120_128)
    #expect(model.imageCodebook!.parameterCount == 53_786_240)
    let heads = [model.mimHead, model.mlmHead, model.mmmImageHead, model.mmmTextHead].map(\.parameterCount).reduce(0, +) + model.itmHead.parameterCount
    #expect(heads == 62_502_774)
}

@Test func positionInterpolationMatchesTorchBicubic() throws {
    let f = try SafeTensorsFile(path: TestPaths.fixtures.appendingPathComponent("interpolate.safetensors").path)
    var c = FlavaImageConfig()
    c.hiddenSize = 6; c.numAttentionHeads = 1; c.imageSize = 32; c.patchSize = 8
    var ini = Initializer(seed: 0)
    let emb = FlavaImageEmbeddings(c, init: &ini)
    emb.positionEmbeddings.value = try f.floatTensor("table")
    for (h, w) in [(3, 3), (6, 5), (2, 7)] {
        let got = emb.interpolatedPositions(height: h * 8, width: w * 8).value
        #expect(closenessReport(got, try f.floatTensor("resized_\(h)x\(w)"), atol: 1e-5, rtol: 1e-5, name: "\(h)x\(w)") == nil)
    }
    // At the trained grid the table is returned unchanged.
    #expect(emb.interpolatedPositions(height: 32, width: 32).value.array == emb.positionEmbeddings.value.array)
}

@Test func shardedCheckpointsLoad() throws {
    let src = try SafeTensorsFile(path: tinyDir + "/model.safetensors")
    let dir = TestPaths.temporaryDirectory().path
    try FileManager.default.copyItem(atPath: tinyDir + "/config.json", toPath: dir + "/config.json")
    let keys = src.keys
    var map: [String: String] = [:]
    for (i, part) in [Array(keys[..<90]), Array(keys[90...])].enumerated() {
        let name = "model-0000\(i + 1)-of-00002.safetensors"
        try SafeTensors.write(try part.map { ($0, StoredTensor.float(try src.floatTensor($0))) }, to: dir + "/" + name)
        for k in part { map[k] = name }
    }
    let index = try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 0], "weight_map": map])
    try index.write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))
    let (m, report) = try FlavaCheckpoint.loadPreTraining(dir)
    #expect(report.isExact)
    let (ref, _) = try FlavaCheckpoint.loadPreTraining(tinyDir)
    #expect(m.stateDict().map(\.value.array) == ref.stateDict().map(\.value.array))
}
