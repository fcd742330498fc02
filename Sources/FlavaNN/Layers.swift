// The basic layers, with torch.nn's parameter names: Linear, LayerNorm, Embedding, Conv2d.
import FlavaTensor
import FlavaAutograd

/// nn.Linear: y = x·Wᵀ + b, W [out, in].
public final class Linear: Module {
    @Param("weight") public var weight: Variable
    @OptionalParam("bias") public var bias: Variable?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, init ini: inout Initializer) {
        super.init()
        weight = Variable(ini.normal([outFeatures, inFeatures]), requiresGrad: true)
        if bias { self.bias = Variable(Tensor.zeros([outFeatures]), requiresGrad: true) }
    }

    /// The inference form (`Module.prepareForInference`): int8, or float32 on packed weights; used by forward
    /// passes without gradients (inference). Training and anything that records the graph use the float weights.
    public var inference: LinearInference?
    /// True once `prepareForInference(_:releasingFloatWeights: true)` freed the float weights: the layer then
    /// only runs through its inference form (its own, or a fused product of its owner).
    public internal(set) var floatWeightsReleased = false

    /// x [..., in] → [..., out].
    public func callAsFunction(_ x: Variable) -> Variable {
        if let f = inferenceForm() { return Variable(f(x.value)) }
        return linear(x, weight: weight, bias: bias)
    }

    /// gelu(self(x)); in an inference form the GELU runs in the product's epilogue.
    public func gelu(_ x: Variable) -> Variable {
        if let f = inferenceForm() { return Variable(f(x.value, gelu: true)) }
        return FlavaAutograd.gelu(linear(x, weight: weight, bias: bias))
    }

    func inferenceForm() -> LinearInference? {
        if let f = inference, !GradMode.isEnabled || floatWeightsReleased {
            precondition(!GradMode.isEnabled, "Linear: this model is inference-only (its float weights were released); run it under withNoGrad")
            return f
        }
        precondition(!floatWeightsReleased, "Linear: float weights were released and there is no inference form for this layer")
        return nil
    }
}

/// The arithmetic of inference: float32 as trained, or dynamic int8 (every Linear's weights symmetric int8 per
/// output channel, activations per row on the fly, int32 sums; attention products, softmax, LayerNorm and the
/// convolutions stay float32).
public enum InferencePrecision: String, CaseIterable, Sendable {
    case fp32, int8
}

/// A Linear product prepared for inference from weights [out, in] and bias: int8 (`Int8Linear`), or float32
/// on weights packed once (`PackedLinear`, where the CPU has AVX2 or AVX-512), or float32 through OpenBLAS on
/// the weights as they are (elsewhere). A class around the choice, not the enum stored in Linear itself: with the
/// enum as a stored property the training tests aborted with heap corruption (Swift 6.3.1; Module reflects its
/// stored properties with Mirror, the likely party, not pinned down); with a class reference they pass.
public final class LinearInference: @unchecked Sendable {
    public enum Kind {
        case int8(Int8Linear)
        case packed(PackedLinear)
        case float(weight: Tensor, bias: Tensor?)
    }
    public let kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    /// The form for `precision` on this CPU.
    public convenience init(weight: Tensor, bias: Tensor?, precision: InferencePrecision) {
        switch precision {
        case .int8: self.init(.int8(Int8Linear(weight: weight, bias: bias)))
        case .fp32: self.init(PackedLinear.preferred ? .packed(PackedLinear(weight: weight, bias: bias)) : .float(weight: weight, bias: bias))
        }
    }

    /// x [..., in] → [..., out], then GELU when `gelu`.
    public func callAsFunction(_ x: Tensor, gelu: Bool = false) -> Tensor {
        switch kind {
        case .int8(let q): return q(x, gelu: gelu)
        case .packed(let p): return p(x, gelu: gelu)
        case .float(let w, let b):
            let y = LinearKernel.forward(x, weight: w, bias: b)
            return gelu ? Activation.gelu(y) : y
        }
    }

    /// Bytes held.
    public var bytes: Int {
        switch kind {
        case .int8(let q): return q.bytes
        case .packed(let p): return p.bytes
        case .float(let w, let b): return (w.count + (b?.count ?? 0)) * 4
        }
    }
}

/// Linear layers that read the same input, concatenated along their outputs into one product for inference
/// (weight [out₁ + out₂ + …, in]): a `LinearInference` at the precision asked (int8 per output channel gives the
/// same numbers as quantizing each layer alone). Built from the layers' weights at that moment; a layer without
/// bias contributes zeros.
public final class FusedLinear: @unchecked Sendable {
    public let outFeatures: Int
    public let precision: InferencePrecision
    public let form: LinearInference

