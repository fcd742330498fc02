// Mirrors FlavaImageEmbeddings and PatchEmbeddings (modeling_flava.py): patchify by a strided convolution,
// replace masked patches by the mask token, prepend [CLS], add (optionally interpolated) position embeddings.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN

/// PatchEmbeddings: Conv2d(C, H, kernel = stride = patch) flattened to [B, patches, H] row-major.
public final class PatchEmbeddings: Module {
    @Child("projection") public var projection: Conv2d
    public let patchSize: Int

    public init(_ c: FlavaImageConfig, init ini: inout Initializer) {
        patchSize = c.patchSize
        super.init()
        projection = Conv2d(c.numChannels, c.hiddenSize, kernelSize: c.patchSize, stride: c.patchSize, init: &ini)
    }

    /// pixels [B, C, H, W] → [B, (H/p)·(W/p), hidden].
    /// (`projection(pixels).flatten(2).transpose(1, 2)`; for inference one product over the patches' rows.)
    public func callAsFunction(_ pixels: Variable) -> Variable {
        projection.positionRows(pixels)                                                 // [B, N, hidden]
    }
}

/// FlavaImageEmbeddings.
public final class FlavaImageEmbeddings: Module {
    @Param("cls_token") public var clsToken: Variable
    @OptionalParam("mask_token") public var maskToken: Variable?
    @Child("patch_embeddings") public var patchEmbeddings: PatchEmbeddings
    @Param("position_embeddings") public var positionEmbeddings: Variable
    public let config: FlavaImageConfig

    public init(_ c: FlavaImageConfig, init ini: inout Initializer) {
        config = c
        super.init()
        clsToken = Variable(Tensor.zeros([1, 1, c.hiddenSize]), requiresGrad: true)
        if c.maskToken { maskToken = Variable(Tensor.zeros([1, 1, c.hiddenSize]), requiresGrad: true) }
        patchEmbeddings = PatchEmbeddings(c, init: &ini)
        let n = c.patchesPerSide * c.patchesPerSide
        positionEmbeddings = Variable(Tensor.zeros([1, n + 1, c.hiddenSize]), requiresGrad: true)
    }

    /// pixels [B, C, H, W]; `boolMaskedPos` [B, N] of 0/1 → [B, 1 + N, hidden]. Sizes other than the
    /// configured one need `interpolatePositions` (bicubic, as HF `interpolate_pos_encoding`).
    public func callAsFunction(_ pixels: Variable, boolMaskedPos: IntTensor? = nil,
                               interpolatePositions: Bool = false) -> Variable {
        let b = pixels.shape[0], height = pixels.shape[2], width = pixels.shape[3]
        var emb = patchEmbeddings(pixels)                                               // [B, N, H]
        let n = emb.shape[1], hidden = emb.shape[2]
        if let m = boolMaskedPos {
            precondition(m.count == b * n, "bool_masked_pos has \(m.count) entries for \(b)×\(n) patches")
            guard let token = maskToken else { preconditionFailure("this image model has no mask token (mask_token = false)") }
            let w = Tensor(shape: [b, n, 1], m.values.map { $0 != 0 ? 1 : 0 })
            let keep = Variable(w.map { 1 - $0 })
            emb = emb * keep + token * Variable(w)                                      // [B, N, H]
        }
        let withCls = concat([expandBatch(clsToken, to: b), emb], axis: 1)              // [B, 1 + N, H]
        let pos: Variable
        if interpolatePositions {
            pos = interpolatedPositions(height: height, width: width)                   // [1, 1 + N, H]
        } else {
            precondition(height == config.imageSize && width == config.imageSize,
                         "input image size (\(height)×\(width)) doesn't match model (\(config.imageSize)×\(config.imageSize))")
            pos = positionEmbeddings
        }
        precondition(pos.shape[1] == n + 1 && pos.shape[2] == hidden, "position table \(pos.shape) for \(n) patches")
        return withCls + pos                                                            // [B, 1 + N, H]
    }

    /// The position table for an image of height×width: unchanged at the trained grid, otherwise the patch rows
    /// resized bicubically (PyTorch `F.interpolate(mode="bicubic", align_corners=False)`) as current HF does.
    public func interpolatedPositions(height: Int, width: Int) -> Variable {
        let p = patchEmbeddings.patchSize
        let (gh, gw) = (height / p, width / p)
        let n0 = positionEmbeddings.shape[1] - 1
        let side = Int(Double(n0).squareRoot().rounded())
        precondition(side * side == n0, "position table of \(n0) patches is not square")
        if gh * gw == n0 && gh == gw { return positionEmbeddings }
        let hidden = positionEmbeddings.shape[2]
        let cls = positionEmbeddings.sliced(axis: 1, 0..<1)                              // [1, 1, H]
        let grid = positionEmbeddings.sliced(axis: 1, 1..<(n0 + 1)).reshaped([side, side * hidden])  // [s, s·H]
        let ah = Variable(bicubicMatrix(from: side, to: gh)), aw = Variable(bicubicMatrix(from: side, to: gw))
        let rows = matmul(ah, grid).reshaped([gh, side, hidden])                        // [gh, s, H]
        let cols = rows.permuted([1, 0, 2]).reshaped([side, gh * hidden])               // [s, gh·H]
        let both = matmul(aw, cols).reshaped([gw, gh, hidden]).permuted([1, 0, 2])      // [gh, gw, H]
        return concat([cls, both.reshaped([1, gh * gw, hidden])], axis: 1)              // [1, 1 + gh·gw, H]
    }
}

/// The [out, in] matrix of PyTorch's 1-D bicubic resampling (A = −0.75, align_corners = False, indices
/// clamped at the borders): resized = M · original.
public func bicubicMatrix(from n: Int, to m: Int) -> Tensor {
    let a = -0.75
    func c1(_ x: Double) -> Double { ((a + 2) * x - (a + 3)) * x * x + 1 }
    func c2(_ x: Double) -> Double { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
    var w = [Float](repeating: 0, count: m * n)
    let scale = Double(n) / Double(m)
    for i in 0..<m {
        let src = scale * (Double(i) + 0.5) - 0.5
        let f = floor(src), t = src - f
        let coeffs = [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]
        for k in 0..<4 {
            let j = min(max(Int(f) - 1 + k, 0), n - 1)
            w[i * n + j] += Float(coeffs[k])
        }
    }
    return Tensor(shape: [m, n], w)
}
