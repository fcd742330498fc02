// Central-difference gradient checking, used by the tests for every op.
import FlavaTensor

/// Compares autograd gradients with central differences of a scalar function.
public enum GradCheck {
    /// The worst disagreement found.
    public struct Result: CustomStringConvertible {
        public var maxAbsError: Double = 0
        public var worst: String = ""
        public var passed: Bool = true
        public var description: String { "max |analytic − numeric| = \(maxAbsError) \(worst)" }
    }

    /// Checks d(f)/d(inputs) where `f` maps the inputs to a Variable; the scalar differentiated is
    /// Σ f(x) ⊙ w for a fixed random w (so every output element matters). Differences are taken in Double
    /// from float32 evaluations with step `h`; an element passes if |a − n| ≤ atol + rtol·|n|.
    public static func check(inputs: [Tensor], h: Float = 1e-2, atol: Double = 2e-3, rtol: Double = 2e-2,
                             seed: UInt64 = 1, _ f: ([Variable]) -> Variable) -> Result {
        var gen = SeededGenerator(seed: seed)
        let vars = inputs.map { Variable($0, requiresGrad: true) }
        let out = f(vars)
        let w = Tensor.randomNormal(out.shape, using: &gen)
        out.backward(seed: w)
        func objective(_ xs: [Tensor]) -> Double {
            let y = withNoGrad { f(xs.map { Variable($0, requiresGrad: true) }).value }
            var s = 0.0
            for i in 0..<y.count { s += Double(y[flat: i]) * Double(w[flat: i]) }
            return s
        }
        var result = Result()
        for (k, x) in inputs.enumerated() {
            let analytic = vars[k].grad ?? Tensor.zeros(x.shape)
            for i in 0..<x.count {
                var xp = inputs, xm = inputs
                xp[k][flat: i] = x[flat: i] + h
                xm[k][flat: i] = x[flat: i] - h
                let numeric = (objective(xp) - objective(xm)) / (2 * Double(h))
                let a = Double(analytic[flat: i])
                let err = abs(a - numeric)
                if err > result.maxAbsError { result.maxAbsError = err }
                if err > atol + rtol * abs(numeric) {
                    if result.passed { result.worst = "input \(k) element \(i): analytic \(a), numeric \(numeric)" }
                    result.passed = false
                }
            }
        }
        return result
    }
}
