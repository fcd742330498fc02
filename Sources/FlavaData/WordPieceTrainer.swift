// Training a WordPiece vocabulary, as Hugging Face `tokenizers`' WordPieceTrainer does: BERT's basic
// pre-tokenization, an alphabet of every character (continuations spelled "##c"), then greedy merges of the
// most frequent adjacent pair (BPE on word frequencies) until the vocabulary has the requested size.
// Pair counts are updated incrementally, only for the words a merge touches.
import Foundation

/// WordPiece vocabulary training.
public struct WordPieceTrainer {
    public var vocabSize: Int
    public var minFrequency: Int
    public var specialTokens: [String]
    public var basic: BasicTokenizer
    /// Characters seen fewer times than this are left out of the alphabet (0 keeps all).
    public var alphabetLimit: Int

    public init(vocabSize: Int, minFrequency: Int = 2, specialTokens: [String] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                basic: BasicTokenizer = BasicTokenizer(), alphabetLimit: Int = 1000) {
        self.vocabSize = vocabSize; self.minFrequency = minFrequency; self.specialTokens = specialTokens
        self.basic = basic; self.alphabetLimit = alphabetLimit
    }

    /// Word frequencies of a corpus (one document or sentence per element).
    public func countWords<S: Sequence>(_ lines: S) -> [String: Int] where S.Element == String {
        var counts: [String: Int] = [:]
        for line in lines { for w in basic.tokenize(line) { counts[w, default: 0] += 1 } }
        return counts
    }

    /// The vocabulary (special tokens first, then the alphabet, then merges in order).
    public func train(wordCounts: [String: Int]) -> [String] {
        // Symbols are interned to ints; each word is a sequence of symbols with a frequency.
        var symbols: [String] = []
        var symbolId: [String: Int] = [:]
        func intern(_ s: String) -> Int {
            if let i = symbolId[s] { return i }
            symbols.append(s); symbolId[s] = symbols.count - 1
            return symbols.count - 1
        }
        var vocab = specialTokens
        var inVocab = Set(vocab)
        // Alphabet: characters by frequency (most frequent first), capped; rare characters become [UNK] at use.
        var charCounts: [String: Int] = [:]
        for (w, c) in wordCounts {
            for (i, ch) in w.unicodeScalars.enumerated() { charCounts[(i == 0 ? "" : "##") + String(ch), default: 0] += c }
        }
        let alphabet = charCounts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(alphabetLimit > 0 ? alphabetLimit : Int.max).map(\.key)
        for a in alphabet where !inVocab.contains(a) { vocab.append(a); inVocab.insert(a) }
        var words: [[Int]] = []
        var freqs: [Int] = []
        for (w, c) in wordCounts.sorted(by: { $0.key < $1.key }) where c >= 1 {
            let chars = w.unicodeScalars.enumerated().map { (i, ch) in (i == 0 ? "" : "##") + String(ch) }
            if chars.contains(where: { !inVocab.contains($0) }) { continue }   // a rare character: the word stays [UNK]
            words.append(chars.map(intern)); freqs.append(c)
        }
        // Pair statistics.
        struct Pair: Hashable { let a: Int, b: Int }
        var pairCounts: [Pair: Int] = [:]
        var where_: [Pair: Set<Int>] = [:]
        for (wi, w) in words.enumerated() where w.count > 1 {
            for i in 0..<(w.count - 1) {
                let p = Pair(a: w[i], b: w[i + 1])
                pairCounts[p, default: 0] += freqs[wi]
                where_[p, default: []].insert(wi)
            }
        }
        while vocab.count < vocabSize {
            guard let (best, count) = pairCounts.max(by: { l, r in
                l.value != r.value ? l.value < r.value : (symbols[l.key.a], symbols[l.key.b]) > (symbols[r.key.a], symbols[r.key.b])
            }), count >= minFrequency else { break }
            let a = symbols[best.a], b = symbols[best.b]
            let merged = a + (b.hasPrefix("##") ? String(b.dropFirst(2)) : b)
            let m = intern(merged)
            if !inVocab.contains(merged) { vocab.append(merged); inVocab.insert(merged) }
            for wi in where_[best] ?? [] {
                let w = words[wi], f = freqs[wi]
                // Remove this word's old pairs, merge, add the new pairs.
                for i in 0..<(w.count - 1) {
                    let p = Pair(a: w[i], b: w[i + 1])
                    pairCounts[p, default: 0] -= f
                    if pairCounts[p]! <= 0 { pairCounts[p] = nil }
                    where_[p]?.remove(wi)
                }
                var nw: [Int] = []
                var i = 0
                while i < w.count {
                    if i + 1 < w.count && w[i] == best.a && w[i + 1] == best.b { nw.append(m); i += 2 } else { nw.append(w[i]); i += 1 }
                }
                words[wi] = nw
                if nw.count > 1 {
                    for j in 0..<(nw.count - 1) {
                        let p = Pair(a: nw[j], b: nw[j + 1])
                        pairCounts[p, default: 0] += f
                        where_[p, default: []].insert(wi)
                    }
                }
            }
            pairCounts[best] = nil
            where_[best] = nil
        }
        return vocab
    }

    /// Reads text files (a document or sentence a line), trains, and returns the vocabulary.
    public func train(files: [String]) throws -> [String] {
        var counts: [String: Int] = [:]
        for f in files {
            guard let data = FileManager.default.contents(atPath: f) else { throw TokenizerError("\(f): cannot read file") }
            guard let text = String(data: data, encoding: .utf8) else { throw TokenizerError("\(f): not UTF-8 text") }
            for line in text.split(whereSeparator: \.isNewline) {
                for w in basic.tokenize(String(line)) { counts[w, default: 0] += 1 }
            }
        }
        guard !counts.isEmpty else { throw TokenizerError("\(files.joined(separator: ", ")): no words to train on") }
        return train(wordCounts: counts)
    }
}
