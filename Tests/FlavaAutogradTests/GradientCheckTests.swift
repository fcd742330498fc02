// Central-difference gradient checks for every autograd op, at odd sizes (1, 7, 65) to catch SIMD tails.
import Testing
import FlavaKit

private func rand(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var g = SeededGenerator(seed: seed)
    return Tensor.randomNormal(shape, std: scale, using: &g)
}

private func expectGrad(_ inputs: [Tensor], h: Float = 1e-2, atol: Double = 2e-3, rtol: Double = 2e-2,
                        _ f: @escaping ([Variable]) -> Variable, sourceLocation: SourceLocation = #_sourceLocation) {
    let r = GradCheck.check(inputs: inputs, h: h, atol: atol, rtol: rtol, f)
    #expect(r.passed, "\(r)", sourceLocation: sourceLocation)
}

let oddSizes = [1, 7, 65]

@Test(arguments: oddSizes) func linearGradient(n: Int) {
    expectGrad([rand([3, n], seed: 1), rand([5, n], seed: 2), rand([5], seed: 3)]) {
        linear($0[0], weight: $0[1], bias: $0[2])
    }
}

@Test(arguments: oddSizes) func matmulGradient(n: Int) {
    expectGrad([rand([n, 4], seed: 4), rand([4, 3], seed: 5)]) { matmul($0[0], $0[1]) }
    expectGrad([rand([2, n], seed: 6), rand([3, n], seed: 7)]) { matmul($0[0], $0[1], transposeB: true) }
}

@Test(arguments: oddSizes) func broadcastArithmeticGradients(n: Int) {
    let a = rand([2, 3, n], seed: 8), b = rand([n], seed: 9), c = rand([2, 1, n], seed: 10), s = rand([], seed: 11)
    expectGrad([a, b]) { $0[0] + $0[1] }
    expectGrad([a, c]) { $0[0] - $0[1] }
    expectGrad([a, c]) { $0[0] * $0[1] }
    expectGrad([a, s]) { $0[0] * $0[1] }
    expectGrad([a, a]) { $0[0] * $0[1] }
    expectGrad([a]) { ($0[0] * Float(2.5)) + Float(1) }
    expectGrad([b, b]) { $0[0] - $0[1] }
}

@Test(arguments: oddSizes) func fanOutAccumulates(n: Int) {
    // x is used three times; its gradient must be the sum of the three paths.
    expectGrad([rand([3, n], seed: 12)]) { v in
        let x = v[0]
        return x * x + tanh(x)
    }
}

@Test(arguments: oddSizes) func activationGradients(n: Int) {
    let x = rand([3, n], seed: 13, scale: 2)
    expectGrad([x]) { gelu($0[0]) }
    expectGrad([x]) { tanh($0[0]) }
    expectGrad([x.map { abs($0) > 0.05 ? $0 : 0.5 }]) { relu($0[0]) }
    expectGrad([rand([n], seed: 14)]) { exp($0[0]) }
}

@Test(arguments: oddSizes) func layerNormGradient(n: Int) {
    let d = max(n, 2)
    expectGrad([rand([4, d], seed: 15), rand([d], seed: 16), rand([d], seed: 17)], atol: 5e-3) {
        layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-12)
    }
}

@Test(arguments: oddSizes) func softmaxGradient(n: Int) {
    expectGrad([rand([3, n], seed: 18)]) { softmax($0[0]) }
}

@Test(arguments: oddSizes) func attentionGradient(n: Int) {
    let t = min(n, 9), b = 2, h = 8
    let q = rand([b, t, h], seed: 19), k = rand([b, t, h], seed: 20), v = rand([b, t, h], seed: 21)
    var maskValues = [Int](repeating: 1, count: b * t)
    if t > 1 { maskValues[b * t - 1] = 0 }
    let mask = additiveAttentionMask(IntTensor(shape: [b, t], maskValues))
    expectGrad([q, k, v]) { scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2], heads: 2, additiveMask: mask) }
}

@Test(arguments: oddSizes) func embeddingGradient(n: Int) {
    let ids = IntTensor(shape: [2, 3], [0, n - 1, 0, 1 % n, n - 1, 0])
    expectGrad([rand([n, 5], seed: 22)]) { embedding(ids, weight: $0[0]) }
}

@Test(arguments: [(1, 0, 1), (3, 1, 1), (7, 3, 1), (4, 0, 4), (3, 1, 2)])
func conv2dGradient(kernel: Int, padding: Int, stride: Int) {
    let size = kernel == 7 ? 7 : 8
    expectGrad([rand([2, 3, size, size + 1], seed: 23), rand([4, 3, kernel, kernel], seed: 24, scale: 0.3),
                rand([4], seed: 25)], atol: 5e-3) {
        conv2d($0[0], weight: $0[1], bias: $0[2], stride: stride, padding: padding)
    }
}

@Test func maxPoolGradient() {
    // Distinct values so the maximum is unique and central differences are well defined.
    var g = SeededGenerator(seed: 26)
    var vals = (0..<(2 * 3 * 6 * 6)).map { Float($0) * 0.1 }
    vals.shuffle(using: &g)
    expectGrad([Tensor(shape: [2, 3, 6, 6], vals)], h: 1e-3) { maxPool2x2($0[0]) }
}

