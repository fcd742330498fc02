// PMD-style caption filtering (FLAVA paper §3.5): take the first of several text fields that passes, keep
// English captions with more than two words, and report what was dropped and why.
import Foundation

/// A small English detector of our own: a text is English when most of its letters are Latin and enough of its
/// words are common English function words (or, for short captions, at least one is). It is a filter for
/// caption data, not a language identifier: it errs towards keeping short English-looking captions.
public enum EnglishDetector {
    static let functionWords: Set<String> = [
        "a", "an", "the", "and", "or", "but", "of", "in", "on", "at", "to", "for", "with", "by", "from", "up", "down",
        "is", "are", "was", "were", "be", "been", "being", "has", "have", "had", "do", "does", "did", "will", "would",
        "can", "could", "should", "may", "might", "this", "that", "these", "those", "it", "its", "he", "she", "they",
        "we", "you", "i", "his", "her", "their", "our", "your", "my", "there", "here", "what", "which", "who", "not",
        "no", "as", "into", "over", "under", "near", "next", "some", "two", "three", "one", "very", "while", "about",
        "out", "off", "just", "than", "then", "so", "if", "all", "any", "each", "other", "many", "much", "more",
        "most", "few", "how", "when", "where", "why", "photo", "picture", "image", "man", "woman", "people", "sitting",
        "standing", "holding", "white", "black", "red", "blue", "green", "small", "large", "top", "front", "side",
    ]
    static let foreignWords: Set<String> = [
        "der", "die", "das", "und", "ist", "ein", "eine", "mit", "nicht", "le", "la", "les", "et", "est", "un", "une",
        "des", "du", "avec", "el", "los", "las", "y", "es", "una", "con", "para", "il", "di", "che", "della", "em",
        "com", "uma", "não", "van", "het", "een", "zijn", "och", "att", "är",
    ]

    /// Whether `text` looks English.
    public static func isEnglish(_ text: String) -> Bool {
        var letters = 0, latin = 0
        for u in text.unicodeScalars where u.properties.isAlphabetic {
            letters += 1
            if u.value < 0x250 { latin += 1 }
        }
        guard letters > 0, Double(latin) / Double(letters) >= 0.9 else { return false }
        let words = text.lowercased().split { !$0.isLetter && $0 != "'" }.map(String.init)
        guard !words.isEmpty else { return false }
        let english = words.filter { functionWords.contains($0) }.count
        let foreign = words.filter { foreignWords.contains($0) }.count
        if foreign > english { return false }
        if words.count <= 4 { return english >= 1 || foreign == 0 }
        return Double(english) / Double(words.count) >= 0.15
    }
}

/// The filter's settings and report.
public struct PMDFilter {
    public var fields: [String]
    public var minWords: Int
    public var language: String?

    public init(fields: [String], minWords: Int = 3, language: String? = "en") {
        self.fields = fields; self.minWords = minWords; self.language = language
    }

    public struct Report: CustomStringConvertible {
        public var read = 0, kept = 0
        public var dropped: [String: Int] = [:]
        public var description: String {
            "read \(read), kept \(kept), dropped \(read - kept)" + (dropped.isEmpty ? "" : ": " +
                dropped.sorted { $0.value > $1.value }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        }
    }

    /// The first field of a record that passes, or why none did.
    public func choose(_ record: [String: Any]) -> Result<String, FilterReason> {
        var reason = FilterReason.noTextField
        for f in fields {
            guard let t = record[f] as? String, !t.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { continue }
            let text = t.trimmingCharacters(in: .whitespacesAndNewlines)
            // The reported reason is the first field's (the caption a person would have used).
            if language == "en" && !EnglishDetector.isEnglish(text) { if reason == .noTextField { reason = .notEnglish }; continue }
            if text.split(whereSeparator: { $0.isWhitespace }).count < minWords { if reason == .noTextField { reason = .tooShort }; continue }
            return .success(text)
        }
        return .failure(reason)
    }

    public enum FilterReason: String, Error { case noTextField = "without any text field", tooShort = "too short", notEnglish = "not English" }

    /// Filters a JSONL manifest into another, adding `caption` (the chosen text) to each kept object.
    /// Malformed lines stop the run with the file and line.
    public func run(input: String, output: String) throws -> Report {
        let reader = try LineReader(path: input)
        var report = Report()
        var out = Data()
        while let line = try reader.nextLine() {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            guard var obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw DataError("\(input):\(reader.lineNumber): not a JSON object")
            }
            report.read += 1
            switch choose(obj) {
            case .success(let text):
                obj["caption"] = text
                out.append(try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes]))
                out.append(0x0a)
                report.kept += 1
            case .failure(let r): report.dropped[r.rawValue, default: 0] += 1
            }
        }
        do { try out.write(to: URL(fileURLWithPath: output), options: .atomic) } catch { throw DataError("\(output): cannot write (\(error.localizedDescription))") }
        return report
    }
}