    public init(_ layers: [Linear], precision: InferencePrecision) {
        precondition(!layers.isEmpty && Set(layers.map { $0.weight.shape[1] }).count == 1, "FusedLinear: layers must share their input size")
        let w = ShapeKernel.concat(layers.map { $0.weight.value }, axis: 0)
        let b = layers.contains { $0.bias != nil }
            ? ShapeKernel.concat(layers.map { $0.bias?.value ?? Tensor.zeros([$0.weight.shape[0]]) }, axis: 0) : nil
        outFeatures = w.shape[0]
        self.precision = precision
        form = LinearInference(weight: w, bias: b, precision: precision)
    }

    /// x [..., in] → [..., Σ out].
    public func callAsFunction(_ x: Tensor) -> Tensor { form(x) }

    /// Bytes held by the fused weights.
    public var bytes: Int { form.bytes }
}

/// A module that replaces some of its Linear children with a fused inference form (FlavaSelfAttention's
/// query/key/value). `fuseForInference` builds it and returns the Linears it covers; `dropFusedForms` drops it.
public protocol InferenceFusing: AnyObject {
    func fuseForInference(_ precision: InferencePrecision) -> [Linear]
    func dropFusedForms()
}

extension Module {
    /// Prepares this tree for inference at `precision` from its current weights: modules that fuse layers
    /// (`InferenceFusing`: the attention's one query/key/value product) build their fused form, every other
    /// Linear gets its own (`LinearInference`: int8; float32 on packed weights where the CPU has AVX2 or
    /// AVX-512), and patchify convolutions a float32 one on packed weights (where the CPU has AVX2 or AVX-512).
    /// The forms are used only by passes without gradients, so training is untouched; after the weights change,
    /// call it again (or `releaseInferenceForms()`). The forms hold their own copy of the weights (a quarter of
    /// the Linears' float bytes at int8, as many at float32): `releasingFloatWeights` frees the float weights
    /// they replace, leaving an inference-only model that cannot be trained or saved. Returns how many Linears
    /// run through an inference form.
    @discardableResult
    public func prepareForInference(_ precision: InferencePrecision, releasingFloatWeights: Bool = false) -> Int {
        precondition(!isInferenceOnly, "prepareForInference: this model's float weights were released; load it again")
        releaseInferenceForms()
        // Weights shared with another module (tied) stay. The others are released as soon as their form is
        // built, so that the model never holds both copies at once (a form's buffer reuses the last one freed).
        var uses: [ObjectIdentifier: Int] = [:]
        if releasingFloatWeights { for (_, p) in namedParameters() { uses[ObjectIdentifier(p), default: 0] += 1 } }
        func release(_ l: Linear) {
            guard releasingFloatWeights, uses[ObjectIdentifier(l.weight)] == 1 else { return }
            l.weight.value = Tensor.zeros([0, l.weight.shape[1]])
            l.floatWeightsReleased = true
        }
        var covered = Set<ObjectIdentifier>(), replaced = 0
        for (_, m) in namedModules() {
            guard let f = m as? InferenceFusing else { continue }
            for l in f.fuseForInference(precision) { covered.insert(ObjectIdentifier(l)); release(l); replaced += 1 }
        }
        for (_, m) in namedModules() {
            if let c = m as? Conv2d, c.isPatchify {
                // Float32 at both precisions; the convolution keeps its weights (a few MiB).
                let w = c.weight.value
                let form = LinearInference(weight: w.reshaped([w.shape[0], -1]), bias: c.bias?.value, precision: .fp32)
                if case .float = form.kind { continue }   // no packed product on this CPU: the convolution as it is
                c.inference = form
                continue
            }
            guard let l = m as? Linear, !covered.contains(ObjectIdentifier(l)) else { continue }
            let form = LinearInference(weight: l.weight.value, bias: l.bias?.value, precision: precision)
            if case .float = form.kind { continue }   // the layer's own weights: nothing to replace
            l.inference = form
            release(l)
            replaced += 1
        }
        return replaced
    }

    /// Drops every inference form (int8, packed and fused); passes without gradients use the float weights
    /// again. A model whose float weights were released keeps its forms (it has nothing else to run on).
    public func releaseInferenceForms() {
        if isInferenceOnly { return }
        for (_, m) in namedModules() {
            (m as? InferenceFusing)?.dropFusedForms()
            (m as? Linear)?.inference = nil
            (m as? Conv2d)?.inference = nil
        }
    }

