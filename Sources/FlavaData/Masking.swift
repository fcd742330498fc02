import Foundation

import FlavaTensor

// The masking FLAVA pretrains with (FLAVA_REFERENCE.md §5.3, §5.5): BEiT block-wise masking of image
// patches, BERT's 15% token masking with 80/10/10 replacement, and its whole-word variant for image-text
// data. Everything draws from a SeededGenerator passed in, so a data-loading thread owns its own stream and a
// run is reproducible from its seed.

/// Python's random.uniform(a, b) = a + (b − a)·U[0, 1) (a may exceed b).
@inline(__always) func uniform(_ a: Double, _ b: Double, _ g: inout SeededGenerator) -> Double {
    a + (b - a) * Double(g.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
}

/// Python's random.randint(a, b): inclusive of both ends.
@inline(__always) func randint(_ a: Int, _ b: Int, _ g: inout SeededGenerator) -> Int {
    a + Int(g.next() % UInt64(b - a + 1))
}

/// BEiT's block-wise masking generator (HF FlavaMaskingGenerator / TMM ImageMaskingGenerator).
public struct FlavaMaskingGenerator: Sendable {
    public var height: Int, width: Int
    public var totalMaskPatches: Int
    public var minPatches: Int
    public var maxPatches: Int
    public var logAspectRatio: (Double, Double)

    /// Defaults: a 14×14 grid, 75 patches, blocks of at least 16, aspect ratios 0.3…1/0.3.
    public init(height: Int = 14, width: Int = 14, totalMaskPatches: Int = 75, minPatches: Int = 16,
                maxPatches: Int? = nil, minAspect: Double = 0.3, maxAspect: Double? = nil) {
        precondition(height > 0 && width > 0 && totalMaskPatches >= 0 && minPatches >= 0 && minAspect > 0)
        self.height = height; self.width = width
        self.totalMaskPatches = totalMaskPatches
        self.minPatches = minPatches
        self.maxPatches = maxPatches ?? totalMaskPatches
        logAspectRatio = (log(minAspect), log(maxAspect ?? 1 / minAspect))
    }

    private func maskBlock(_ mask: inout [Int], maxMaskPatches: Int, _ g: inout SeededGenerator) -> Int {
        var delta = 0
        for _ in 0..<10 {
            let area = uniform(Double(minPatches), Double(maxMaskPatches), &g)
            let aspect = exp(uniform(logAspectRatio.0, logAspectRatio.1, &g))
            let h = Int((area * aspect).squareRoot().rounded(.toNearestOrEven))
            let w = Int((area / aspect).squareRoot().rounded(.toNearestOrEven))
            if w < width && h < height {
                let top = randint(0, height - h, &g), left = randint(0, width - w, &g)
                var already = 0
                for y in top..<(top + h) { for x in left..<(left + w) { already += mask[y * width + x] } }
                if 0 < h * w - already && h * w - already <= maxMaskPatches {
                    for y in top..<(top + h) { for x in left..<(left + w) where mask[y * width + x] == 0 {
                        mask[y * width + x] = 1; delta += 1
                    } }
                }
            }
            if delta > 0 { break }
        }
        return delta
    }

    /// One mask over the grid, row-major 0/1 (never more than `totalMaskPatches` ones).
    public func generate(using g: inout SeededGenerator) -> [Int] {
        var mask = [Int](repeating: 0, count: height * width)
        var count = 0
        while count < totalMaskPatches {
            let maxMask = min(totalMaskPatches - count, maxPatches)
            let delta = maskBlock(&mask, maxMaskPatches: maxMask, &g)
            if delta == 0 { break }
            count += delta
        }
        return mask
    }
}



/// The result of masking a token sequence: the ids the model sees and the labels (−100 where nothing is asked).
public struct MaskedTokens: Sendable, Equatable {
    public var inputIds: [Int]
    public var labels: [Int]
}

/// BERT-style masked-language-model masking.
public enum MLMMasking {
    /// DataCollatorForLanguageModeling: each non-special token is chosen with probability `probability`;
    /// chosen tokens become [MASK] (80%), a random token (10%) or stay (10%).
    public static func mask(_ ids: [Int], specialIds: Set<Int>, maskId: Int, vocabSize: Int, probability: Double = 0.15,
                            using g: inout SeededGenerator) -> MaskedTokens {
        let chosen = ids.map { specialIds.contains($0) ? false : Double(g.nextUniform()) < probability }
        return replace(ids, chosen: chosen, maskId: maskId, vocabSize: vocabSize, using: &g)
    }

    /// DataCollatorForWholeWordMask: whole words (a "##" piece joins the word before it; [CLS] and [SEP] are
    /// never candidates) are shuffled and taken while they fit in round(len·p) tokens (len counts padding,
    /// as HF does), then special and padding positions are cleared and the 80/10/10 rule applied.
    public static func maskWholeWords(_ ids: [Int], tokens: [String], specialIds: Set<Int>, clsToken: String = "[CLS]",
                                      sepToken: String = "[SEP]", maskId: Int, vocabSize: Int, probability: Double = 0.15,
                                      maxPredictions: Int = 512, using g: inout SeededGenerator) -> MaskedTokens {
        precondition(ids.count == tokens.count, "ids and tokens differ in length")
        var candidates: [[Int]] = []
        for (i, t) in tokens.enumerated() {
            if t == clsToken || t == sepToken { continue }
            if !candidates.isEmpty && t.hasPrefix("##") { candidates[candidates.count - 1].append(i) } else { candidates.append([i]) }
        }
        candidates.shuffle(using: &g)
        let budget = min(maxPredictions, max(1, Int((Double(tokens.count) * probability).rounded(.toNearestOrEven))))
        var covered = Set<Int>()
        for word in candidates {
            if covered.count >= budget { break }
            if covered.count + word.count > budget { continue }
            if word.contains(where: covered.contains) { continue }
            covered.formUnion(word)
        }
        let chosen = ids.indices.map { covered.contains($0) && !specialIds.contains(ids[$0]) }
        return replace(ids, chosen: chosen, maskId: maskId, vocabSize: vocabSize, using: &g)
    }

    /// The 80/10/10 replacement of chosen positions.
    static func replace(_ ids: [Int], chosen: [Bool], maskId: Int, vocabSize: Int, using g: inout SeededGenerator) -> MaskedTokens {
        var input = ids
        var labels = [Int](repeating: -100, count: ids.count)
        for i in ids.indices where chosen[i] {
            labels[i] = ids[i]
            let u = Double(g.nextUniform())
            if u < 0.8 { input[i] = maskId }
            else if u < 0.9 { input[i] = Int(g.next() % UInt64(vocabSize)) }
        }
        return MaskedTokens(inputIds: input, labels: labels)
    }
}
