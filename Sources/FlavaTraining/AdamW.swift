// AdamW with PyTorch's semantics (torch.optim.AdamW): decoupled weight decay applied to the parameter before
// the Adam step, bias-corrected moments, and parameter groups so biases and norms can skip decay.
import Foundation
import FlavaTensor
import FlavaAutograd

/// Hyper-parameters of one AdamW parameter group.
public struct AdamWHyperParameters: Codable, Sendable, Equatable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float

    /// PyTorch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                weightDecay: Float = 0.01) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.weightDecay = weightDecay
    }
}

/// A set of parameters sharing hyper-parameters.
public struct ParameterGroup {
    public var parameters: [Variable]
    public var hyper: AdamWHyperParameters
    public init(_ parameters: [Variable], _ hyper: AdamWHyperParameters) { self.parameters = parameters; self.hyper = hyper }
}

/// torch.optim.AdamW.
public final class AdamW {
    public private(set) var groups: [ParameterGroup]
    /// Per-parameter first and second moments and step counts, keyed by parameter identity.
    private var exp: [ObjectIdentifier: (m: Tensor, v: Tensor, step: Int)] = [:]
    /// Multiplies every group's learning rate (what a schedule sets each step).
    public var learningRateScale: Float = 1
    /// ZeRO stage 1: the flat element range of each parameter this rank updates and keeps moments for (a
    /// parameter not listed has none here, but its step count still advances); nil: every element of every
    /// parameter. Moments then have the range's length.
    public var shard: [ObjectIdentifier: Range<Int>]? = nil

    /// The elements of `p` this optimizer updates.
    func ownedRange(_ p: Variable) -> Range<Int> {
        guard let shard else { return 0..<p.value.count }
        return shard[ObjectIdentifier(p)] ?? 0..<0
    }

    public init(groups: [ParameterGroup]) { self.groups = groups }

    /// One group with `hyper`.
    public convenience init(_ parameters: [Variable], _ hyper: AdamWHyperParameters = .init()) {
        self.init(groups: [ParameterGroup(parameters, hyper)])
    }

    /// Two groups as the Hugging Face Trainer and FLAVA's recipe build them: weight decay on weight matrices,
    /// none on biases, LayerNorm parameters and other 0-/1-dimensional parameters (embeddings' tokens, scales).
    public convenience init(namedParameters: [(key: String, variable: Variable)], _ hyper: AdamWHyperParameters) {
        var decay: [Variable] = [], noDecay: [Variable] = []
        for (key, v) in namedParameters where v.requiresGrad {
            if AdamW.skipsDecay(key: key, shape: v.shape) { noDecay.append(v) } else { decay.append(v) }
        }
        var none = hyper
        none.weightDecay = 0
        self.init(groups: [ParameterGroup(decay, hyper), ParameterGroup(noDecay, none)])
    }

    /// Whether a parameter belongs to the no-decay group: biases, norms, and tensors of rank ≤ 1.
    public static func skipsDecay(key: String, shape: [Int]) -> Bool {
        let lower = key.lowercased()
        return shape.count <= 1 || lower.hasSuffix(".bias") || lower == "bias" || lower.contains("layernorm")
            || lower.contains("layer_norm") || lower.contains(".norm")
    }

    /// Applies one update from each parameter's `grad` (parameters without a gradient are skipped, as PyTorch).
    public func step() {
        for group in groups {
            let h = group.hyper
            let lr = h.learningRate * learningRateScale
            for p in group.parameters {
                guard let g = p.grad else { continue }
                precondition(g.shape == p.shape, "AdamW: gradient \(g.shape) for parameter \(p.shape)")
                let id = ObjectIdentifier(p)
                let range = ownedRange(p)
                var state = exp[id] ?? (shard == nil ? (Tensor.zeros(p.shape), Tensor.zeros(p.shape), 0)
                                                     : (Tensor.zeros([range.count]), Tensor.zeros([range.count]), 0))
                state.step += 1
                // Bias corrections in double precision, as PyTorch computes them in Python floats.
                let t = Double(state.step)
                let bc1 = 1 - Foundation.pow(Double(h.beta1), t)
                let bc2 = 1 - Foundation.pow(Double(h.beta2), t)
                let stepSize = Float(Double(lr) / bc1)
                let bc2Sqrt = Float(bc2.squareRoot())
                let decay = 1 - lr * h.weightDecay
                let (b1, b2, eps) = (h.beta1, h.beta2, h.eps)
                let gp = g.storage.pointer + range.lowerBound
                let n = range.count
                if n == 0 { exp[id] = state; continue }
                state.m.withMutableBuffer { mb in
                    state.v.withMutableBuffer { vb in
                        p.value.withMutableBuffer { pb in
                            let (mp, vp, pp) = (mb.baseAddress!, vb.baseAddress!, pb.baseAddress! + range.lowerBound)
                            Parallel.forRanges(n, costPerItem: 8) { r in
                                for i in r {
                                    pp[i] *= decay
                                    mp[i] += (1 - b1) * (gp[i] - mp[i])      // lerp(m, g, 1-β1)
                                    vp[i] = vp[i] * b2 + (1 - b2) * gp[i] * gp[i]
                                    let denom = vp[i].squareRoot() / bc2Sqrt + eps
                                    pp[i] -= stepSize * mp[i] / denom
                                }
                            }
                        }
                    }
                }
                exp[id] = state
            }
        }
    }

    /// Clears the gradients of every parameter in every group.
    public func zeroGrad() { for g in groups { for p in g.parameters { p.grad = nil } } }

    /// One parameter's state (for checkpoints): its moments (of the owned range when sharded) and step count, or
    /// nil before its first step.
    public func state(of parameter: Variable) -> (m: Tensor, v: Tensor, step: Int)? { exp[ObjectIdentifier(parameter)] }

    /// Replaces the whole state by each listed parameter's (moments, step); unlisted parameters start afresh.
    /// Keyed by parameter, so no order has to match: the groups list parameters in another order than a
    /// module does.
    public func restore(_ states: [(parameter: Variable, state: (m: Tensor, v: Tensor, step: Int))]) {
        let known = Set(groups.flatMap { $0.parameters }.map(ObjectIdentifier.init))
        exp = [:]
        for (p, s) in states where known.contains(ObjectIdentifier(p)) {
            guard shard != nil else { exp[ObjectIdentifier(p)] = s; continue }
            // Whole moments (as checkpoints hold them) → this rank's range.
            let r = ownedRange(p)
            func part(_ t: Tensor) -> Tensor {
                t.count == r.count ? t.reshaped([r.count]) : Tensor(shape: [r.count], Array(t.array[r]))
            }
            exp[ObjectIdentifier(p)] = (part(s.m), part(s.v), s.step)
        }
    }
}
