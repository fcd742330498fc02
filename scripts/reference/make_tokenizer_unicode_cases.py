#!/usr/bin/env python3
"""Writes Tests/Fixtures/tokenizer/unicode_special_cases.jsonl from transformers' BertTokenizer on the
bert-base-uncased vocabulary (../shared/reference/flava_tiny/vocab.txt): text where Unicode code points and
Swift's grapheme clusters disagree (combining and spacing marks, joiners, variation selectors and emoji
modifiers right after whitespace; line and paragraph separators; CR LF), and literal special tokens in text
("a photo of a [MASK]"), with the options that change them (do_lower_case=False, split_special_tokens=True).

One JSON object a line: {"text", "pair", "do_lower_case", "split_special_tokens", "tokens", "ids", "ids_77",
"mask_77", "type_ids_77"}; tokens/ids without special tokens around the text, the *_77 fields with
[CLS] … [SEP] truncated and padded to 77.

Needs only `transformers` (no torch). Usage, from the repository root:
    python3 scripts/reference/make_tokenizer_unicode_cases.py ../shared/reference/flava_tiny/vocab.txt
"""
import json, os, sys
from transformers import BertTokenizer

TEXTS = [
    "x \u0301 y", " \u0301", "\u0301 leading mark", "a \u0308b", "cafe \u0301 au lait",
    "\u0915 \u093f x", " \u0915\u093f", "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\uff76 \uff9e", "\uff76\uff9e", "a \u20dd b", "zero \u200d joiner", "zero\u200djoiner", "emoji \U0001F3FD tone",
    "\U0001F44D\U0001F3FD ok", "heart \ufe0f selector", "flags \U0001F1EB\U0001F1F7 here", "a\u2028b", "a\u2029b",
    "a\u0085b", "line\r\nbreak", "tab\t\u0301mark", "\u3000ideographic\u3000space", "nb\u00a0sp", "x\u00ad y",
    "\u1100\u1161\u11a8 hangul jamo", "A \u0300\u0301\u0302 MARKS", "\u0301\u0301\u0301",
    "a photo of a [MASK]", "[CLS] hello [SEP] world [SEP]", "[MASK][MASK] two masks", "a[MASK]b", "[mask] is not special",
    "[MASK", "[UNK] unknown [PAD] padding", "x [SEP]y", "A Photo Of A [MASK].", "[[MASK]]", "[MASK] \u0301 [MASK]",
]
PAIRS = [("what is under the [MASK]?", "a cat under a [MASK] table"), ("x \u0301 y", "\u0915 \u093f")]


def main():
    vocab = sys.argv[1]
    out = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "tokenizer", "unicode_special_cases.jsonl")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    variants = [(True, False), (False, False), (True, True)]
    n = 0
    with open(out, "w", encoding="utf-8") as fh:
        for lower, split in variants:
            tok = BertTokenizer(vocab, do_lower_case=lower, split_special_tokens=split)
            cases = [(t, None) for t in TEXTS] + (PAIRS if (lower, split) == (True, False) else [])
            for text, pair in cases:
                toks = tok.tokenize(text)
                ids = tok.convert_tokens_to_ids(toks)
                assert tok(text, add_special_tokens=False)["input_ids"] == ids, text
                e = tok(text, pair, max_length=77, truncation=True, padding="max_length")
                fh.write(json.dumps({"text": text, "pair": pair, "do_lower_case": lower, "split_special_tokens": split,
                                     "tokens": toks, "ids": ids, "ids_77": e["input_ids"], "mask_77": e["attention_mask"],
                                     "type_ids_77": e["token_type_ids"]}, ensure_ascii=False) + "\n")
                n += 1
    print("cases:", n, "→", os.path.normpath(out))


if __name__ == "__main__":
    main()
