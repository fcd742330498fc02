import CFlavaKernels

// Pointwise activations, forward and backward side by side: exact-erf GELU, tanh, ReLU.

/// Activation kernels; each backward takes the forward's input (or output) and the upstream gradient.
public enum Activation {
    /// GELU(x) = x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (PyTorch's default, exact form).
    public static func gelu(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape)
        let src = x.storage.pointer, dst = out.storage.pointer
        Parallel.forRanges(x.count, costPerItem: 8) { r in
            flava_gelu(src + r.lowerBound, dst + r.lowerBound, r.count)
        }
        return out
    }

    /// dGELU/dx · g = (Φ(x) + x·φ(x)) · g.
    public static func geluBackward(input x: Tensor, gradOutput g: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape)
        let xs = x.storage.pointer, gs = g.storage.pointer, dst = out.storage.pointer
        Parallel.forRanges(x.count, costPerItem: 8) { r in
            flava_gelu_backward(xs + r.lowerBound, gs + r.lowerBound, dst + r.lowerBound, r.count)
        }
        return out
    }

    /// tanh(x).
    public static func tanh(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape)
        let src = x.storage.pointer, dst = out.storage.pointer
        Parallel.forRanges(x.count, costPerItem: 8) { r in
            flava_tanh(src + r.lowerBound, dst + r.lowerBound, r.count)
        }
        return out
    }

    /// (1 − y²)·g, from the forward output y = tanh(x).
    public static func tanhBackward(output y: Tensor, gradOutput g: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: y.shape)
        let ys = y.storage.pointer, gs = g.storage.pointer, dst = out.storage.pointer
        Parallel.forRanges(y.count) { r in for i in r { dst[i] = (1 - ys[i] * ys[i]) * gs[i] } }
        return out
    }

    /// max(x, 0).
    public static func relu(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape)
        let src = x.storage.pointer, dst = out.storage.pointer
        Parallel.forRanges(x.count) { r in for i in r { dst[i] = src[i] > 0 ? src[i] : 0 } }
        return out
    }

    /// g where x > 0, else 0.
    public static func reluBackward(input x: Tensor, gradOutput g: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape)
        let xs = x.storage.pointer, gs = g.storage.pointer, dst = out.storage.pointer
        Parallel.forRanges(x.count) { r in for i in r { dst[i] = xs[i] > 0 ? gs[i] : 0 } }
        return out
    }

    /// e^x elementwise.
    public static func exp(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape)
        let src = x.storage.pointer, dst = out.storage.pointer
        Parallel.forRanges(x.count, costPerItem: 4) { r in
            flava_exp(src + r.lowerBound, dst + r.lowerBound, r.count)
        }
        return out
    }
}