@Test(arguments: oddSizes) func shapeOpGradients(n: Int) {
    let x = rand([2, 3, n], seed: 27)
    expectGrad([x]) { $0[0].reshaped([6, n]) }
    expectGrad([x]) { $0[0].permuted([2, 0, 1]) }
    expectGrad([x]) { $0[0].permuted([1, 0, 2]) }
    expectGrad([x]) { $0[0].sliced(axis: 2, 0..<((n + 1) / 2)) }
    expectGrad([x, rand([2, 2, n], seed: 28)]) { concat([$0[0], $0[1]], axis: 1) }
    expectGrad([rand([n, 4], seed: 29)]) { gatherRows($0[0], [n - 1, 0, n - 1]) }
    expectGrad([rand([3, 4], seed: 30)]) { scatterRows($0[0], [n - 1, 0, n - 1], rowCount: n) }
}

@Test(arguments: oddSizes) func normalizeGradient(n: Int) {
    expectGrad([rand([3, n], seed: 31).map { $0 + 0.5 }]) { l2Normalize($0[0]) }
}

@Test(arguments: oddSizes) func crossEntropyGradient(n: Int) {
    let c = max(n, 2)
    let labels = [0, -100, c - 1, 1 % c]
    expectGrad([rand([4, c], seed: 32)]) { crossEntropy($0[0], labels: labels) }
}

@Test(arguments: oddSizes) func reductionGradients(n: Int) {
    expectGrad([rand([2, n], seed: 33)]) { $0[0].sum() }
    expectGrad([rand([2, n], seed: 34)]) { $0[0].mean() }
}

@Test func noGradRecordsNothing() {
    let w = Variable(Tensor.ones([3, 3]), requiresGrad: true)
    let y = withNoGrad { linear(Variable(Tensor.ones([2, 3])), weight: w, bias: nil) }
    #expect(y.node == nil)
    #expect(!y.requiresGrad)
    let z = linear(Variable(Tensor.ones([2, 3])), weight: w, bias: nil)
    #expect(z.node != nil)
}

@Test func gradientsAccumulateAcrossBackwardCalls() {
    let w = Variable(Tensor(shape: [2], [1, 2]), requiresGrad: true)
    (w * Float(3)).sum().backward()
    (w * Float(3)).sum().backward()
    #expect(w.grad?.array == [6, 6])
}

@Test(arguments: oddSizes) func codebookTrainingOpGradients(n: Int) {
    expectGrad([rand([2, 3, min(n, 5), 4], seed: 40)]) { upsampleNearest2x($0[0]) }
    expectGrad([rand([3, n], seed: 41)]) { sigmoid($0[0]) }
    expectGrad([rand([3, n], seed: 42)]) { logSoftmax($0[0]) }
    let target = rand([2, 3], seed: 43)
    expectGrad([rand([2, 3], seed: 44)]) { mseLoss($0[0], target) }
    var g = SeededGenerator(seed: 45)
    let pixels = Tensor.randomUniform([2, 3, 2, min(n, 3)], low: 0.15, high: 0.85, using: &g)
    expectGrad([rand([2, 6, 2, min(n, 3)], seed: 46, scale: 0.5)], h: 1e-3) { logitLaplaceLoss($0[0], target: pixels) }
}

@Test(arguments: oddSizes) func bceWithLogitsGradient(n: Int) {
    var g = SeededGenerator(seed: 50)
    let targets = Tensor.randomUniform([2, n], using: &g)
    expectGrad([rand([2, n], seed: 51, scale: 2)]) { binaryCrossEntropyWithLogits($0[0], targets: targets) }
}

/// Gradient checkpointing: the block's input and the parameters it closes over (here, inputs of the check
/// used inside the block) get their gradients through the recomputation.
@Test(arguments: oddSizes) func checkpointedBlockGradient(n: Int) {
    expectGrad([rand([3, n], seed: 41), rand([5, n], seed: 42), rand([5], seed: 43)]) { v in
        let w = v[1], b = v[2]
        return checkpointed(v[0]) { x in gelu(linear(x, weight: w, bias: b)) * gelu(linear(x, weight: w, bias: b)) }
    }
    // Nested blocks and a block whose input needs no gradient (only the weights inside it do).
    let constant = Variable(rand([2, n], seed: 46))
    expectGrad([rand([2, n], seed: 44), rand([n, n], seed: 45)]) { v in
        let w = v[1]
        let inner = checkpointed(constant) { x in checkpointed(x) { y in tanh(matmul(y, w)) } }
        return inner * v[0]
    }
}

@Test(arguments: oddSizes) func softTargetCrossEntropyGradient(n: Int) {
    // Targets that are sums of distributions (weight 2 per row) and a row of zeros, as DINO builds them.
    var g = SeededGenerator(seed: 61)
    var t = [Float](repeating: 0, count: 3 * n)
    for r in 0..<2 {
        let raw = (0..<n).map { _ in g.nextUniform() + 0.01 }
        let s = raw.reduce(0, +)
        for j in 0..<n { t[r * n + j] = 2 * raw[j] / s }
    }
    let targets = Tensor(shape: [3, n], t)
    expectGrad([rand([3, n], seed: 62, scale: 2)]) { softTargetCrossEntropy($0[0], targets: targets) }
}

@Test(arguments: oddSizes) func dinoHeadGradient(n: Int) {
    // The head's computation: an MLP to the bottleneck, L2-normalized, against weight-normalized prototypes
    // W = g · v/‖v‖ (g trained: norm_last_layer false), through every input.
    let d = 5, bottleneck = 4
    expectGrad([rand([3, d], seed: 63), rand([bottleneck, d], seed: 64), rand([n, bottleneck], seed: 65), rand([n, 1], seed: 66)]) { v in
        let z = l2Normalize(linear(v[0], weight: v[1], bias: nil))
        return matmul(z, l2Normalize(v[2]) * v[3], transposeB: true)
    }
}
