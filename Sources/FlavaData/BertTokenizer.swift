// BERT's WordPiece tokenizer as Hugging Face's BertTokenizer does it (FLAVA uses the bert-base-uncased
// vocabulary): special tokens written in the text ("a photo of a [MASK]") kept whole, then, on Unicode code
// points (never Swift's grapheme clusters, which glue a combining mark to the space before it): text clean-up,
// CJK characters as words, lower-casing and accent stripping (NFD, drop Mn), whitespace and punctuation
// splitting, then greedy longest-match-first WordPiece with "##" continuations and the 100-character rule.
// Sentence pairs with token types, truncation, padding, attention masks, decoding.
import Foundation
import FlavaTensor

/// A tokenizer input or vocabulary that cannot be used, in one line.
public struct TokenizerError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The ids and masks of one encoded text (or pair).
public struct Encoding: Sendable, Equatable {
    public var tokens: [String]
    public var ids: [Int]
    public var attentionMask: [Int]
    public var tokenTypeIds: [Int]
    /// Word index of each token (nil for special and padding tokens), for whole-word masking.
    public var wordIds: [Int?]
}

/// BertTokenizer. Immutable after `init`, so one instance may serve many threads and tasks at once.
public final class BertTokenizer: Sendable {
    public let vocab: [String: Int]
    public let idToToken: [String]
    public let doLowerCase: Bool
    public let stripAccents: Bool
    public let tokenizeChineseChars: Bool
    public let maxInputCharsPerWord = 100
    public let unkToken: String, clsToken: String, sepToken: String, padToken: String, maskToken: String
    public let unkId: Int, clsId: Int, sepId: Int, padId: Int, maskId: Int
    /// Where the vocabulary came from (its file), for error messages.
    public let source: String
    /// The longest token, in code points: no longer piece can match, which bounds WordPiece's search.
    let longestToken: Int

    /// Special tokens written in the text (the five above and any additional ones), matched as whole tokens
    /// before normalization, longest first, case-sensitively, as transformers does; empty when
    /// `splitSpecialTokens` is set.
    public let specialTokensInText: [[Unicode.Scalar]]
    /// Treat special tokens written in the text as plain text (transformers' `split_special_tokens`).
    public let splitSpecialTokens: Bool

    /// The largest vocabulary file read (bert-base-uncased's is 0.2 MB).
    public static let maximumVocabularyBytes = 256 << 20

