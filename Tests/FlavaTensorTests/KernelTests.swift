// Kernel-level checks against plain scalar references: vector math accuracy, GEMM, broadcasting, softmax.
import Testing
import Foundation
import FlavaTensor
import CFlavaKernels
import TestSupport

@Test func vectorExpMatchesLibm() {
    var worst: Float = 0
    for i in -8700...8800 {
        let x = Float(i) * 0.01
        let v = VectorMath.exp(x)
        let r = Foundation.exp(x)
        if r > 1e-37 { worst = max(worst, abs(v - r) / r) }
    }
    #expect(worst < 1e-6, "max relative error \(worst)")
    #expect(VectorMath.exp(-1000) == 0)
}

@Test func vectorGeluAndTanhMatchLibm() {
    var worstGelu: Float = 0, worstTanh: Float = 0
    for i in -1000...1000 {
        let x = Float(i) * 0.006
        let gelu = 0.5 * Double(x) * (1 + Foundation.erf(Double(x) / 2.0.squareRoot()))
        worstGelu = max(worstGelu, Float(abs(Double(VectorMath.gelu(x)) - gelu)))
        let t = VectorMath.tanh(x)
        worstTanh = max(worstTanh, abs(t - Foundation.tanh(x)) / max(abs(Foundation.tanh(x)), 1e-3))
    }
    #expect(worstGelu < 1e-6, "gelu max abs error \(worstGelu)")
    #expect(worstTanh < 1e-5, "tanh max rel error \(worstTanh)")
}

@Test(arguments: [1, 7, 65]) func gemmMatchesNaiveProduct(n: Int) {
    var g = SeededGenerator(seed: 3)
    let a = Tensor.randomNormal([n, 5], using: &g), b = Tensor.randomNormal([5, n + 2], using: &g)
    let c = LinearKernel.matmul(a, b)
    for i in 0..<n { for j in 0..<(n + 2) {
        var s: Float = 0
        for k in 0..<5 { s += a[flat: i * 5 + k] * b[flat: k * (n + 2) + j] }
        #expect(abs(c[flat: i * (n + 2) + j] - s) < 1e-4)
    } }
}

@Test func broadcastingFollowsNumPy() {
    let a = Tensor(shape: [2, 1, 3], [1, 2, 3, 4, 5, 6])
    let b = Tensor(shape: [2, 1], [10, 20])
    let c = a + b
    #expect(c.shape == [2, 2, 3])
    #expect(c.array == [11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26])
    let expected: [Float] = [81, 141]
    #expect(c.sumToShape([2, 1]).array == expected)
}

@Test func softmaxRowsSumToOneAndHandleMaskedRows() {
    let x = Tensor(shape: [2, 3], [1, 2, 3, -Float.greatestFiniteMagnitude, 0, -Float.greatestFiniteMagnitude])
    let y = SoftmaxKernel.forward(x)
    #expect(abs(y.array[0..<3].reduce(0, +) - 1) < 1e-6)
    #expect(y.array[3...] == [0, 1, 0])
}

@Test func copyOnWriteKeepsValueSemantics() {
    let a = Tensor(shape: [3], [1, 2, 3])
    var b = a
    b[flat: 0] = 9
    #expect(a.array == [1, 2, 3])
    #expect(b.array == [9, 2, 3])
}

@Test func crossEntropyMatchesDefinitionAndIgnoresRows() {
    let logits = Tensor(shape: [3, 2], [1, 2, 0, 0, 5, -5])
    let (loss, _, kept) = LossKernel.crossEntropy(logits: logits, labels: [1, -100, 0])
    let expected = (Foundation.log(1 + Foundation.exp(-1.0)) + Foundation.log(1 + Foundation.exp(-10.0))) / 2
    #expect(kept == 2)
    #expect(abs(Double(loss) - expected) < 1e-6)
    #expect(LossKernel.crossEntropy(logits: logits, labels: [-100, -100, -100]).loss.isNaN)
}

