// The int8 products against an exact integer reference, on every kernel path this CPU has (portable and AVX2
// everywhere; AVX-512 VNNI and AMX where the CPU has them, noted as skipped elsewhere), at odd sizes (1, 7, 65, 197),
// on one thread and split over two, with weights packed at 8 bits and at AVX2's 7 (whose AVX2 loop adds two groups'
// int16 pairs before widening); then the float epilogue, GELU, and the closeness to the float product.
import Testing
import Foundation
import FlavaTensor

private let paths = Int8GEMM.Path.allCases.filter { Int8GEMM.supports($0) }

/// The signed activation a quantized byte stands for on `path` (VNNI stores value + 128, AVX2 value + 64).
private func activation(_ byte: Int8, _ path: Int8GEMM.Path) -> Int {
    path.activationShift == 0 ? Int(byte) : Int(UInt8(bitPattern: byte)) - path.activationShift
}

private func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var g = SeededGenerator(seed: seed)
    let t = Tensor.randomNormal(shape, using: &g)
    return scale == 1 ? t : Tensor(shape: shape, t.array.map { $0 * scale })
}

private let sizes: [(m: Int, k: Int, n: Int)] = [(1, 7, 1), (7, 65, 197), (65, 197, 7), (197, 1, 65), (1, 197, 65),
                                                 (65, 65, 65), (197, 197, 33), (7, 1, 16), (3, 4, 32),
                                                 (55, 130, 47)]

@Test func int8KernelPathsAvailable() {
    #expect(paths.contains(.portable))
    if !Int8GEMM.supports(.amx) { print("note: this CPU (or its kernel) offers no AMX; that int8 path is not run here") }
    if !Int8GEMM.supports(.avx512VNNI) { print("note: this CPU has no AVX-512 VNNI; that int8 path is not run here") }
    if !Int8GEMM.supports(.avx2) { print("note: this CPU has no AVX2; that int8 path is not run here") }
}

@Test(arguments: paths, [127, 63]) func int8ProductsAreExactIntegerSums(_ path: Int8GEMM.Path, weightLevels: Int) {
    for (i, s) in sizes.enumerated() {
        let w = random([s.n, s.k], seed: UInt64(i) * 7 + 1, scale: 0.05)
        let x = random([s.m, s.k], seed: UInt64(i) * 7 + 2)
        let lin = Int8Linear(weight: w, bias: nil, weightLevels: weightLevels)
        #expect(lin.weightLevels == weightLevels)
        #expect((0..<s.n).allSatisfy { c in (0..<s.k).contains { abs(Int(lin.weight(c, $0))) == weightLevels } },
                "every channel reaches ±\(weightLevels)")
        let (q, _) = lin.quantize(x, path: path)
        let kp = (s.k + 63) / 64 * 64
        var expect = [Int32](repeating: 0, count: s.m * s.n)
        for r in 0..<s.m { for c in 0..<s.n {
            var acc = 0
            for j in 0..<s.k { acc += activation(q[r * kp + j], path) * Int(lin.weight(c, j)) }
            expect[r * s.n + c] = Int32(acc)
        } }
        for threads in [1, 2] {
            let saved = Parallel.threadCount
            Parallel.threadCount = threads
            defer { Parallel.threadCount = saved }
            #expect(lin.int32Products(q, rows: s.m, path: path) == expect,
                    "\(path), \(weightLevels)-level weights, \(s) on \(threads) threads")
        }
    }
}

