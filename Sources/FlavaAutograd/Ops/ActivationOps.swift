// GELU (exact erf), tanh, ReLU and exp.
import FlavaTensor

/// GELU with the exact erf form (PyTorch's default `F.gelu`, HF's "gelu").
public func gelu(_ x: Variable) -> Variable {
    let xv = x.value
    return Variable.record("gelu", Activation.gelu(xv), inputs: [x]) { g in
        [Activation.geluBackward(input: xv, gradOutput: g)]
    }
}

/// tanh.
public func tanh(_ x: Variable) -> Variable {
    let y = Activation.tanh(x.value)
    return Variable.record("tanh", y, inputs: [x]) { g in [Activation.tanhBackward(output: y, gradOutput: g)] }
}

/// ReLU.
public func relu(_ x: Variable) -> Variable {
    let xv = x.value
    return Variable.record("relu", Activation.relu(xv), inputs: [x]) { g in
        [Activation.reluBackward(input: xv, gradOutput: g)]
    }
}

/// e^x (used for the contrastive temperature exp(logit_scale)).
public func exp(_ x: Variable) -> Variable {
    let y = Activation.exp(x.value)
    return Variable.record("exp", y, inputs: [x]) { g in [g * y] }
}

/// Logistic sigmoid 1/(1 + e^{−x}).
public func sigmoid(_ x: Variable) -> Variable {
    let y = x.value.map { 1 / (1 + Foundation.exp(-$0)) }
    return Variable.record("sigmoid", y, inputs: [x]) { g in [g * y.map { $0 * (1 - $0) }] }
}

import Foundation

/// Natural logarithm (inputs must be positive).
public func log(_ x: Variable) -> Variable {
    let xv = x.value
    return Variable.record("log", xv.map { Foundation.log($0) }, inputs: [x]) { g in
        let dx = Tensor(uninitializedShape: g.shape)
        let gp = g.storage.pointer, xp = xv.storage.pointer, dp = dx.storage.pointer
        for i in 0..<g.count { dp[i] = gp[i] / xp[i] }
        return [dx]
    }
}
