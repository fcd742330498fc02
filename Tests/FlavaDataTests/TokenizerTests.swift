// The WordPiece tokenizer against ../shared/reference/tokenizer/cases.jsonl (HF BertTokenizer on the
// bert-base-uncased vocabulary), plus vocabulary and input errors.
import Testing
import Foundation
import FlavaKit
import TestSupport

private let vocabPath = TestPaths.reference.appendingPathComponent("flava_tiny/vocab.txt").path

private struct Case: Decodable {
    let text: String
    let pair: String?
    let tokens: [String]
    let ids: [Int]
    let ids_77: [Int]
    let mask_77: [Int]
    let type_ids_77: [Int]
}

private func cases() throws -> [Case] {
    let text = try String(contentsOf: TestPaths.reference.appendingPathComponent("tokenizer/cases.jsonl"), encoding: .utf8)
    return try text.split(separator: "\n").map { try JSONDecoder().decode(Case.self, from: Data($0.utf8)) }
}

/// One reference case: tokens and ids without special tokens, and the encoding padded to 77.
private func expectReference(_ tok: BertTokenizer, _ text: String, pair: String?, tokens: [String], ids: [Int], ids77: [Int],
                             mask77: [Int], types77: [Int], what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(tok.tokenize(text) == tokens, "tokens of \(what)", sourceLocation: sourceLocation)
    #expect(tok.convertToIds(tok.tokenize(text)) == ids, "ids of \(what)", sourceLocation: sourceLocation)
    let e = tok.encode(text, pair: pair, maxLength: 77, padToMaxLength: true)
    #expect(e.ids == ids77, "ids_77 of \(what)", sourceLocation: sourceLocation)
    #expect(e.attentionMask == mask77, "mask_77 of \(what)", sourceLocation: sourceLocation)
    #expect(e.tokenTypeIds == types77, "type_ids_77 of \(what)", sourceLocation: sourceLocation)
}

@Test func everyReferenceCaseTokenizesIdentically() throws {
    let tok = try BertTokenizer(vocabFile: vocabPath)
    let all = try cases()
    #expect(all.count == 74)
    for c in all {
        expectReference(tok, c.text, pair: c.pair, tokens: c.tokens, ids: c.ids, ids77: c.ids_77, mask77: c.mask_77,
                        types77: c.type_ids_77, what: c.text.debugDescription)
    }
}

@Test func encodingWithoutMaxLengthHasNoPaddingAndDecodesBack() throws {
    let tok = try BertTokenizer(vocabFile: vocabPath)
    let e = tok.encode("A photo of a cat.")
    #expect(e.tokens == ["[CLS]", "a", "photo", "of", "a", "cat", ".", "[SEP]"])
    #expect(e.attentionMask.allSatisfy { $0 == 1 })
    #expect(tok.decode(e.ids) == "a photo of a cat.")
    let batch = tok.encodeBatch(["a cat", "two small red circles"])
    #expect(batch[0].ids.count == batch[1].ids.count)
    #expect(batch[0].attentionMask.suffix(2) == [0, 0])
}

@Test func crlfVocabularyFilesReadAsLF() throws {
    let dir = TestPaths.temporaryDirectory()
    let file = dir.appendingPathComponent("vocab.txt")
    try ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cat"].joined(separator: "\r\n").write(to: file, atomically: true, encoding: .utf8)
    let tok = try BertTokenizer(vocabFile: file.path)
    #expect(tok.count == 6 && tok.encode("cat").ids == [2, 5, 3])
}

@Test func vocabularyProblemsAreClearErrors() throws {
    let dir = TestPaths.temporaryDirectory()
    let noUnk = dir.appendingPathComponent("vocab.txt")
    try "[PAD]\n[CLS]\n[SEP]\n[MASK]\nhello\n".write(to: noUnk, atomically: true, encoding: .utf8)
    #expect { try BertTokenizer(vocabFile: noUnk.path) } throws: { "\($0)".contains("no [UNK] token") }
    let bin = dir.appendingPathComponent("bin.txt")
    try Data([0xff, 0xfe, 0x00, 0x41]).write(to: bin)
    #expect { try BertTokenizer(vocabFile: bin.path) } throws: { "\($0)".contains("not UTF-8") }
    #expect { try BertTokenizer(vocabFile: "/nonexistent/vocab.txt") } throws: { "\($0)".contains("cannot read") }
}