@Test func int8PathsAgreeWithEachOther() {
    let w = random([197, 65], seed: 11, scale: 0.1), x = random([65, 65], seed: 12)
    let lin = Int8Linear(weight: w, bias: random([197], seed: 13))
    let outs = paths.map { lin(x, path: $0).array }
    let exact = LinearKernel.forward(x, weight: w, bias: random([197], seed: 13)).array
    func relativeError(_ o: [Float]) -> Double {
        var err = 0.0, norm = 0.0
        for (e, g) in zip(exact, o) { err += Double((e - g) * (e - g)); norm += Double(e * e) }
        return (err / norm).squareRoot()
    }
    let portableError = relativeError(outs[0])
    for (p, o) in zip(paths, outs) {
        if p.activationLevels == 127 {
            // The 8-bit paths: the same int32 sums, so the same numbers up to the epilogue's float rounding.
            let worst = zip(o, outs[0]).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(worst <= 1e-5, "\(p) against portable: \(worst)")
        } else {
            // AVX2's 7-bit activations: its own sums (exact, tested above), about twice the activation rounding.
            #expect(o != outs[0], "\(p): expected its 7-bit activations")
            #expect(relativeError(o) <= 3 * portableError, "\(p): error to float \(relativeError(o)) vs portable \(portableError)")
        }
    }
}

@Test(arguments: paths, [127, 63]) func int8LinearIsTheDequantizedProductPlusBias(_ path: Int8GEMM.Path, weightLevels: Int) {
    let (m, k, n) = (33, 65, 70)
    let w = random([n, k], seed: 21, scale: 0.05), x = random([2, m, k], seed: 22), b = random([n], seed: 23)
    let lin = Int8Linear(weight: w, bias: b, weightLevels: weightLevels)
    let out = lin(x, path: path)
    #expect(out.shape == [2, m, n])
    let flat = Tensor(shape: [2 * m, k], x.array)
    let (q, rowScales) = lin.quantize(flat, path: path)
    let sums = lin.int32Products(q, rows: 2 * m, path: path)
    let bias = b.array, o = out.array
    var worst: Float = 0
    for r in 0..<(2 * m) { for c in 0..<n {
        let e = Float(sums[r * n + c]) * (rowScales[r] * lin.scale(c)) + bias[c]
        worst = max(worst, abs(o[r * n + c] - e) / max(1, abs(e)))
    } }
    #expect(worst <= 1e-6, "\(path): \(worst)")
    // GELU in the epilogue = GELU of the product.
    let g = lin(x, gelu: true, path: path).array
    let ref = o.map { v in 0.5 * v * (1 + Float(erf(Double(v) / 2.0.squareRoot()))) }
    #expect(zip(g, ref).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }, "\(path): GELU")
}

@Test(arguments: paths) func int8LinearIsCloseToTheFloatProduct(_ path: Int8GEMM.Path) {
    let (m, k, n) = (16, 256, 96)
    let w = random([n, k], seed: 31, scale: 0.05), x = random([m, k], seed: 32), b = random([n], seed: 33)
    let exact = LinearKernel.forward(x, weight: w, bias: b).array
    for levels in [127, path.weightLevels] {
        let got = Int8Linear(weight: w, bias: b, weightLevels: levels)(x, path: path).array
        var err = 0.0, norm = 0.0
        for (e, g) in zip(exact, got) { err += Double((e - g) * (e - g)); norm += Double(e * e) }
        // Per-channel weights and per-row activations at 8 bits: about 1 % of the output's norm on Gaussian data;
        // AVX2's 7-bit activations and weights about twice that.
        let bound = path.activationLevels == 127 && levels == 127 ? 0.015 : 0.035
        #expect((err / norm).squareRoot() < bound, "\(path), \(levels)-level weights: relative error \((err / norm).squareRoot())")
    }
}

@Test func int8LinearPacksAtThePathsWeightLevels() {
    let w = random([20, 30], seed: 41, scale: 0.05)
    #expect(Int8Linear(weight: w, bias: nil).weightLevels == Int8GEMM.path.weightLevels)
    #expect(Int8GEMM.Path.avx2.weightLevels == 63)
    #expect(Int8GEMM.Path.allCases.filter { $0 != .avx2 }.allSatisfy { $0.weightLevels == 127 })
    let seven = Int8Linear(weight: w, bias: nil, weightLevels: 63), eight = Int8Linear(weight: w, bias: nil, weightLevels: 127)
    for c in 0..<20 {
        #expect(abs(seven.scale(c) * 63 - eight.scale(c) * 127) <= 1e-6 * eight.scale(c) * 127, "scale of channel \(c)")
        #expect((0..<30).allSatisfy { abs(Int(seven.weight(c, $0))) <= 63 })
    }
}

