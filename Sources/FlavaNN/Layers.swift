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

    /// The int8 form (`Module.quantize(to: .int8)`), used by forward passes without gradients (inference);
    /// training and anything that records the graph still use the float weights.
    public var int8: Int8Linear?

    /// x [..., in] → [..., out].
    public func callAsFunction(_ x: Variable) -> Variable {
        if let q = int8, !GradMode.isEnabled { return Variable(q(x.value)) }
        return linear(x, weight: weight, bias: bias)
    }

    /// gelu(self(x)); quantized, the GELU runs in the int8 product's epilogue.
    public func gelu(_ x: Variable) -> Variable {
        if let q = int8, !GradMode.isEnabled { return Variable(q(x.value, gelu: true)) }
        return FlavaAutograd.gelu(linear(x, weight: weight, bias: bias))
    }
}

/// The arithmetic of inference: float32 as trained, or dynamic int8 (every Linear's weights symmetric int8 per
/// output channel, activations per row on the fly, int32 sums; attention products, softmax, LayerNorm and the
/// convolutions stay float32).
public enum InferencePrecision: String, CaseIterable, Sendable {
    case fp32, int8
}

extension Module {
    /// Sets every Linear of this tree to `precision` for inference (int8: quantizes and packs its current
    /// weights; fp32: drops the int8 forms). Call it after the weights are loaded. Returns how many Linears.
    @discardableResult
    public func quantize(to precision: InferencePrecision) -> Int {
        var count = 0
        for (_, m) in namedModules() {
            guard let l = m as? Linear else { continue }
            l.int8 = precision == .int8 ? Int8Linear(weight: l.weight.value, bias: l.bias?.value) : nil
            count += 1
        }
        return count
    }
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