@Test func wordPieceTrainerLearnsAUsableVocabulary() throws {
    let corpus = (0..<300).map { i in ["a small red circle", "two large blue squares", "the green triangle is left of the circle",
                                        "three tiny yellow stars"][i % 4] + " number \(i % 7)" }
    let trainer = WordPieceTrainer(vocabSize: 150, minFrequency: 2)
    let vocab = trainer.train(wordCounts: trainer.countWords(corpus))
    #expect(vocab.count <= 150 && vocab.count > 60)
    #expect(Array(vocab.prefix(5)) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    #expect(vocab.contains("circle") && vocab.contains("triangle"))
    let tok = try BertTokenizer(tokens: vocab)
    // Frequent words are single tokens; an unseen word splits into pieces, never [UNK], when its letters are known.
    #expect(tok.tokenize("a small red circle") == ["a", "small", "red", "circle"])
    let pieces = tok.tokenize("circles")
    #expect(pieces.count >= 2 && !pieces.contains("[UNK]"))
    #expect(tok.tokenize("qqq") == ["[UNK]"])
}

/// Tests/Fixtures/tokenizer/unicode_special_cases.jsonl (scripts/reference/make_tokenizer_unicode_cases.py):
/// transformers' BertTokenizer on text where code points and grapheme clusters disagree, and on special tokens
/// written in the text, with do_lower_case on and off and split_special_tokens.
private struct OptionCase: Decodable {
    let text: String
    let pair: String?
    let do_lower_case: Bool
    let split_special_tokens: Bool
    let tokens: [String]
    let ids: [Int]
    let ids_77: [Int]
    let mask_77: [Int]
    let type_ids_77: [Int]
}

@Test func codePointsAndSpecialTokensInTextMatchTransformers() throws {
    let url = TestPaths.fixtures.appendingPathComponent("tokenizer/unicode_special_cases.jsonl")
    let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
    let all = try lines.map { try JSONDecoder().decode(OptionCase.self, from: Data($0.utf8)) }
    #expect(all.count == 119)
    let vocab = try String(contentsOfFile: vocabPath, encoding: .utf8).codePointLines
    for c in all {
        let tok = try BertTokenizer(tokens: vocab, doLowerCase: c.do_lower_case, splitSpecialTokens: c.split_special_tokens)
        let what = "\(c.text.unicodeScalars.map { String(format: "%04X", $0.value) }.joined(separator: " ")) lower=\(c.do_lower_case) split=\(c.split_special_tokens)"
        expectReference(tok, c.text, pair: c.pair, tokens: c.tokens, ids: c.ids, ids77: c.ids_77, mask77: c.mask_77,
                        types77: c.type_ids_77, what: what)
    }
}

@Test func specialTokensInTextAreWordsOfTheirOwnAndNeverMasked() throws {
    let tok = try BertTokenizer(vocabFile: vocabPath)
    let e = tok.encode("a photo of a [MASK]")
    #expect(e.ids.filter { $0 == tok.maskId }.count == 1)
    #expect(e.wordIds == [nil, 0, 1, 2, 3, 4, nil])
    let plain = try BertTokenizer(vocabFile: vocabPath, splitSpecialTokens: true)
    #expect(!plain.encode("a photo of a [MASK]").ids.contains(tok.maskId))
}

@Test func tokenizerConfigFieldsOfTheWrongTypeAreErrors() throws {
    let dir = TestPaths.temporaryDirectory()
    try FileManager.default.copyItem(atPath: vocabPath, toPath: dir.appendingPathComponent("vocab.txt").path)
    let cfg = dir.appendingPathComponent("tokenizer_config.json")
    func message(_ json: String) -> String {
        try? json.write(to: cfg, atomically: true, encoding: .utf8)
        do { _ = try BertTokenizer(vocabFile: dir.appendingPathComponent("vocab.txt").path); return "loaded" } catch { return "\(error)" }
    }
    #expect(message(#"{"do_lower_case": "yes"}"#).contains("do_lower_case"))
    #expect(message(#"{"do_lower_case": null}"#).contains("do_lower_case"))
    #expect(message(#"{"mask_token": 3}"#).contains("mask_token"))
    #expect(message(#"{"mask_token": {"content": "[NOPE]"}}"#).contains("no [NOPE] token"))
    #expect(message(#"{"additional_special_tokens": ["[MISSING]"]}"#).contains("no [MISSING] token"))
    #expect(message(#"[1, 2]"#).contains("tokenizer_config.json"))
    #expect(message(#"{"mask_token": {"content": "[MASK]", "lstrip": false}, "strip_accents": null, "split_special_tokens": true}"#) == "loaded")
    for m in [message(#"{"do_lower_case": "yes"}"#), message("{"), message(#"{"pad_token": []}"#)] { #expect(!m.contains("\n"), "\(m)") }
}
