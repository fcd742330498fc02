// The inference form of a patchify convolution (kernel = stride, no padding: a ViT's patch embedding): the
// patches' rows times the packed weights give the convolution, in both of its layouts, on images whose sides are
// not whole patches; training (recording gradients) keeps the convolution; only patchify convolutions get a form.
import Testing
import Foundation
import FlavaKit
import TestSupport

@Test(arguments: [(2, 3, 10, 13, 4, true), (1, 3, 16, 16, 16, true), (3, 2, 9, 7, 3, false), (1, 1, 2, 2, 2, true)])
func patchifyConvolutionFormIsTheConvolution(b: Int, c: Int, h: Int, w: Int, p: Int, bias: Bool) {
    var ini = Initializer(seed: UInt64(b * 100 + h * 10 + p))
    let conv = Conv2d(c, 24, kernelSize: p, stride: p, bias: bias, init: &ini)
    if let bv = conv.bias { bv.value = Tensor.randomNormal([24], using: &ini.generator) }
    #expect(conv.isPatchify)
    let x = Variable(Tensor.randomNormal([b, c, h, w], using: &ini.generator))
    let plain = withNoGrad { conv(x).value }
    let plainRows = withNoGrad { conv.positionRows(x).value }
    #expect(plain.shape == [b, 24, h / p, w / p] && plainRows.shape == [b, (h / p) * (w / p), 24])
    let wv = conv.weight.value
    conv.inference = LinearInference(.packed(PackedLinear(weight: wv.reshaped([24, -1]), bias: conv.bias?.value)))
    let viaForm = withNoGrad { conv(x).value }, viaRows = withNoGrad { conv.positionRows(x).value }
    #expect(viaForm.shape == plain.shape && viaRows.shape == plainRows.shape)
    #expect(closenessReport(viaForm, plain, atol: 1e-5, rtol: 1e-5) == nil)
    #expect(closenessReport(viaRows, plainRows, atol: 1e-5, rtol: 1e-5) == nil)
    // Recording gradients: the convolution itself, exactly, and its weight gets a gradient.
    let recorded = conv.positionRows(x)
    #expect(recorded.value.array == plainRows.array)
    recorded.sum().backward()
    #expect(conv.weight.grad != nil)
}

@Test func onlyPatchifyConvolutionsGetAnInferenceForm() {
    final class Net: Module {
        @Child("patch") var patch: Conv2d
        @Child("same") var same: Conv2d
        @Child("point") var point: Conv2d
        @Child("head") var head: Linear
        init(_ ini: inout Initializer) {
            super.init()
            patch = Conv2d(3, 8, kernelSize: 4, stride: 4, init: &ini)
            same = Conv2d(8, 8, kernelSize: 3, padding: 1, init: &ini)
            point = Conv2d(8, 8, kernelSize: 1, init: &ini)
            head = Linear(8, 2, init: &ini)
        }
    }
    var ini = Initializer(seed: 3)
    let net = Net(&ini)
    #expect(net.patch.isPatchify && !net.same.isPatchify && !net.point.isPatchify)
    for precision in InferencePrecision.allCases {
        #expect(net.prepareForInference(precision) == (precision == .int8 || PackedLinear.preferred ? 1 : 0))
        #expect((net.patch.inference != nil) == PackedLinear.preferred)
        #expect(net.same.inference == nil && net.point.inference == nil)
        net.releaseInferenceForms()
        #expect(net.patch.inference == nil && net.head.inference == nil)
    }
}
