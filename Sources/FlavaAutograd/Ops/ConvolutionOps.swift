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
