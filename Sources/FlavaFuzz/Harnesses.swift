// One harness per parser of untrusted input. Each takes arbitrary bytes; throwing an error is the right answer
// to bad input, while a trap, a sanitizer report, a hang or a broken invariant (checked with `expect`) is a
// finding. Inputs that files would carry are written to one scratch file per process (in /dev/shm when it
// exists), since the readers take paths.
import Foundation
import FlavaKit

/// A fuzzing harness.
struct Harness: Sendable {
    let name: String
    let summary: String
    let body: @Sendable (Data) throws -> Void

    /// Runs one input: errors are expected answers; everything else is a finding. `verbose` prints each
    /// input's answer (replay -v), to see which seeds get past the parser.
    func run(_ data: Data, verbose: Bool = false) {
        do { try body(data); if verbose { print("  accepted") } } catch { if verbose { print("  refused: \(error)") } }
    }

    static func named(_ name: String) -> Harness? { all.first { $0.name == name } }

    /// The harness libFuzzer's callback runs: set once in `main` before the driver starts, read-only afterwards,
    /// and libFuzzer calls back on one thread.
    nonisolated(unsafe) static var selected: Harness?

    static let all: [Harness] = [
        Harness(name: "safetensors", summary: "safetensors header and tensors", body: safetensors),
        Harness(name: "torch", summary: "pytorch_model.bin: ZIP reader and restricted unpickler", body: torch),
        Harness(name: "tar", summary: "WebDataset .tar shards", body: tar),
        Harness(name: "image", summary: "JPEG and PNG decoding, then resampling", body: image),
        Harness(name: "config", summary: "config.json decoding and validation (and a forward pass when small)", body: config),
        Harness(name: "settings", summary: "preprocessor, tokenizer, pretraining, codebook and decoder JSON configs", body: settings),
        Harness(name: "tokenizer", summary: "WordPiece tokenization of arbitrary bytes", body: tokenizer),
        Harness(name: "vocab", summary: "vocab.txt parsing", body: vocab),
        Harness(name: "manifest", summary: "JSONL / CSV / TSV manifests", body: manifest),
        Harness(name: "eval_formats", summary: "COCO, Karpathy, VQA, SNLI-VE, Hateful Memes, GLUE files", body: evalFormats),
        Harness(name: "tensorboard", summary: "TFRecord reading, and event files written from arbitrary tags and steps", body: tensorboard),
    ]
}

/// A broken invariant: a finding (libFuzzer reports the trap and saves the input).
func expect(_ ok: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !ok() { fatalError("invariant broken: \(message())") }
}

/// The per-process scratch folder.
let scratch: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let dir = base + "/flava-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}()

/// Writes `data` to the scratch file `name` and returns its path.
func scratchFile(_ name: String, _ data: Data) throws -> String {
    let path = scratch + "/" + name
    try data.write(to: URL(fileURLWithPath: path))
    return path
}

/// Splits an input into a selector byte and the rest.
func selector(_ data: Data) -> (UInt8, Data) { (data.first ?? 0, data.dropFirst()) }

/// A small vocabulary: the special tokens, letters, a few words and pieces, some non-ASCII entries.
let smallVocabulary: [String] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + (97...122).map { String(UnicodeScalar($0)!) } + (97...122).map { "##" + String(UnicodeScalar($0)!) }
    + ["the", "photo", "of", "a", "cat", "##s", "##ing", ".", ",", "!", "?", "[", "]", "中", "é", "ü", "ß", "ि", "क", "##ि"]
let smallTokenizer = try! BertTokenizer(tokens: smallVocabulary)
/// The option variants (lower-casing × split_special_tokens), built once.
let tokenizerVariants: [BertTokenizer] = [(true, false), (false, false), (true, true), (false, true)].map {
    try! BertTokenizer(tokens: smallVocabulary, doLowerCase: $0.0, splitSpecialTokens: $0.1)
}

// MARK: harnesses

@Sendable func safetensors(_ data: Data) throws {
    let file = try SafeTensorsFile(path: try scratchFile("model.safetensors", data))
    for key in file.keys {
        guard let info = file.info(key) else { continue }
        if info.dtype.isFloatingPoint {
            let t = try file.floatTensor(key)
            expect(t.shape == info.shape, "\(key): read shape \(t.shape), header \(info.shape)")
        } else {
            let t = try file.intTensor(key)
            expect(t.shape == info.shape, "\(key): read shape \(t.shape), header \(info.shape)")
        }
    }
}

