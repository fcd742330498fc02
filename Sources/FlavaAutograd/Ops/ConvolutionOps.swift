// Conv2d and 2×2 max pooling.
import FlavaTensor

/// nn.Conv2d: x [B, C, H, W], weight [O, C, kh, kw], bias [O] → [B, O, Ho, Wo].
public func conv2d(_ x: Variable, weight: Variable, bias: Variable?, stride: Int = 1, padding: Int = 0) -> Variable {
    let xv = x.value, wv = weight.value
    let y = ConvKernel.conv2dForward(xv, weight: wv, bias: bias?.value, stride: stride, padding: padding)
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    return Variable.record("conv2d", y, inputs: inputs) { g in
        let (dx, dw, db) = ConvKernel.conv2dBackward(xv, weight: wv, hasBias: bias != nil, stride: stride,
                                                     padding: padding, gradOutput: g)
        return bias == nil ? [dx, dw] : [dx, dw, db]
    }
}

/// nn.MaxPool2d(2): [B, C, H, W] → [B, C, H/2, W/2].
public func maxPool2x2(_ x: Variable) -> Variable {
    let (y, idx) = ConvKernel.maxPool2x2(x.value)
    let shape = x.shape
    return Variable.record("maxPool2x2", y, inputs: [x]) { g in
        [ConvKernel.maxPool2x2Backward(inputShape: shape, indices: idx, gradOutput: g)]
    }
}

/// Nearest-neighbour 2× upsampling (nn.Upsample(scale_factor=2, mode="nearest")): [B, C, H, W] → [B, C, 2H, 2W].
public func upsampleNearest2x(_ x: Variable) -> Variable {
    let s = x.shape
    precondition(s.count == 4, "upsample wants [B, C, H, W], got \(s)")
    let (planes, h, w) = (s[0] * s[1], s[2], s[3])
    let y = Tensor(uninitializedShape: [s[0], s[1], 2 * h, 2 * w])
    let xp = x.value.storage.pointer, yp = y.storage.pointer
    Parallel.forRanges(planes, costPerItem: 4 * h * w) { r in
        for p in r {
            let src = xp + p * h * w, dst = yp + p * 4 * h * w
            for i in 0..<h { for j in 0..<w {
                let v = src[i * w + j]
                dst[(2 * i) * 2 * w + 2 * j] = v; dst[(2 * i) * 2 * w + 2 * j + 1] = v
                dst[(2 * i + 1) * 2 * w + 2 * j] = v; dst[(2 * i + 1) * 2 * w + 2 * j + 1] = v
            } }
        }
    }
    return Variable.record("upsampleNearest2x", y, inputs: [x]) { g in
        let dx = Tensor(uninitializedShape: s)
        let gp = g.storage.pointer, dp = dx.storage.pointer
        Parallel.forRanges(planes, costPerItem: 4 * h * w) { r in
            for p in r {
                let src = gp + p * 4 * h * w, dst = dp + p * h * w
                for i in 0..<h { for j in 0..<w {
                    dst[i * w + j] = src[(2 * i) * 2 * w + 2 * j] + src[(2 * i) * 2 * w + 2 * j + 1]
                        + src[(2 * i + 1) * 2 * w + 2 * j] + src[(2 * i + 1) * 2 * w + 2 * j + 1]
                } }
            }
        }
        return [dx]
    }
}
