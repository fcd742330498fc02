// The packed float32 product of inference (PackedLinear, flava_sgemm.c) on every instruction set this CPU has,
// against a double-precision loop: odd row counts (every tile-row tail), outputs that are not a multiple of 16
// (a partial panel, and an odd panel count beside the two-panel AVX-512 tile), more inputs than one block
// (SGEMM_KC = 1024, so the later block starts from the output), more rows than one row block (SGEMM_MC = 96),
// no bias, and the GELU epilogue.
import Testing
import Foundation
import FlavaTensor
import TestSupport

@Test(arguments: [(1, 7, 5), (7, 64, 16), (13, 65, 33), (65, 197, 48), (197, 40, 70), (3, 2500, 20), (100, 1030, 17), (2, 0, 3)])
func packedProductMatchesReferenceOnEveryLevel(m: Int, k: Int, n: Int) {
    var g = SeededGenerator(seed: UInt64(m * 1_000 + k * 7 + n))
    let x = Tensor.randomNormal([m, k], using: &g), w = Tensor.randomNormal([n, k], using: &g)
    let bias = Tensor.randomNormal([n], using: &g)
    func reference(_ b: Tensor?, gelu: Bool) -> [Double] {
        (0..<m).flatMap { i in (0..<n).map { c -> Double in
            var s = Double(b?[flat: c] ?? 0)
            for kk in 0..<k { s += Double(x[flat: i * k + kk]) * Double(w[flat: c * k + kk]) }
            return gelu ? 0.5 * s * (1 + erf(s / 2.0.squareRoot())) : s
        } }
    }
    for b in [bias, nil] {
        let packed = PackedLinear(weight: w, bias: b)
        for gelu in [false, true] {
            let ref = reference(b, gelu: gelu)
            for level in VectorMath.Level.allCases where VectorMath.supports(level) {
                let out = packed(x, gelu: gelu, level: level)
                #expect(out.shape == [m, n])
                let tol = 1e-5 * Double(max(k, 1)).squareRoot() * 4
                let worst = zip(out.array, ref).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? 0
                #expect(worst <= tol, "\(m)×\(k)·\(n) level \(level) bias \(b != nil) gelu \(gelu): off by \(worst)")
            }
        }
    }
}

/// On a [B, T, in] input, split over the threads by columns (few rows) or by rows (many), the packed product is
/// OpenBLAS's Linear to float rounding.
@Test func packedProductIsTheLinearKernel() {
    var g = SeededGenerator(seed: 77)
    let w = Tensor.randomNormal([96, 64], using: &g), bias = Tensor.randomNormal([96], using: &g)
    let packed = PackedLinear(weight: w, bias: bias)
    for rows in [1, 5, 77, 300] {
        let x = Tensor.randomNormal([1, rows, 64], using: &g)
        let ours = packed(x), blas = LinearKernel.forward(x, weight: w, bias: bias)
        #expect(ours.shape == [1, rows, 96])
        #expect(closenessReport(ours, blas, atol: 1e-5, rtol: 1e-5) == nil)
    }
}

@Test func productSplitCoversEveryRowAndBlockOnce() {
    for (m, blocks, threads) in [(1, 1, 2), (1, 48, 2), (77, 192, 2), (48, 3, 2), (616, 48, 2), (5, 7, 4), (100, 1, 3)] {
        let split = ProductSplit(rows: m, blocks: blocks, threads: threads)
        var seen = [Int](repeating: 0, count: m * blocks)
        for t in 0..<split.chunks {
            guard let (r, b) = split.chunk(t) else { continue }
            for i in r { for j in b { seen[i * blocks + j] += 1 } }
        }
        #expect(seen.allSatisfy { $0 == 1 }, "\(m) rows × \(blocks) blocks on \(threads) threads")
    }
}