@Test(arguments: [0, 1, 7, 65, 1000]) func reductionsMatchScalarLoops(n: Int) {
    var g = SeededGenerator(seed: UInt64(n))
    let x = Tensor.randomNormal([max(n, 1)], using: &g)
    let p = x.storage.pointer
    var s: Double = 0, d: Double = 0, m = -Float.infinity
    for i in 0..<n { s += Double(p[i]); d += Double(p[i] * p[i]); m = max(m, p[i]) }
    #expect(abs(Double(Reduce.sum(p, n)) - s) < 1e-4)
    #expect(abs(Double(Reduce.dot(p, p, n)) - d) < 1e-3)
    #expect(Reduce.max(p, n) == m)
    var withNaN = x
    if n > 0 { withNaN[flat: n - 1] = .nan; #expect(Reduce.max(withNaN.storage.pointer, n).isNaN) }
}

/// Convolutions split over the images of a batch (each thread its own buffers) agree with image-by-image ones.
@Test(arguments: [(3, 1, 1), (7, 3, 1), (1, 0, 1), (3, 1, 2), (5, 0, 1)])
func convolutionSplitOverImagesMatchesPerImage(kernel: Int, padding: Int, stride: Int) {
    var g = SeededGenerator(seed: 77)
    let batch = 4 * max(2, Parallel.threadCount) + 1
    let x = Tensor.randomNormal([batch, 3, 9, 10], std: 1, using: &g)
    let w = Tensor.randomNormal([5, 3, kernel, kernel], std: 0.3, using: &g)
    let b = Tensor.randomNormal([5], std: 1, using: &g)
    let saved = Parallel.threadCount
    if saved < 2 { Parallel.threadCount = 2 }
    defer { Parallel.threadCount = saved }
    let y = ConvKernel.conv2dForward(x, weight: w, bias: b, stride: stride, padding: padding)
    let gy = Tensor.randomNormal(y.shape, std: 1, using: &g)
    let (dx, dw, db) = ConvKernel.conv2dBackward(x, weight: w, hasBias: true, stride: stride, padding: padding, gradOutput: gy)
    var dwSum = Tensor.zeros(w.shape), dbSum = Tensor.zeros([5])
    for i in 0..<batch {
        let xi = ShapeKernel.slice(x, axis: 0, start: i, end: i + 1), gi = ShapeKernel.slice(gy, axis: 0, start: i, end: i + 1)
        let yi = ConvKernel.conv2dForward(xi, weight: w, bias: b, stride: stride, padding: padding)
        #expect(closenessReport(yi, ShapeKernel.slice(y, axis: 0, start: i, end: i + 1), atol: 1e-5, rtol: 1e-5) == nil)
        let (dxi, dwi, dbi) = ConvKernel.conv2dBackward(xi, weight: w, hasBias: true, stride: stride, padding: padding, gradOutput: gi)
        #expect(closenessReport(dxi, ShapeKernel.slice(dx, axis: 0, start: i, end: i + 1), atol: 1e-5, rtol: 1e-5) == nil)
        dwSum = dwSum + dwi; dbSum = dbSum + dbi!
    }
    #expect(closenessReport(dwSum, dw, atol: 1e-4, rtol: 1e-4) == nil)
    #expect(closenessReport(dbSum, db!, atol: 1e-4, rtol: 1e-4) == nil)
    // The same numbers on every run.
    let again = ConvKernel.conv2dBackward(x, weight: w, hasBias: true, stride: stride, padding: padding, gradOutput: gy)
    #expect(again.dWeight.array == dw.array && again.dx.array == dx.array)
}

/// The fused inference attention kernel on every instruction set this CPU has (so an AVX-512 machine also checks
/// the AVX2 and baseline compilations), against a double-precision loop: odd sequence lengths (tile tails in rows
/// and key columns), head sizes that are not a multiple of the vector width, and padded keys under Hugging Face's
/// additive mask (finfo(float32).min).
@Test(arguments: [(1, 1, 1, 64), (2, 7, 2, 64), (1, 77, 12, 64), (1, 197, 2, 64), (2, 13, 3, 24), (1, 5, 1, 5), (3, 65, 4, 16)])
func fusedAttentionMatchesReferenceOnEveryLevel(b: Int, t: Int, heads: Int, d: Int) {
    var g = SeededGenerator(seed: UInt64(t * 31 + d))
    let h = heads * d
    let qkv = Tensor.randomNormal([b, t, 3 * h], using: &g)
    var maskValues = [Float](repeating: 0, count: b * t)
    for bi in 0..<b { for j in 0..<t where bi % 2 == 1 && j >= (t + 1) / 2 { maskValues[bi * t + j] = -Float.greatestFiniteMagnitude } }
    let mask = Tensor(shape: [b, t], maskValues)
    let scale = 1 / Double(d).squareRoot()
    var reference = [Double](repeating: 0, count: b * t * h)
    for bi in 0..<b { for hi in 0..<heads { for i in 0..<t {
        func at(_ row: Int, _ part: Int, _ c: Int) -> Double { Double(qkv[flat: (bi * t + row) * 3 * h + part * h + hi * d + c]) }
        var s = [Double](repeating: 0, count: t)
        for j in 0..<t {
            var dot = 0.0
            for c in 0..<d { dot += at(i, 0, c) * at(j, 1, c) }
            s[j] = dot * scale + Double(maskValues[bi * t + j])
        }
        let m = s.max()!
        let e = s.map { Foundation.exp($0 - m) }, sum = e.reduce(0, +)
        for c in 0..<d {
            var o = 0.0
            for j in 0..<t { o += e[j] / sum * at(j, 2, c) }
            reference[(bi * t + i) * h + hi * d + c] = o
        }
    } } }
    for level in VectorMath.Level.allCases where VectorMath.supports(level) {
        for m in [nil, mask] {
            let out = AttentionKernel.inference(qkv: qkv, heads: heads, mask: m, level: level)
            #expect(out.shape == [b, t, h])
            if m == nil && b > 1 { continue }   // the reference is masked; unmasked batches checked below
            var worst = 0.0
            for i in 0..<(b * t * h) where m != nil || maskValues[i / h] == 0 {
                worst = max(worst, abs(Double(out[flat: i]) - reference[i]))
            }
            #expect(worst < 2e-5, "level \(level), mask \(m != nil): max error \(worst)")
        }
    }
}

/// Inference attention and the training forward (BLAS products, probabilities kept) agree.
@Test func fusedAttentionAgreesWithTrainingForward() {
    var g = SeededGenerator(seed: 9)
    let (b, t, heads, d) = (2, 33, 4, 16), h = 64
    let q = Tensor.randomNormal([b, t, h], using: &g), k = Tensor.randomNormal([b, t, h], using: &g)
    let v = Tensor.randomNormal([b, t, h], using: &g)
    var qkvValues = [Float](repeating: 0, count: b * t * 3 * h)
    for row in 0..<(b * t) { for c in 0..<h {
        qkvValues[row * 3 * h + c] = q[flat: row * h + c]
        qkvValues[row * 3 * h + h + c] = k[flat: row * h + c]
        qkvValues[row * 3 * h + 2 * h + c] = v[flat: row * h + c]
    } }
    let mask = Tensor(shape: [b, t], (0..<(b * t)).map { $0 % t > 29 ? -Float.greatestFiniteMagnitude : 0 })
    let (trained, _) = AttentionKernel.forward(q: q, k: k, v: v, heads: heads, mask: mask)
    let fused = AttentionKernel.inference(qkv: Tensor(shape: [b, t, 3 * h], qkvValues), heads: heads, mask: mask)
    var worst: Float = 0
    for i in 0..<(b * t * h) { worst = max(worst, abs(trained[flat: i] - fused[flat: i])) }
    #expect(worst < 1e-5, "max difference \(worst) (d = \(d))")
}

/// Every compilation of the float row kernels (AVX-512, AVX2+FMA, baseline) that this CPU can run, against libm
/// and scalar loops, at lengths with vector tails: the dispatcher picks one, the others must be right as well for
/// the machines that pick them.
@Test(arguments: [1, 7, 16, 65, 1000]) func rowKernelsMatchReferencesOnEveryLevel(n: Int) {
    var g = SeededGenerator(seed: UInt64(n) + 100)
    let x = (Tensor.randomNormal([n], using: &g) * 4).array, w = Tensor.randomNormal([n], using: &g).array
    for level in VectorMath.Level.allCases where VectorMath.supports(level) {
        let l = Int32(level.rawValue)
        var y = [Float](repeating: 0, count: n), worst: Double = 0
        flava_exp_at(l, x, &y, n)
        for i in 0..<n { worst = max(worst, abs(Double(y[i]) - Foundation.exp(Double(x[i]))) / Foundation.exp(Double(x[i]))) }
        #expect(worst < 1e-6, "\(level) exp: \(worst)")
        flava_gelu_at(l, x, &y, n)
        worst = 0
        for i in 0..<n { worst = max(worst, abs(Double(y[i]) - 0.5 * Double(x[i]) * (1 + Foundation.erf(Double(x[i]) / 2.0.squareRoot())))) }
        #expect(worst < 1e-5, "\(level) gelu: \(worst)")
        flava_gelu_backward_at(l, x, w, &y, n)
        worst = 0
        for i in 0..<n {
            let v = Double(x[i]), cdf = 0.5 * (1 + Foundation.erf(v / 2.0.squareRoot())), pdf = Foundation.exp(-v * v / 2) / (2 * Double.pi).squareRoot()
            worst = max(worst, abs(Double(y[i]) - (cdf + v * pdf) * Double(w[i])))
        }
        #expect(worst < 1e-5, "\(level) gelu backward: \(worst)")
        flava_tanh_at(l, x, &y, n)
        worst = 0
        for i in 0..<n { worst = max(worst, abs(Double(y[i]) - Foundation.tanh(Double(x[i])))) }
        #expect(worst < 1e-6, "\(level) tanh: \(worst)")
        var s = 0.0, d = 0.0
        for i in 0..<n { s += Double(x[i]); d += Double(x[i]) * Double(w[i]) }
        #expect(abs(Double(flava_sum_at(l, x, n)) - s) < 1e-3, "\(level) sum")
        #expect(abs(Double(flava_dot_at(l, x, w, n)) - d) < 1e-3, "\(level) dot")
        #expect(flava_max_at(l, x, n) == x.max()!, "\(level) max")
        var e = x
        let m = x.max()!
        let total = flava_exp_shift_sum_at(l, &e, n, m)
        var ref = 0.0
        for i in 0..<n { ref += Foundation.exp(Double(x[i] - m)) }
        #expect(abs(Double(total) - ref) / ref < 1e-5, "\(level) exp shift sum")
    }
}