    /// Loads `vocab.txt` (one token a line, id = line number) and, beside it, `tokenizer_config.json` if present
    /// (do_lower_case, strip_accents, tokenize_chinese_chars, split_special_tokens, special tokens).
    /// `splitSpecialTokens`, when given, overrides the config's.
    public convenience init(vocabFile: String, splitSpecialTokens: Bool? = nil) throws {
        let attributes = try? FileManager.default.attributesOfItem(atPath: vocabFile)
        if let size = attributes?[.size] as? Int, size > BertTokenizer.maximumVocabularyBytes {
            throw TokenizerError("\(vocabFile): \(size) bytes, too large for a vocabulary")
        }
        guard let data = FileManager.default.contents(atPath: vocabFile) else {
            throw TokenizerError("\(vocabFile): cannot read vocabulary file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw TokenizerError("\(vocabFile): vocabulary is not UTF-8") }
        // Lines on code points: "\r\n" is one Character, so Character-based splitting misses CRLF files.
        let tokens = text.codePointLines
        let cfg = URL(fileURLWithPath: vocabFile).deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        var options = TokenizerConfig()
        if let d = FileManager.default.contents(atPath: cfg.path) {
            options = try ConfigError.decode(TokenizerConfig.self, from: d, file: cfg.path)
        }
        try self.init(tokens: tokens, doLowerCase: options.doLowerCase, stripAccents: options.stripAccents,
                      tokenizeChineseChars: options.tokenizeChineseChars,
                      unk: options.unkToken, cls: options.clsToken, sep: options.sepToken, pad: options.padToken,
                      mask: options.maskToken, additionalSpecialTokens: options.additionalSpecialTokens,
                      splitSpecialTokens: splitSpecialTokens ?? options.splitSpecialTokens, source: vocabFile)
    }

    /// A tokenizer over an in-memory vocabulary (token i has id i).
    public init(tokens: [String], doLowerCase: Bool = true, stripAccents: Bool? = nil, tokenizeChineseChars: Bool = true,
                unk: String = "[UNK]", cls: String = "[CLS]", sep: String = "[SEP]", pad: String = "[PAD]",
                mask: String = "[MASK]", additionalSpecialTokens: [String] = [], splitSpecialTokens: Bool = false,
                source: String = "vocabulary") throws {
        var v: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where v[t] == nil { v[t] = i }
        vocab = v
        idToToken = tokens
        self.source = source
        longestToken = tokens.reduce(0) { max($0, $1.unicodeScalars.count) }
        self.doLowerCase = doLowerCase
        self.stripAccents = stripAccents ?? doLowerCase
        self.tokenizeChineseChars = tokenizeChineseChars
        unkToken = unk; clsToken = cls; sepToken = sep; padToken = pad; maskToken = mask
        func id(_ t: String) throws -> Int {
            guard let i = v[t] else { throw TokenizerError("\(source): vocabulary has no \(t) token") }
            return i
        }
        unkId = try id(unk); clsId = try id(cls); sepId = try id(sep); padId = try id(pad); maskId = try id(mask)
        for t in additionalSpecialTokens { _ = try id(t) }
        self.splitSpecialTokens = splitSpecialTokens
        let specials = Set([unk, cls, sep, pad, mask] + additionalSpecialTokens).filter { !$0.isEmpty }
        specialTokensInText = splitSpecialTokens ? [] : specials.map { Array($0.unicodeScalars) }.sorted { $0.count > $1.count }
    }

    /// Vocabulary size.
    public var count: Int { idToToken.count }

    /// Throws unless every id fits a model's embedding table of `vocabularySize` rows (text_config.vocab_size):
    /// a larger vocabulary would give ids the model cannot look up.
    public func checkFits(vocabularySize: Int) throws {
        guard count > vocabularySize else { return }
        throw TokenizerError("\(source): \(count) tokens, more than the model's text_config.vocab_size (\(vocabularySize)): not this model's vocabulary")
    }

    /// Ids that are never masked or predicted.
    public var specialIds: Set<Int> { [clsId, sepId, padId, maskId, unkId] }

    /// The normalizer and pre-tokenizer (no vocabulary involved).
    public var basic: BasicTokenizer { BasicTokenizer(doLowerCase: doLowerCase, stripAccents: stripAccents, tokenizeChineseChars: tokenizeChineseChars) }

    /// Splits text into basic tokens (words and punctuation marks), normalized as the model's vocabulary expects.
    public func basicTokenize(_ text: String) -> [String] { basic.tokenize(text) }

    // MARK: WordPiece

    /// Greedy longest-match-first WordPiece of one basic token; [UNK] if it is over 100 characters or any
    /// part of it has no match.
    public func wordPiece(_ token: String) -> [String] {
        let chars = Array(token.unicodeScalars)
        if chars.count > maxInputCharsPerWord { return [unkToken] }
        if vocab[token] != nil { return [token] }
        var pieces: [String] = []
        var start = 0
        while start < chars.count {
            var end = min(chars.count, start + longestToken)
            var found: String? = nil
            while start < end {
                var s = String(String.UnicodeScalarView(chars[start..<end]))
                if start > 0 { s = "##" + s }
                if vocab[s] != nil { found = s; break }
                end -= 1
            }
            guard let piece = found else { return [unkToken] }
            pieces.append(piece)
            start = end
        }
        return pieces
    }

    /// Tokens of a text, without special tokens.
    public func tokenize(_ text: String) -> [String] { tokenizeWithWords(text).map(\.0) }

    /// Tokens with the index of the word each came from; a special token written in the text is a word of its own.
    func tokenizeWithWords(_ text: String) -> [(String, Int)] {
        var out: [(String, Int)] = []
        var words = 0
        for segment in splitOnSpecialTokens(text) {
            if segment.isSpecial { out.append((segment.text, words)); words += 1; continue }
            for word in basicTokenize(segment.text) {
                for p in wordPiece(word) { out.append((p, words)) }
                words += 1
            }
        }
        return out
    }

    /// The text cut around the special tokens written in it: at each code point the longest special token that
    /// starts there, if any (transformers' added-token matching on the raw text).
    func splitOnSpecialTokens(_ text: String) -> [(text: String, isSpecial: Bool)] {
        let firsts = Set(specialTokensInText.compactMap(\.first))
        guard text.unicodeScalars.contains(where: { firsts.contains($0) }) else { return [(text, false)] }
        let u = Array(text.unicodeScalars)
        var out: [(text: String, isSpecial: Bool)] = []
        var plainStart = 0, i = 0
        func plain(_ end: Int) {
            if plainStart < end { out.append((String(String.UnicodeScalarView(u[plainStart..<end])), false)) }
        }
        while i < u.count {
            if firsts.contains(u[i]),
               let t = specialTokensInText.first(where: { t in i + t.count <= u.count && u[i..<(i + t.count)].elementsEqual(t) }) {
                plain(i)
                out.append((String(String.UnicodeScalarView(t)), true))
                i += t.count
                plainStart = i
            } else { i += 1 }
        }
        plain(u.count)
        return out
    }

    /// Ids of tokens ([UNK] for unknown tokens).
    public func convertToIds(_ tokens: [String]) -> [Int] { tokens.map { vocab[$0] ?? unkId } }

    // MARK: encoding

    /// [CLS] text [SEP] (pair [SEP]) with token types 0 (1 for the pair), truncated to `maxLength`
    /// (longest-first for pairs, as HF) and, with `padToMaxLength`, padded with [PAD] to `maxLength`.
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil, padToMaxLength: Bool = false) -> Encoding {
        var a = tokenizeWithWords(text)
        var b = pair.map { tokenizeWithWords($0) }
        if let maxLength {
            let special = b == nil ? 2 : 3
            let budget = max(0, maxLength - special)
            if b == nil { if a.count > budget { a.removeLast(a.count - budget) } }
            else {
                while a.count + b!.count > budget {
                    if a.count > b!.count { a.removeLast() } else if !b!.isEmpty { b!.removeLast() } else { a.removeLast() }
                }
            }
        }
        var tokens = [clsToken] + a.map(\.0) + [sepToken]
        var types = [Int](repeating: 0, count: tokens.count)
        var words: [Int?] = [nil] + a.map { Optional($0.1) } + [nil]
        if let b {
            let offset = (a.last?.1 ?? -1) + 1
            tokens += b.map(\.0) + [sepToken]
            types += [Int](repeating: 1, count: b.count + 1)
            words += b.map { Optional($0.1 + offset) } + [nil]
        }
        var mask = [Int](repeating: 1, count: tokens.count)
        if let maxLength, padToMaxLength, tokens.count < maxLength {
            let n = maxLength - tokens.count
            tokens += [String](repeating: padToken, count: n)
            types += [Int](repeating: 0, count: n)
            mask += [Int](repeating: 0, count: n)
            words += [Int?](repeating: nil, count: n)
        }
        return Encoding(tokens: tokens, ids: convertToIds(tokens), attentionMask: mask, tokenTypeIds: types, wordIds: words)
    }

    /// Encodes a batch, padded to the longest (or to `maxLength` with `padToMaxLength`): ids, attention mask
    /// and token types as [B, L] integer tensors' values.
    /// `threads` > 1 splits the texts over that many threads (the tokenizer is immutable, so this is safe).
    public func encodeBatch(_ texts: [String], maxLength: Int? = nil, padToMaxLength: Bool = false, threads: Int = 1) -> [Encoding] {
        var encs: [Encoding]
        if threads <= 1 || texts.count < 64 {
            encs = texts.map { encode($0, maxLength: maxLength, padToMaxLength: padToMaxLength) }
        } else {
            var slots = [Encoding?](repeating: nil, count: texts.count)
            slots.withUnsafeMutableBufferPointer { out in
                let base = out.baseAddress!
                // Each worker writes only the slots i ≡ w (mod threads).
                Parallel.concurrentPerform(iterations: threads) { w in
                    for i in stride(from: w, to: texts.count, by: threads) {
                        (base + i).pointee = encode(texts[i], maxLength: maxLength, padToMaxLength: padToMaxLength)
                    }
                }
            }
            encs = slots.map { $0! }
        }
        let longest = encs.map(\.ids.count).max() ?? 0
        for i in encs.indices where encs[i].ids.count < longest {
            let n = longest - encs[i].ids.count
            encs[i].tokens += [String](repeating: padToken, count: n)
            encs[i].ids += [Int](repeating: padId, count: n)
            encs[i].attentionMask += [Int](repeating: 0, count: n)
            encs[i].tokenTypeIds += [Int](repeating: 0, count: n)
            encs[i].wordIds += [Int?](repeating: nil, count: n)
        }
        return encs
    }

    /// Text from ids: special tokens dropped (optionally), "##" pieces joined to the previous token, and
    /// spaces before punctuation cleaned up as HF's `clean_up_tokenization_spaces`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        var out = ""
        for id in ids {
            guard id >= 0 && id < idToToken.count else { continue }
            if skipSpecialTokens && [clsId, sepId, padId].contains(id) { continue }
            let t = idToToken[id]
            if t.hasPrefix("##") { out += t.dropFirst(2) } else { out += (out.isEmpty ? "" : " ") + t }
        }
        for (a, b) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                       (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
            out = out.replacingOccurrences(of: a, with: b)
        }
        return out
    }
}

