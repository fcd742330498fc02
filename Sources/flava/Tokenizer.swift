// flava tokenizer: encode texts with a BERT WordPiece vocabulary, or train a new vocabulary.
import ArgumentParser
import Foundation
import FlavaKit

struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Encode texts with a WordPiece vocabulary, or train one.",
        subcommands: [Encode.self, Train.self])

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode each TEXT (or each line of standard input) and print one JSON object a line.",
            discussion: """
            Prints {"tokens", "ids", "attention_mask", "token_type_ids"}: [CLS] text [SEP] (pair [SEP]). With \
            --max-length N the sequence is truncated and padded to N, as tokenizer(text, max_length=N, \
            truncation=True, padding="max_length"); without it, no padding.
            """)
        @Option(help: "vocab.txt (tokenizer_config.json beside it is read too).") var vocab: String
        @Option(help: "Truncate and pad to this many tokens.") var maxLength: Int?
        @Option(help: "Second segment (token type 1) for every text.") var pair: String?
        @Flag(help: "Treat special tokens written in the text ([MASK], [SEP], …) as plain text, as transformers' split_special_tokens.")
        var splitSpecialTokens = false
        @Argument(help: "Texts to encode (default: lines of standard input).") var texts: [String] = []

        func run() throws {
            let tok = try BertTokenizer(vocabFile: vocab, splitSpecialTokens: splitSpecialTokens ? true : nil)
            if let m = maxLength, m < (pair == nil ? 2 : 3) { throw ValidationError("--max-length must leave room for the special tokens") }
            func emit(_ text: String) throws {
                let e = tok.encode(text, pair: pair, maxLength: maxLength, padToMaxLength: maxLength != nil)
                let obj: [String: Any] = ["tokens": e.tokens, "ids": e.ids, "attention_mask": e.attentionMask, "token_type_ids": e.tokenTypeIds]
                let d = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: d, as: UTF8.self))
            }
            if !texts.isEmpty { for t in texts { try emit(t) }; return }
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard let input = String(data: data, encoding: .utf8) else { throw TokenizerError("standard input is not UTF-8 text") }
            for line in input.codePointLines { try emit(line) }
        }
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a WordPiece vocabulary on text files (a document or sentence a line).",
            discussion: "BERT's basic pre-tokenization (lower-casing, accent stripping), then BPE-style merges of the most frequent pairs, as Hugging Face tokenizers' WordPieceTrainer.")
        @Option(name: .customLong("input"), help: "Text file; repeat for several.") var inputs: [String] = []
        @Option(help: "Vocabulary size, special tokens included.") var vocabSize: Int
        @Option(help: "Least frequency for a merge.") var minFrequency = 2
        @Option(help: "Output vocab.txt.") var output: String
        @Flag(help: "Keep case and accents (cased vocabulary).") var cased = false

        func validate() throws {
            if inputs.isEmpty { throw ValidationError("give at least one --input file") }
            if vocabSize < 10 { throw ValidationError("--vocab-size must be at least 10") }
        }

        func run() throws {
            let trainer = WordPieceTrainer(vocabSize: vocabSize, minFrequency: minFrequency,
                                           basic: BasicTokenizer(doLowerCase: !cased))
            let vocab = try trainer.train(files: inputs)
            let text = vocab.joined(separator: "\n") + "\n"
            try AtomicFile.write(to: output) { sink in try Array(text.utf8).withUnsafeBytes { try sink.write($0) } }
            print("wrote \(output): \(vocab.count) tokens")
        }
    }
}