@Test func int8LinearOfZerosIsZeros() {
    let lin = Int8Linear(weight: Tensor.zeros([5, 9]), bias: nil)
    let out = lin(Tensor.zeros([3, 9]))
    #expect(out.array.allSatisfy { $0 == 0 })
    let empty = lin(Tensor.zeros([0, 9]))
    #expect(empty.shape == [0, 5])
}

@Test(arguments: paths) func activationsAndWeightsRoundToNearestEven(_ path: Int8GEMM.Path) {
    // Rows whose max is 127 make x·127/amax = x: halves land exactly on ties (0.5 → 0, 1.5 → 2, −2.5 → −2).
    let k = 37
    let rows: [[Float]] = [(0..<k).map { i in i == 0 ? 127 : Float(i % 9) - 4.5 },
                           (0..<k).map { i in i == 0 ? -127 : Float(i) * 0.5 - 9 },
                           [Float](repeating: 0, count: k),
                           (0..<k).map { Float($0) * 0.37 + 0.01 }]
    let x = Tensor(shape: [rows.count, k], rows.flatMap { $0 })
    let lin = Int8Linear(weight: x, bias: nil)           // the same rows as weights: each row is its own channel
    let seven = Int8Linear(weight: x, bias: nil, weightLevels: 63)
    let (q, scales) = lin.quantize(x, path: path)
    let kp = q.count / rows.count
    for (r, row) in rows.enumerated() {
        let amax = row.map(abs).max()!
        func expected(_ levels: Float) -> [Int] {
            let inv: Float = amax > 0 ? levels / amax : 0
            return row.map { Int(max(-levels, min(levels, ($0 * inv).rounded(.toNearestOrEven)))) }
        }
        let levels = Float(path.activationLevels)
        #expect(scales[r] == (amax > 0 ? amax / levels : 0))
        #expect((0..<k).map { activation(q[r * kp + $0], path) } == expected(levels), "\(path) activations, row \(r)")
        #expect((0..<k).map { Int(lin.weight(r, $0)) } == expected(Float(lin.weightLevels)), "weights, row \(r)")
        #expect((0..<k).map { Int(seven.weight(r, $0)) } == expected(63), "7-bit weights, row \(r)")
        #expect((k..<kp).allSatisfy { activation(q[r * kp + $0], path) == 0 }, "\(path): padding")
    }
}

/// The largest products a path can meet (every activation at ±levels, every weight at ±127 or ±63) sum exactly: no
/// int16 pair inside vpmaddubsw saturates (on AVX2 a pair is at most 2 · 127 · 127 = 32,258 after the shift, and
/// two groups' pairs of 7-bit weights at most 2 · 2 · 127 · 63 = 32,004).
@Test(arguments: paths, [127, 63]) func int8ProductsAtTheExtremesDoNotSaturate(_ path: Int8GEMM.Path, weightLevels: Int) {
    let k = 200
    let w = Tensor(shape: [4, k], (0..<(4 * k)).map { i in [1, -1, Float((i % k) % 2 == 0 ? 1 : -1), 0.5][i / k] })
    let x = Tensor(shape: [3, k], (0..<(3 * k)).map { i in [1, -1, Float((i % k) % 2 == 0 ? -1 : 1)][i / k] })
    let lin = Int8Linear(weight: w, bias: nil, weightLevels: weightLevels)
    let (q, _) = lin.quantize(x, path: path)
    let kp = q.count / 3
    for r in 0..<3 { for c in 0..<4 {
        let expect = (0..<k).reduce(0) { $0 + activation(q[r * kp + $1], path) * Int(lin.weight(c, $1)) }
        #expect(Int(lin.int32Products(q, rows: 3, path: path)[r * 4 + c]) == expect, "\(path) row \(r) column \(c)")
    } }
    let levels = path.activationLevels
    #expect(activation(q[0], path) == levels && activation(q[kp], path) == -levels)
    #expect(lin.int32Products(q, rows: 3, path: path)[0] == Int32(levels * weightLevels * k))
}
