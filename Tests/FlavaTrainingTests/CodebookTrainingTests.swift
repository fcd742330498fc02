// Training our own visual tokenizer: the loss falls with a fixed seed, the k-means start uses the vocabulary,
// and a saved codebook loads back through the model's FlavaImageCodebook with identical logits.
import Testing
import Foundation
import FlavaKit
import TestSupport

/// A small, fast setting: 64 codes, hidden 4, 32-pixel images (4×4 codes each).
private func smallConfig(steps: Int) -> CodebookTrainingConfig {
    var c = CodebookTrainingConfig.small
    c.codebook.vocabSize = 64; c.codebook.hiddenSize = 4
    c.decoder = CodebookTrainingConfig.mirroredDecoder(c.codebook)
    c.imageSize = 32; c.batchSize = 8; c.steps = steps; c.warmupSteps = 5; c.klWarmupSteps = 20
    c.restartEvery = 10; c.kmeansImages = 32; c.evalImages = 16
    return c
}

/// Trains `trainer` on the engine for its configured steps on `world`'s unpaired images 0, 1, …; the
/// reconstruction loss of each step.
private func train(_ trainer: CodebookTrainer, on world: SyntheticWorld) throws -> [Double] {
    let proc = FlavaImageProcessor(FlavaImageProcessorConfig(imageSize: 2 * world.imageSize))
    let task = CodebookTrainingTask(trainer: trainer, images: CodebookImages(world: world, processor: proc, evalCount: 0))
    var losses: [Double] = []
    let engine = try TrainingEngine(task: task, settings: CodebookTrainer.settings(trainer.config),
                                    callbacks: [StepCallback { e, _ in losses.append(e.losses["reconstruction"]!) }])
    _ = try engine.run()
    return losses
}

private func worldPixels(_ world: SyntheticWorld, _ range: Range<Int>, heldOut: Bool = false) -> Tensor {
    let proc = FlavaImageProcessor(FlavaImageProcessorConfig(imageSize: 2 * world.imageSize))
    return ShapeKernel.stack(range.map { i in
        proc.codebookPixelValues(heldOut ? world.sample(i, split: .heldOut).image : world.unpairedImage(i))
    })
}

@Test func codebookLossFallsWithAFixedSeed() throws {
    let cfg = smallConfig(steps: 60)
    let world = SyntheticWorld(seed: 3, imageSize: cfg.imageSize)
    let trainer = CodebookTrainer(config: cfg)
    let held = worldPixels(world, 0..<cfg.evalImages, heldOut: true)
    trainer.initializeCodes(from: worldPixels(world, 10_000..<(10_000 + cfg.kmeansImages)))
    let before = trainer.evaluate(held)
    let losses = try train(trainer, on: world)
    #expect(losses.count == cfg.steps)
    let after = trainer.evaluate(held)
    let first = losses.prefix(5).reduce(0, +) / 5, last = losses.suffix(5).reduce(0, +) / 5
    #expect(losses.allSatisfy { $0.isFinite })
    #expect(last < 0.25 * first, "reconstruction loss \(first) → \(last)")
    #expect(after.psnrDB > before.psnrDB + 3, "held-out PSNR \(before.psnrDB) → \(after.psnrDB)")
    #expect(after.codesUsed >= 8, "codes used \(after.codesUsed)")

    // Same seed, same numbers.
    let again = CodebookTrainer(config: cfg)
    again.initializeCodes(from: worldPixels(world, 10_000..<(10_000 + cfg.kmeansImages)))
    let proc = FlavaImageProcessor(FlavaImageProcessorConfig(imageSize: 2 * world.imageSize))
    let engine = try TrainingEngine(task: CodebookTrainingTask(trainer: again, images: CodebookImages(world: world, processor: proc, evalCount: 0)),
                                    settings: CodebookTrainer.settings(cfg))
    #expect(try engine.trainStep().losses["reconstruction"] == losses[0])
}

@Test func kmeansStartUsesTheVocabulary() throws {
    var cfg = smallConfig(steps: 1)
    cfg.kmeansImages = 64
    let world = SyntheticWorld(seed: 5, imageSize: cfg.imageSize)
    let trainer = CodebookTrainer(config: cfg)
    let pixels = worldPixels(world, 0..<64)
    let random = trainer.evaluate(pixels).codesUsed
    trainer.initializeCodes(from: pixels)
    let m = trainer.evaluate(pixels)
    #expect(m.codesUsed >= cfg.codebook.vocabSize / 2, "k-means start uses \(m.codesUsed) of \(cfg.codebook.vocabSize) codes (random start: \(random))")
    #expect(m.codesUsed > random)
}

@Test func savedCodebookLoadsAsFlavaImageCodebookWithTheSameLogits() throws {
    let cfg = smallConfig(steps: 3)
    let world = SyntheticWorld(seed: 1, imageSize: cfg.imageSize)
    let trainer = CodebookTrainer(config: cfg)
    trainer.initializeCodes(from: worldPixels(world, 0..<cfg.kmeansImages))
    _ = try train(trainer, on: world)
    let dir = TestPaths.temporaryDirectory().path + "/codebook"
    try trainer.save(to: dir)
    for f in ["config.json", "model.safetensors", "decoder_config.json", "decoder.safetensors", "codebook_training.json"] {
        #expect(FileManager.default.fileExists(atPath: dir + "/" + f), "\(f)")
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/..").allSatisfy { !$0.contains(".tmp-") })

    // The model issue's FlavaImageCodebook, loaded from the folder as any Hugging Face codebook is.
    let loaded = try FlavaCheckpoint.loadCodebook(dir)
    #expect(loaded.config.vocabSize == 64 && loaded.config.hiddenSize == 4)
    let x = worldPixels(world, 100..<104, heldOut: true)
    let ours = withNoGrad { trainer.encoder(Variable(x)).value }
    let theirs = withNoGrad { loaded(Variable(x)).value }
    #expect(ours.shape == [4, 64, 4, 4])
    #expect(ours.array == theirs.array)
    #expect(trainer.encoder.codebookIndices(x).values == loaded.codebookIndices(x).values)

    // The decoder comes back too and reconstructs identically.
    let decoder = try CodebookTrainer.loadDecoder(dir)
    let tokens = loaded.codebookIndices(x)
    #expect(decoder.decode(tokens: tokens, side: 4).array == trainer.decoder.decode(tokens: tokens, side: 4).array)

    // Saving again over the folder replaces it whole.
    try trainer.save(to: dir)
    #expect(try FlavaCheckpoint.loadCodebook(dir).codebookIndices(x).values == tokens.values)
}

@Test func codebookConfigValidatesAndMirrorsTheDecoder() throws {
    let json = #"{"codebook": {"vocab_size": 128, "hidden_size": 8}, "steps": 5}"#
    let c = try JSONDecoder().decode(CodebookTrainingConfig.self, from: Data(json.utf8))
    #expect(c.decoder.vocabSize == 128 && c.decoder.hiddenSize == 16 && c.decoder.initSize == 64)
    #expect(c.decoder.reconstruction == "mse" && c.decoder.postGain == 1)
    #expect(c.steps == 5 && c.imageSize == 64)
    try c.validate()
    var bad = c; bad.decoder.vocabSize = 64
    #expect(throws: ConfigError.self) { try bad.validate() }
    bad = c; bad.imageSize = 60
    #expect(throws: ConfigError.self) { try bad.validate() }
    bad = c; bad.decoder.reconstruction = "l1"
    #expect(throws: ConfigError.self) { try bad.validate() }
}