    /// True when `prepareForInference(_:releasingFloatWeights: true)` freed float weights: such a model cannot
    /// be trained, quantized again or saved.
    public var isInferenceOnly: Bool { namedModules().contains { ($0.1 as? Linear)?.floatWeightsReleased == true } }
}

/// nn.LayerNorm over the last dimension.
public final class LayerNorm: Module {
    @Param("weight") public var weight: Variable
    @Param("bias") public var bias: Variable
    public let eps: Float

    public init(_ dim: Int, eps: Float) {
        self.eps = eps
        super.init()
        weight = Variable(Tensor.ones([dim]), requiresGrad: true)
        bias = Variable(Tensor.zeros([dim]), requiresGrad: true)
    }

    public func callAsFunction(_ x: Variable) -> Variable { layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// nn.Embedding: a [count, dim] table; `paddingIndex`'s row starts at zero.
public final class Embedding: Module {
    @Param("weight") public var weight: Variable

    public init(_ count: Int, _ dim: Int, paddingIndex: Int? = nil, init ini: inout Initializer) {
        super.init()
        var w = ini.normal([count, dim])
        if let p = paddingIndex {
            precondition(p >= 0 && p < count, "padding index \(p) out of range")
            w.withMutableBuffer { b in for j in 0..<dim { b[p * dim + j] = 0 } }
        }
        weight = Variable(w, requiresGrad: true)
    }

    /// ids [...] → [..., dim].
    public func callAsFunction(_ ids: IntTensor) -> Variable { embedding(ids, weight: weight) }
}

/// nn.Conv2d with square kernels.
public final class Conv2d: Module {
    @Param("weight") public var weight: Variable
    @OptionalParam("bias") public var bias: Variable?
    public let stride: Int, padding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, init ini: inout Initializer) {
        self.stride = stride
        self.padding = padding
        super.init()
        weight = Variable(ini.normal([outChannels, inChannels, kernelSize, kernelSize]), requiresGrad: true)
        if bias { self.bias = Variable(Tensor.zeros([outChannels]), requiresGrad: true) }
    }

    /// The inference form of a patchify convolution (`isPatchify`: kernel = stride > 1, no padding, one Linear
    /// product over the patches): float32 on weights packed once, where the CPU has AVX2 or AVX-512; set by
    /// `prepareForInference` at either precision (convolutions stay float32), used by passes without gradients.
    public var inference: LinearInference?

    public var kernelSize: Int { weight.shape[2] }
    /// Kernel = stride > 1 and no padding: non-overlapping windows (a ViT's patch embedding).
    public var isPatchify: Bool { kernelSize == stride && stride > 1 && padding == 0 }

    /// [B, C, H, W] → [B, O, Ho, Wo].
    public func callAsFunction(_ x: Variable) -> Variable {
        if inference != nil, !GradMode.isEnabled {
            let (b, ho, wo) = (x.shape[0], x.shape[2] / stride, x.shape[3] / stride)
            return positionRows(x).permuted([0, 2, 1]).reshaped([b, -1, ho, wo])
        }
        return conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }

    /// [B, C, H, W] → [B, Ho·Wo, O]: the output positions as rows, as `self(x).flatten(2).transpose(1, 2)`; with an
    /// inference form, straight from the patches' rows without the convolution's layout in between.
    public func positionRows(_ x: Variable) -> Variable {
        if let f = inference, !GradMode.isEnabled {
            precondition(x.shape.count == 4 && x.shape[1] == weight.shape[1],
                         "conv2d: input \(x.shape) for \(weight.shape[1]) channels")
            let (b, n) = (x.shape[0], (x.shape[2] / stride) * (x.shape[3] / stride))
            return Variable(f(ConvKernel.patchRows(x.value, patch: stride)).reshaped([b, n, -1]))
        }
        let y = self(x)                                                                 // [B, O, Ho, Wo]
        return y.reshaped([y.shape[0], y.shape[1], -1]).permuted([0, 2, 1])
    }
}

/// A parameter that some configurations leave out (a Linear without bias).
@propertyWrapper
public final class OptionalParam: ModuleSlot {
    public let key: String
    public var wrappedValue: Variable?

    public init(_ key: String) { self.key = key }

    public func collectParameters(prefix: String, into out: inout [(key: String, variable: Variable)]) {
        if let v = wrappedValue { out.append((join(prefix, key), v)) }
    }
    public func collectModules(prefix: String, into out: inout [(key: String, module: Module)]) {}
    public func collectAliases(prefix: String, into out: inout [String: String]) {}
}
