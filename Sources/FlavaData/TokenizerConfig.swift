// tokenizer_config.json as transformers writes it for BERT: the normalization switches and the special tokens
// (a string, or an AddedToken object {"content": …}). Every field is optional; one of the wrong type is an
// error naming it, never silently the default.
import Foundation
import FlavaTensor

/// The fields of `tokenizer_config.json` that BertTokenizer uses.
public struct TokenizerConfig: Decodable, Sendable, Equatable {
    public var doLowerCase = true
    /// nil: follow `doLowerCase`, as transformers does.
    public var stripAccents: Bool? = nil
    public var tokenizeChineseChars = true
    public var splitSpecialTokens = false
    public var unkToken = "[UNK]", clsToken = "[CLS]", sepToken = "[SEP]", padToken = "[PAD]", maskToken = "[MASK]"
    public var additionalSpecialTokens: [String] = []

    enum CodingKeys: String, CodingKey {
        case doLowerCase = "do_lower_case", stripAccents = "strip_accents", tokenizeChineseChars = "tokenize_chinese_chars"
        case splitSpecialTokens = "split_special_tokens", unkToken = "unk_token", clsToken = "cls_token"
        case sepToken = "sep_token", padToken = "pad_token", maskToken = "mask_token"
        case additionalSpecialTokens = "additional_special_tokens"
    }

    /// A special token: "[MASK]" or {"content": "[MASK]", …}.
    struct Token: Decodable {
        let content: String
        enum Keys: String, CodingKey { case content }
        init(from decoder: Decoder) throws {
            if let s = try? decoder.singleValueContainer().decode(String.self) { content = s; return }
            content = try decoder.container(keyedBy: Keys.self).decode(String.self, forKey: .content)
        }
    }

    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        doLowerCase = try c.value(.doLowerCase, doLowerCase)
        stripAccents = try c.decodeIfPresent(Bool.self, forKey: .stripAccents)
        tokenizeChineseChars = try c.value(.tokenizeChineseChars, tokenizeChineseChars)
        splitSpecialTokens = try c.value(.splitSpecialTokens, splitSpecialTokens)
        func token(_ key: CodingKeys, _ fallback: String) throws -> String {
            try c.decodeIfPresent(Token.self, forKey: key)?.content ?? fallback
        }
        unkToken = try token(.unkToken, unkToken); clsToken = try token(.clsToken, clsToken); sepToken = try token(.sepToken, sepToken)
        padToken = try token(.padToken, padToken); maskToken = try token(.maskToken, maskToken)
        additionalSpecialTokens = try c.decodeIfPresent([Token].self, forKey: .additionalSpecialTokens)?.map(\.content) ?? []
    }
}
