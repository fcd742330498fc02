// The linear-probe solver: L2-regularised multinomial logistic regression fitted by L-BFGS, with
// scikit-learn's objective C·Σ cross-entropy + ½‖W‖² (the intercept unpenalised), in double precision.
// The problem is strictly convex, so a tight enough solve lands on scikit-learn's optimum.
import Foundation

/// A fitted multinomial logistic regression.
public struct LogisticRegression: Sendable {
    /// Coefficients [classes][features] and intercepts [classes].
    public var coef: [[Double]]
    public var intercept: [Double]
    public var classes: Int { intercept.count }
    /// Iterations used and whether the gradient tolerance was met.
    public var iterations: Int
    public var converged: Bool

    /// Fits on rows of `x` with labels 0..<classes. `c` is scikit-learn's C (inverse regularisation).
    public static func fit(x: [[Double]], y: [Int], classes: Int? = nil, c: Double, maxIterations: Int = 1000,
                           tolerance: Double = 1e-10) -> LogisticRegression {
        let n = x.count, d = x.first?.count ?? 0
        let k = classes ?? ((y.max() ?? 0) + 1)
        precondition(n == y.count && n > 0, "one label per row")
        let dim = k * (d + 1)
        // Parameters: W (k×d, row-major) then b (k).
        func objective(_ w: [Double], _ grad: inout [Double]) -> Double {
            for i in 0..<dim { grad[i] = 0 }
            var f = 0.0
            var logits = [Double](repeating: 0, count: k)
            for i in 0..<n {
                let xi = x[i]
                for c in 0..<k {
                    var s = w[k * d + c]
                    for j in 0..<d { s += w[c * d + j] * xi[j] }
                    logits[c] = s
                }
                let m = logits.max()!
                var z = 0.0
                for c in 0..<k { z += exp(logits[c] - m) }
                let lse = m + log(z)
                f += c * (lse - logits[y[i]])
                for cl in 0..<k {
                    let p = exp(logits[cl] - lse) - (cl == y[i] ? 1 : 0)
                    let gp = c * p
                    for j in 0..<d { grad[cl * d + j] += gp * xi[j] }
                    grad[k * d + cl] += gp
                }
            }
            for i in 0..<(k * d) { f += 0.5 * w[i] * w[i]; grad[i] += w[i] }
            return f
        }
        let (w, iters, ok) = LBFGS.minimize(dimension: dim, maxIterations: maxIterations, tolerance: tolerance, objective)
        return LogisticRegression(coef: (0..<k).map { Array(w[($0 * d)..<(($0 + 1) * d)]) }, intercept: Array(w[(k * d)...]),
                                  iterations: iters, converged: ok)
    }

    /// Class probabilities of one row.
    public func probabilities(_ row: [Double]) -> [Double] {
        let logits = (0..<classes).map { c in intercept[c] + zip(coef[c], row).reduce(0) { $0 + $1.0 * $1.1 } }
        let m = logits.max()!
        let e = logits.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// Most probable class of each row.
    public func predict(_ x: [[Double]]) -> [Int] {
        x.map { row in let p = probabilities(row); return p.indices.max { p[$0] < p[$1] }! }
    }
}

/// Limited-memory BFGS with a backtracking (Armijo) line search.
public enum LBFGS {
    /// Minimizes f from zero; returns the point, the iterations used and whether ‖∇f‖∞ fell below `tolerance`.
    public static func minimize(dimension n: Int, memory m: Int = 10, maxIterations: Int, tolerance: Double,
                                _ f: ([Double], inout [Double]) -> Double) -> ([Double], Int, Bool) {
        var x = [Double](repeating: 0, count: n), g = [Double](repeating: 0, count: n)
        var fx = f(x, &g)
        var s: [[Double]] = [], yv: [[Double]] = [], rho: [Double] = []
        func dot(_ a: [Double], _ b: [Double]) -> Double { var r = 0.0; for i in 0..<a.count { r += a[i] * b[i] }; return r }
        for it in 0..<maxIterations {
            if g.map(abs).max() ?? 0 <= tolerance { return (x, it, true) }
            // Two-loop recursion for the direction d = −H∇f.
            var q = g
            var alpha = [Double](repeating: 0, count: s.count)
            for i in stride(from: s.count - 1, through: 0, by: -1) {
                alpha[i] = rho[i] * dot(s[i], q)
                for j in 0..<n { q[j] -= alpha[i] * yv[i][j] }
            }
            if let ls = s.last, let ly = yv.last {
                let gamma = dot(ls, ly) / dot(ly, ly)
                for j in 0..<n { q[j] *= gamma }
            }
            for i in 0..<s.count {
                let beta = rho[i] * dot(yv[i], q)
                for j in 0..<n { q[j] += s[i][j] * (alpha[i] - beta) }
            }
            var d = q.map { -$0 }
            var slope = dot(g, d)
            if slope >= 0 { d = g.map { -$0 }; slope = dot(g, d); s.removeAll(); yv.removeAll(); rho.removeAll() }
            // Backtracking line search (Armijo).
            var step = 1.0
            var xn = x, gn = g, fn = fx
            var accepted = false
            for _ in 0..<60 {
                for j in 0..<n { xn[j] = x[j] + step * d[j] }
                fn = f(xn, &gn)
                if fn <= fx + 1e-4 * step * slope { accepted = true; break }
                step *= 0.5
            }
            if !accepted { return (x, it, false) }
            let sk = (0..<n).map { xn[$0] - x[$0] }, yk = (0..<n).map { gn[$0] - g[$0] }
            let sy = dot(sk, yk)
            if sy > 1e-12 {
                s.append(sk); yv.append(yk); rho.append(1 / sy)
                if s.count > m { s.removeFirst(); yv.removeFirst(); rho.removeFirst() }
            }
            let improvement = fx - fn
            x = xn; g = gn; fx = fn
            if improvement.magnitude <= 1e-16 * max(1, fx.magnitude) && (g.map(abs).max() ?? 0) <= tolerance * 1e3 { return (x, it + 1, true) }
        }
        return (x, maxIterations, (g.map(abs).max() ?? 0) <= tolerance)
    }
}
