// LayerNorm over the last dimension, forward and backward (mirrors torch.nn.functional.layer_norm).

/// Layer normalization kernels over rows of length `dim`.
public enum LayerNormKernel {
    /// What the backward pass needs from the forward: the per-row mean and 1/σ.
    public struct Saved: Sendable { public let mean: Tensor, rstd: Tensor }

    /// y = (x − μ)/√(σ² + eps)·w + b per row; σ² is the biased variance, as PyTorch.
    public static func forward(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> (Tensor, Saved) {
        let d = x.shape.last ?? 1
        precondition(weight.count == d && bias.count == d, "layer norm: weight \(weight.shape) vs input \(x.shape)")
        let rows = x.count / max(d, 1)
        let y = Tensor(uninitializedShape: x.shape)
        let mean = Tensor(uninitializedShape: [rows]), rstd = Tensor(uninitializedShape: [rows])
        let xs = x.storage.pointer, ys = y.storage.pointer, w = weight.storage.pointer, b = bias.storage.pointer
        let mp = mean.storage.pointer, rp = rstd.storage.pointer
        Parallel.forRanges(rows, costPerItem: d * 3) { r in
            for row in r {
                let xr = xs + row &* d, yr = ys + row &* d
                let mu = Reduce.sum(xr, d) / Float(d)
                var acc = SIMD16<Float>(repeating: 0)
                var i = 0
                while i &+ 16 <= d {
                    let v = UnsafeRawPointer(xr + i).loadUnaligned(as: SIMD16<Float>.self) - mu
                    acc += v * v; i &+= 16
                }
                var ss = acc.sum()
                while i < d { let v = xr[i] - mu; ss += v * v; i &+= 1 }
                let rs = 1 / (ss / Float(d) + eps).squareRoot()
                mp[row] = mu; rp[row] = rs
                for j in 0..<d { yr[j] = (xr[j] - mu) * rs * w[j] + b[j] }
            }
        }
        return (y, Saved(mean: mean, rstd: rstd))
    }

    /// Gradients with respect to x, weight and bias.
    public static func backward(_ x: Tensor, weight: Tensor, saved: Saved, gradOutput g: Tensor)
        -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        let d = x.shape.last ?? 1
        let rows = x.count / max(d, 1)
        let dx = Tensor(uninitializedShape: x.shape)
        let xs = x.storage.pointer, gs = g.storage.pointer, w = weight.storage.pointer
        let mp = saved.mean.storage.pointer, rp = saved.rstd.storage.pointer, dxs = dx.storage.pointer
        // Per-thread partial sums for dWeight/dBias, reduced at the end.
        let chunks = max(1, min(Parallel.threadCount, rows))
        let partial = Tensor.zeros([chunks, 2, d])
        let pp = partial.storage.pointer
        Parallel.forRanges(chunks) { cr in
            for c in cr {
                let lo = rows * c / chunks, hi = rows * (c + 1) / chunks
                let dwp = pp + c &* 2 &* d, dbp = dwp + d
                for row in lo..<hi {
                    let xr = xs + row &* d, gr = gs + row &* d, dr = dxs + row &* d
                    let mu = mp[row], rs = rp[row]
                    var sumG: Float = 0, sumGX: Float = 0
                    for j in 0..<d {
                        let xh = (xr[j] - mu) * rs
                        let gw = gr[j] * w[j]
                        sumG += gw; sumGX += gw * xh
                        dwp[j] += gr[j] * xh; dbp[j] += gr[j]
                    }
                    let invD = 1 / Float(d)
                    for j in 0..<d {
                        let xh = (xr[j] - mu) * rs
                        dr[j] = rs * (gr[j] * w[j] - invD * sumG - xh * invD * sumGX)
                    }
                }
            }
        }
        let dw = Tensor.zeros([d]), db = Tensor.zeros([d])
        let dwo = dw.storage.pointer, dbo = db.storage.pointer
        for c in 0..<chunks { for j in 0..<d { dwo[j] += pp[c * 2 * d + j]; dbo[j] += pp[c * 2 * d + d + j] } }
        return (dx, dw.reshaped(weight.shape), db.reshaped(weight.shape))
    }
}
