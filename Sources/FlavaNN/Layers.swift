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

    /// The int8 form (`Module.prepareForInference(.int8)`), used by forward passes without gradients
    /// (inference); training and anything that records the graph still use the float weights.
    public var int8: Int8Linear?
    /// True once `prepareForInference(_:releasingFloatWeights: true)` freed the float weights: the layer then
    /// only runs through its inference form (int8 here, or a fused product of its owner).
    public internal(set) var floatWeightsReleased = false

    /// x [..., in] → [..., out].
    public func callAsFunction(_ x: Variable) -> Variable {
        if let q = inferenceForm() { return Variable(q(x.value)) }
        return linear(x, weight: weight, bias: bias)
    }

    /// gelu(self(x)); quantized, the GELU runs in the int8 product's epilogue.
    public func gelu(_ x: Variable) -> Variable {
        if let q = inferenceForm() { return Variable(q(x.value, gelu: true)) }
        return FlavaAutograd.gelu(linear(x, weight: weight, bias: bias))
    }

    func inferenceForm() -> Int8Linear? {
        if let q = int8, !GradMode.isEnabled || floatWeightsReleased {
            precondition(!GradMode.isEnabled, "Linear: this model is inference-only (its float weights were released); run it under withNoGrad")
            return q
        }
        precondition(!floatWeightsReleased, "Linear: float weights were released and there is no int8 form for this layer")
        return nil
    }
}

/// The arithmetic of inference: float32 as trained, or dynamic int8 (every Linear's weights symmetric int8 per
/// output channel, activations per row on the fly, int32 sums; attention products, softmax, LayerNorm and the
/// convolutions stay float32).
public enum InferencePrecision: String, CaseIterable, Sendable {
    case fp32, int8
}

/// Linear layers that read the same input, concatenated along their outputs into one product for inference
/// (weight [out₁ + out₂ + …, in]): float32, or int8 per output channel (the same numbers as quantizing each
/// layer alone). Built from the layers' weights at that moment; a layer without bias contributes zeros.
public final class FusedLinear: @unchecked Sendable {
    public let outFeatures: Int
    public let precision: InferencePrecision
    let weight: Tensor?, bias: Tensor?, int8: Int8Linear?

    public init(_ layers: [Linear], precision: InferencePrecision) {
        precondition(!layers.isEmpty && Set(layers.map { $0.weight.shape[1] }).count == 1, "FusedLinear: layers must share their input size")
        let w = ShapeKernel.concat(layers.map { $0.weight.value }, axis: 0)
        let b = layers.contains { $0.bias != nil }
            ? ShapeKernel.concat(layers.map { $0.bias?.value ?? Tensor.zeros([$0.weight.shape[0]]) }, axis: 0) : nil
        outFeatures = w.shape[0]
        self.precision = precision
        if precision == .int8 { int8 = Int8Linear(weight: w, bias: b); weight = nil; bias = nil } else { int8 = nil; weight = w; bias = b }
    }

    /// x [..., in] → [..., Σ out].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        if let int8 { return int8(x) }
        return LinearKernel.forward(x, weight: weight!, bias: bias)
    }

    /// Bytes held by the fused weights.
    public var bytes: Int { int8?.bytes ?? (weight!.count + (bias?.count ?? 0)) * 4 }
}

/// A module that replaces some of its Linear children with a fused inference form (FlavaSelfAttention's
/// query/key/value). `fuseForInference` builds it and returns the Linears it covers; `dropFusedForms` drops it.
public protocol InferenceFusing: AnyObject {
    func fuseForInference(_ precision: InferencePrecision) -> [Linear]
    func dropFusedForms()
}

extension Module {
    /// Prepares this tree for inference at `precision` from its current weights: modules that fuse layers
    /// (`InferenceFusing`: the attention's one query/key/value product) build their fused form, and every other
    /// Linear gets its int8 form when `precision` is int8 (fp32: none). The forms are used only by passes
    /// without gradients, so training is untouched; after the weights change, call it again (or
    /// `releaseInferenceForms()`). `releasingFloatWeights`: frees the float weights the inference forms
    /// replace (the memory of an int8 model is then about a quarter of its Linears'), leaving an inference-only
    /// model that cannot be trained or saved. Returns how many Linears run through an inference form.
    @discardableResult
    public func prepareForInference(_ precision: InferencePrecision, releasingFloatWeights: Bool = false) -> Int {
        precondition(!isInferenceOnly, "prepareForInference: this model's float weights were released; load it again")
        releaseInferenceForms()
        var covered = Set<ObjectIdentifier>()
        for (_, m) in namedModules() {
            guard let f = m as? InferenceFusing else { continue }
            for l in f.fuseForInference(precision) { covered.insert(ObjectIdentifier(l)) }
        }
        var replaced: [Linear] = []
        for (_, m) in namedModules() {
            guard let l = m as? Linear else { continue }
            if covered.contains(ObjectIdentifier(l)) { replaced.append(l) } else if precision == .int8 {
                l.int8 = Int8Linear(weight: l.weight.value, bias: l.bias?.value)
                replaced.append(l)
            }
        }
        if releasingFloatWeights {
            // A weight shared with another module (tied) stays.
            var uses: [ObjectIdentifier: Int] = [:]
            for (_, p) in namedParameters() { uses[ObjectIdentifier(p), default: 0] += 1 }
            for l in replaced where uses[ObjectIdentifier(l.weight)] == 1 {
                l.weight.value = Tensor.zeros([0, l.weight.shape[1]])
                l.floatWeightsReleased = true
            }
        }
        return replaced.count
    }

    /// Drops every inference form (int8 and fused); passes without gradients use the float weights again.
    /// A model whose float weights were released keeps its forms (it has nothing else to run on).
    public func releaseInferenceForms() {
        if isInferenceOnly { return }
        for (_, m) in namedModules() {
            (m as? InferenceFusing)?.dropFusedForms()
            (m as? Linear)?.int8 = nil
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

    /// [B, C, H, W] → [B, O, Ho, Wo].
    public func callAsFunction(_ x: Variable) -> Variable {
        conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
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
