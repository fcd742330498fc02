// Splitting text on a separator code point. Swift's `String.split(separator:)` walks grapheme clusters, and
// "\r\n", "\t\u{301}" or "\n\u{301}" are single clusters, so a CRLF file would not split into lines and a
// tab followed by a combining mark would not split a TSV row. Files are split here on code points instead.

extension StringProtocol {
    /// The pieces between occurrences of the code point `separator`.
    public func split(onScalar separator: Unicode.Scalar, omittingEmptySubsequences: Bool = true) -> [String] {
        unicodeScalars.split(separator: separator, omittingEmptySubsequences: omittingEmptySubsequences)
            .map { String(String.UnicodeScalarView($0)) }
    }

    /// The lines of a text: split at "\n", each line's final "\r" dropped (CRLF reads as LF), and no empty last
    /// line for a text that ends with a newline.
    public var codePointLines: [String] {
        var lines = split(onScalar: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        return lines.map { $0.unicodeScalars.last == "\r" ? String(String.UnicodeScalarView($0.unicodeScalars.dropLast())) : $0 }
    }
}