@Sendable func torch(_ data: Data) throws {
    let ckpt = try TorchCheckpoint(path: try scratchFile("pytorch_model.bin", data))
    for key in ckpt.keys {
        guard let info = ckpt.info(key) else { continue }
        if info.dtype.isFloatingPoint { _ = try ckpt.floatTensor(key) } else { _ = try ckpt.intTensor(key) }
    }
}

@Sendable func tar(_ data: Data) throws {
    let reader = try TarShardReader(path: try scratchFile("shard.tar", data))
    var n = 0
    while let sample = reader.next() {
        expect(!sample.files.isEmpty, "a sample without files")
        n += 1
        if n > 10_000 { break }
    }
}

@Sendable func image(_ data: Data) throws {
    RGBImage.maximumPixels = 1 << 22   // keep each execution fast; the limit itself is exercised the same way
    let img = try RGBImage.decode(data, name: "input")
    expect(img.pixels.count == img.width * img.height * 3, "pixel buffer \(img.pixels.count) for \(img.width)×\(img.height)")
    let small = img.resized(width: 7, height: 5, filter: .bicubic).resized(width: 9, height: 3, filter: .lanczos)
    expect(small.width == 9 && small.height == 3, "resize gave \(small.width)×\(small.height)")
    _ = small.centerCropped(width: 3, height: 3)
}

@Sendable func config(_ data: Data) throws {
    let config = try ConfigError.decode(FlavaConfig.self, from: data, file: "config.json")
    try config.validate(file: "config.json")
    // A valid config must build and run; keep the execution small.
    let ic = config.imageConfig, tc = config.textConfig
    guard config.parameterCount < 300_000, ic.patchesPerSide * ic.patchesPerSide <= 64, ic.imageSize <= 64,
          config.imageCodebookConfig.hiddenSize <= 16 else { return }
    var ini = Initializer(range: Float(config.initializerRange), seed: 1)
    let model = FlavaForPreTraining(config, init: &ini)
    expect(model.parameterCount == config.parameterCount, "built \(model.parameterCount) parameters, config says \(config.parameterCount)")
    var g = SeededGenerator(seed: 2)
    let pixels = Variable(Tensor.randomNormal([1, 3, ic.imageSize, ic.imageSize], using: &g))
    let length = min(4, tc.maxPositionEmbeddings)
    let ids = IntTensor(shape: [1, length], (0..<length).map { $0 % tc.vocabSize })
    withNoGrad {
        let out = model.flava(pixelValues: pixels, inputIds: ids, attentionMask: IntTensor(shape: [1, length], [Int](repeating: 1, count: length)))
        expect(out.multimodal != nil, "no multimodal output")
    }
}

@Sendable func settings(_ data: Data) throws {
    let (which, body) = selector(data)
    switch which % 5 {
    case 0:
        let c = try ConfigError.decode(FlavaImageProcessorConfig.self, from: body, file: "preprocessor_config.json")
        try c.validate(ConfigChecker(file: "preprocessor_config.json"))
    case 1:
        _ = try scratchFile("vocab.txt", Data(smallVocabulary.joined(separator: "\n").utf8))
        _ = try scratchFile("tokenizer_config.json", body)
        let t = try BertTokenizer(vocabFile: scratch + "/vocab.txt")
        _ = t.encode("a photo of a [MASK] cat", maxLength: 8, padToMaxLength: true)
    case 2:
        let c = try ConfigError.decode(PretrainingConfig.self, from: body, file: "pretrain.json")
        try c.validate(file: "pretrain.json")
    case 3:
        let c = try ConfigError.decode(CodebookTrainingConfig.self, from: body, file: "codebook.json")
        try c.validate(file: "codebook.json")
    default:
        let c = try ConfigError.decode(DVAEDecoderConfig.self, from: body, file: "decoder_config.json")
        try c.validate(ConfigChecker(file: "decoder_config.json"))
    }
}

