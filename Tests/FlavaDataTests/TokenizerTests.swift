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

@Test func everyReferenceCaseTokenizesIdentically() throws {
    let tok = try BertTokenizer(vocabFile: vocabPath)
    let all = try cases()
    #expect(all.count == 74)
    for c in all {
        #expect(tok.tokenize(c.text) == c.tokens, "tokens of \(c.text.debugDescription)")
        #expect(tok.convertToIds(tok.tokenize(c.text)) == c.ids, "ids of \(c.text.debugDescription)")
        let e = tok.encode(c.text, pair: c.pair, maxLength: 77, padToMaxLength: true)
        #expect(e.ids == c.ids_77, "ids_77 of \(c.text.debugDescription)")
        #expect(e.attentionMask == c.mask_77, "mask_77 of \(c.text.debugDescription)")
        #expect(e.tokenTypeIds == c.type_ids_77, "type_ids_77 of \(c.text.debugDescription)")
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
