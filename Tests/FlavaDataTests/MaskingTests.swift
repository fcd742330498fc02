// Masking statistics and determinism: BEiT blocks, BERT 15% with 80/10/10, whole words.
import Testing
import Foundation
import FlavaKit
import TestSupport

@Test(arguments: [(14, 14, 75), (4, 4, 6), (7, 11, 30), (14, 14, 0)])
func blockMaskingStaysWithinTheTargetAndTheGrid(h: Int, w: Int, total: Int) {
    let gen = FlavaMaskingGenerator(height: h, width: w, totalMaskPatches: total, minPatches: min(16, max(1, total / 4)))
    var g = SeededGenerator(seed: 1)
    var sum = 0
    for _ in 0..<200 {
        let m = gen.generate(using: &g)
        #expect(m.count == h * w)
        #expect(m.allSatisfy { $0 == 0 || $0 == 1 })
        let n = m.reduce(0, +)
        #expect(n <= total)
        sum += n
    }
    if total > 0 { #expect(Double(sum) / 200 > 0.6 * Double(total), "mean masked \(Double(sum) / 200) of \(total)") }
}

@Test func blockMasksAreBlocksAndDeterministic() {
    let gen = FlavaMaskingGenerator()
    var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
    let m1 = gen.generate(using: &a), m2 = gen.generate(using: &b), m3 = gen.generate(using: &c)
    #expect(m1 == m2)
    #expect(m1 != m3)
    // Blocks: most masked patches have a masked 4-neighbour.
    let withNeighbour = (0..<196).filter { i in
        m1[i] == 1 && [i - 14, i + 14, i % 14 > 0 ? i - 1 : -1, i % 14 < 13 ? i + 1 : -1].contains { $0 >= 0 && $0 < 196 && m1[$0] == 1 }
    }.count
    #expect(Double(withNeighbour) >= 0.9 * Double(m1.reduce(0, +)))
}

@Test func mlmMaskingHitsFifteenPercentWithTheEightyTenTenSplit() {
    let special: Set<Int> = [0, 101, 102]
    var g = SeededGenerator(seed: 7)
    var chosen = 0, eligible = 0, masked = 0, random = 0, kept = 0
    for _ in 0..<400 {
        let ids = [101] + (0..<60).map { _ in 1000 + Int(g.next() % 20000) } + [102, 0, 0]
        let r = MLMMasking.mask(ids, specialIds: special, maskId: 103, vocabSize: 30522, using: &g)
        for i in ids.indices {
            if special.contains(ids[i]) { #expect(r.labels[i] == -100 && r.inputIds[i] == ids[i]); continue }
            eligible += 1
            guard r.labels[i] != -100 else { #expect(r.inputIds[i] == ids[i]); continue }
            chosen += 1
            #expect(r.labels[i] == ids[i])
            if r.inputIds[i] == 103 { masked += 1 } else if r.inputIds[i] == ids[i] { kept += 1 } else { random += 1 }
        }
    }
    let p = Double(chosen) / Double(eligible)
    let se = (0.15 * 0.85 / Double(eligible)).squareRoot()
    #expect(abs(p - 0.15) < 4 * se, "rate \(p)")
    #expect(abs(Double(masked) / Double(chosen) - 0.8) < 0.03)
    #expect(abs(Double(random) / Double(chosen) - 0.1) < 0.03)
    #expect(abs(Double(kept) / Double(chosen) - 0.1) < 0.03)
    var x = SeededGenerator(seed: 9), y = SeededGenerator(seed: 9)
    let ids = Array(1000..<1077)
    #expect(MLMMasking.mask(ids, specialIds: special, maskId: 103, vocabSize: 30522, using: &x)
            == MLMMasking.mask(ids, specialIds: special, maskId: 103, vocabSize: 30522, using: &y))
}

@Test func wholeWordMaskingMasksWholeWords() throws {
    let tok = try BertTokenizer(vocabFile: TestPaths.reference.appendingPathComponent("flava_tiny/vocab.txt").path)
    let e = tok.encode("unaffable antidisestablishmentarianism and the quick brown fox", maxLength: 77, padToMaxLength: true)
    var g = SeededGenerator(seed: 3)
    for _ in 0..<100 {
        let r = MLMMasking.maskWholeWords(e.ids, tokens: e.tokens, specialIds: tok.specialIds, maskId: tok.maskId,
                                          vocabSize: tok.count, using: &g)
        // If any piece of a word is chosen, all its pieces are.
        for (i, t) in e.tokens.enumerated() where t.hasPrefix("##") {
            #expect((r.labels[i] == -100) == (r.labels[i - 1] == -100), "word split at \(i)")
        }
        #expect(r.labels.filter { $0 != -100 }.count <= 12)   // round(77 · 0.15)
        for i in e.tokens.indices where tok.specialIds.contains(e.ids[i]) { #expect(r.labels[i] == -100) }
    }
}