@Sendable func tokenizer(_ data: Data) throws {
    let (which, body) = selector(data)
    let text = String(decoding: body, as: UTF8.self)
    let tok = which & 1 == 0 ? smallTokenizer : tokenizerVariants[Int(which >> 1) & 3]
    let maxLength = 2 + Int(which >> 3)
    let e = tok.encode(text, pair: which & 0x80 != 0 ? text : nil, maxLength: max(3, maxLength), padToMaxLength: true)
    expect(e.ids.count == max(3, maxLength), "\(e.ids.count) ids for max length \(max(3, maxLength))")
    expect(e.ids.allSatisfy { $0 >= 0 && $0 < tok.count }, "an id outside the vocabulary")
    expect(e.tokens.count == e.ids.count && e.attentionMask.count == e.ids.count && e.tokenTypeIds.count == e.ids.count
           && e.wordIds.count == e.ids.count, "encoding fields of different lengths")
    let free = tok.encode(text)
    expect(free.ids.first == tok.clsId && free.ids.last == tok.sepId, "no [CLS] … [SEP]")
    _ = tok.decode(free.ids)
    _ = tok.encodeBatch([text, "a cat", text], threads: 2)
}

@Sendable func vocab(_ data: Data) throws {
    let t = try BertTokenizer(vocabFile: try scratchFile("vocab.txt", data))
    _ = t.encode("the cat [MASK] a photo", maxLength: 16, padToMaxLength: true)
}

@Sendable func manifest(_ data: Data) throws {
    let (which, body) = selector(data)
    let ext = ["jsonl", "csv", "tsv"][Int(which % 3)]
    let source = try ManifestSource(path: try scratchFile("manifest." + ext, body))
    let stream = try source.stream(epoch: 0, seed: 0)
    var n = 0
    while let record = try stream.next() {
        expect(record.image != nil || record.text != nil || record.label != nil, "an empty record")
        n += 1
        if n > 100_000 { break }
    }
}

@Sendable func evalFormats(_ data: Data) throws {
    let (which, body) = selector(data)
    switch which % 6 {
    case 0: _ = try RetrievalSet.karpathy(try scratchFile("karpathy.json", body), imageRoot: scratch, split: "test")
    case 1:
        let source = COCOCaptionsSource(annotations: try scratchFile("captions.json", body), imageRoot: scratch)
        let stream = try source.stream(epoch: 0, seed: 0)
        var n = 0
        while try stream.next() != nil, n < 100_000 { n += 1 }
    case 2:
        // VQA: questions and annotations in one input, split at the first NUL byte.
        let parts = body.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
        let q = try scratchFile("questions.json", parts.first ?? Data())
        let a = try scratchFile("annotations.json", parts.count > 1 ? parts[1] : Data())
        let examples = try MultimodalTasks.vqa(questions: q, annotations: a, imageRoot: scratch)
        let vocabulary = MultimodalTasks.answerVocabulary(examples, size: 10)
        let index = Dictionary(vocabulary.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        for e in examples.prefix(100) { _ = MultimodalTasks.softScores(e.answers, vocabulary: index, classes: vocabulary.count) }
    case 3: _ = try MultimodalTasks.snliVE(try scratchFile("snli_ve.jsonl", body), imageRoot: scratch)
    case 4: _ = try MultimodalTasks.hatefulMemes(try scratchFile("memes.jsonl", body), imageRoot: scratch)
    default:
        let tasks = GLUETask.all.keys.sorted()
        let task = GLUETask.all[tasks[Int(body.first ?? 0) % tasks.count]]!
        _ = try task.read(try scratchFile("glue.tsv", body.dropFirst()))
    }
}

@Sendable func tensorboard(_ data: Data) throws {
    let (which, body) = selector(data)
    if which & 1 == 0 {
        // Reading arbitrary bytes as TFRecords.
        _ = try TFRecordReader.records(in: body)
        return
    }
    // Writing: tags and values from the input, then the file must read back record for record.
    let dir = scratch + "/tensorboard"
    try? FileManager.default.removeItem(atPath: dir)
    let w = try TensorBoardWriter(directory: dir)
    var values: [String: Double] = [:]
    var rest = body[...]
    while rest.count >= 9 {
        let n = Int(rest.first!) % 24
        rest = rest.dropFirst()
        let bits = rest.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        rest = rest.dropFirst(8)
        values[String(decoding: rest.prefix(n), as: UTF8.self)] = Double(bitPattern: bits)
        rest = rest.dropFirst(n)
    }
    let step = Int(truncatingIfNeeded: Int64(bitPattern: values.keys.reduce(UInt64(which)) { $0 &* 31 &+ UInt64($1.utf8.count) }) - 100)
    w.scalars(values, step: step)
    w.scalars([:], step: 0)
    let records = try TFRecordReader.records(in: try Data(contentsOf: URL(fileURLWithPath: w.path)))
    expect(records.count == 3, "wrote 3 records, read \(records.count)")
}