/// BERT's BasicTokenizer: clean-up (control characters dropped, whitespace unified), CJK characters as words,
/// lower-casing (Python's str.lower), accent stripping (NFD, drop Mn), punctuation split.
public struct BasicTokenizer: Sendable {
    public var doLowerCase: Bool
    public var stripAccents: Bool
    public var tokenizeChineseChars: Bool

    public init(doLowerCase: Bool = true, stripAccents: Bool? = nil, tokenizeChineseChars: Bool = true) {
        self.doLowerCase = doLowerCase
        self.stripAccents = stripAccents ?? doLowerCase
        self.tokenizeChineseChars = tokenizeChineseChars
    }


    @inline(__always) static func isWhitespace(_ u: Unicode.Scalar) -> Bool {
        if u == " " || u == "\t" || u == "\n" || u == "\r" { return true }
        return u.properties.generalCategory == .spaceSeparator
    }

    @inline(__always) static func isControl(_ u: Unicode.Scalar) -> Bool {
        if u == "\t" || u == "\n" || u == "\r" { return false }
        switch u.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    @inline(__always) static func isPunctuation(_ u: Unicode.Scalar) -> Bool {
        let c = u.value
        if (33...47).contains(c) || (58...64).contains(c) || (91...96).contains(c) || (123...126).contains(c) { return true }
        switch u.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    @inline(__always) static func isChineseChar(_ u: Unicode.Scalar) -> Bool {
        let c = u.value
        return (0x4E00...0x9FFF).contains(c) || (0x3400...0x4DBF).contains(c) || (0x20000...0x2A6DF).contains(c)
            || (0x2A700...0x2B73F).contains(c) || (0x2B740...0x2B81F).contains(c) || (0x2B820...0x2CEAF).contains(c)
            || (0xF900...0xFAFF).contains(c) || (0x2F800...0x2FA1F).contains(c)
    }

    /// Splits text into basic tokens (words and punctuation marks), normalized as the model's vocabulary expects.
    public func tokenize(_ text: String) -> [String] {
        // Clean: drop NUL, U+FFFD and control characters; map whitespace to a space; pad CJK characters.
        var cleaned = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            if u.value == 0 || u.value == 0xFFFD || BasicTokenizer.isControl(u) { continue }
            if BasicTokenizer.isWhitespace(u) { cleaned.append(" "); continue }
            if tokenizeChineseChars && BasicTokenizer.isChineseChar(u) {
                cleaned.append(" "); cleaned.append(u); cleaned.append(" ")
            } else { cleaned.append(u) }
        }
        var out: [String] = []
        // Words are runs of code points between whitespace (after clean-up, a space, or a line or paragraph
        // separator, which transformers splits on too). Splitting the String itself would walk grapheme
        // clusters and keep " \u{301}" together.
        for word in cleaned.split(whereSeparator: { $0 == " " || $0.properties.isWhitespace }) {
            var w = String(String.UnicodeScalarView(word))
            if doLowerCase { w = pythonLower(w) }
            if stripAccents { w = BasicTokenizer.stripAccentMarks(w) }
            // Split on punctuation: every punctuation mark is its own token.
            var current = String.UnicodeScalarView()
            for u in w.unicodeScalars {
                if BasicTokenizer.isPunctuation(u) {
                    if !current.isEmpty { out.append(String(current)); current = String.UnicodeScalarView() }
                    out.append(String(u))
                } else { current.append(u) }
            }
            if !current.isEmpty { out.append(String(current)) }
        }
        return out
    }

    /// Python's str.lower() for a word (ASCII fast path; full Unicode mapping otherwise).
    func pythonLower(_ w: String) -> String {
        if w.utf8.allSatisfy({ $0 < 0x80 }) {
            return String(decoding: w.utf8.map { ($0 >= 65 && $0 <= 90) ? $0 + 32 : $0 }, as: UTF8.self)
        }
        var out = String.UnicodeScalarView()
        let scalars = Array(w.unicodeScalars)
        for (i, u) in scalars.enumerated() {
            // Final sigma: Σ at the end of a word (preceded by a letter) lowers to ς, as Python does.
            if u == "\u{03A3}" {
                let before = i > 0 && scalars[i - 1].properties.isCased
                let after = i + 1 < scalars.count && scalars[i + 1].properties.isCased
                out.append(before && !after ? "\u{03C2}" : "\u{03C3}")
                continue
            }
            out.append(contentsOf: u.properties.lowercaseMapping.unicodeScalars)
        }
        return String(out)
    }

    /// NFD, then drop nonspacing marks (Mn).
    static func stripAccentMarks(_ w: String) -> String {
        if w.utf8.allSatisfy({ $0 < 0x80 }) { return w }
        var out = String.UnicodeScalarView()
        for u in w.decomposedStringWithCanonicalMapping.unicodeScalars where u.properties.generalCategory != .nonspacingMark {
            out.append(u)
        }
        return String(out)
    }

}
