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
