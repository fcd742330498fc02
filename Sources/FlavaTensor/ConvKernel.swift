// 2-D convolution by im2col + GEMM (any kernel, stride, padding; 1×1 stride-1 convolutions skip im2col),
// and 2×2 max pooling; forward and backward side by side.
import Foundation

/// Geometry of a 2-D convolution.
public struct Conv2dGeometry: Sendable, Equatable {
    public let batch: Int, inChannels: Int, height: Int, width: Int
    public let outChannels: Int, kernelH: Int, kernelW: Int, stride: Int, padding: Int
    public var outHeight: Int { (height + 2 * padding - kernelH) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernelW) / stride + 1 }
    /// Rows of the im2col matrix (C·kh·kw).
    public var patchSize: Int { inChannels * kernelH * kernelW }
    /// True when the input itself is the im2col matrix.
    public var isPointwise: Bool { kernelH == 1 && kernelW == 1 && stride == 1 && padding == 0 }

    public init(input: [Int], weight: [Int], stride: Int, padding: Int) {
        precondition(input.count == 4 && weight.count == 4, "conv2d wants [B,C,H,W] input and [O,C,kh,kw] weight")
        precondition(input[1] == weight[1], "conv2d: input has \(input[1]) channels, weight expects \(weight[1])")
        precondition(stride >= 1 && padding >= 0, "conv2d: stride \(stride), padding \(padding)")
        batch = input[0]; inChannels = input[1]; height = input[2]; width = input[3]
        outChannels = weight[0]; kernelH = weight[2]; kernelW = weight[3]
        self.stride = stride; self.padding = padding
        precondition(height + 2 * padding >= kernelH && width + 2 * padding >= kernelW,
                     "conv2d: kernel \(kernelH)×\(kernelW) larger than padded input \(height)×\(width)")
    }
}

/// Convolution and pooling kernels.
public enum ConvKernel {
    /// The patches of a patchify convolution (kernel = stride = p, no padding: `Conv2d.isPatchify`) of x [B, C, H, W] as rows
    /// [B·Ho·Wo, C·p·p], output positions in row-major order, each patch in the weight's (channel, row, column)
    /// order: the convolution is then x's rows times the weight [O, C·p·p] transposed, and the output comes out
    /// as [B, Ho·Wo, O], the layout a patch embedding wants. Rows and columns past the last whole patch are
    /// dropped, as the convolution does.
    public static func patchRows(_ x: Tensor, patch p: Int) -> Tensor {
        precondition(x.rank == 4 && p >= 1, "patch rows want [B,C,H,W] and a patch size ≥ 1, got \(x.shape), \(p)")
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(h >= p && w >= p, "patch rows: patch \(p) larger than the image \(h)×\(w)")
        let (ho, wo, k) = (h / p, w / p, c * p * p)
        let out = Tensor(uninitializedShape: [b * ho * wo, k])
        let op = out.storage.pointer
        x.withBuffer { xb in
            let xp = xb.baseAddress!
            Parallel.forRanges(b * ho, costPerItem: wo * k) { range in
                for bh in range {
                    let (bi, gy) = (bh / ho, bh % ho)
                    for gx in 0..<wo {
                        let row = op + (bh &* wo &+ gx) &* k
                        for ci in 0..<c {
                            let plane = xp + (bi &* c &+ ci) &* h &* w
                            for i in 0..<p {
                                let line: Int = (gy &* p &+ i) &* w
                                let dst = row + (ci &* p &+ i) &* p
                                dst.update(from: plane + line + gx &* p, count: p)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Writes the im2col matrix [C·kh·kw, Ho·Wo] of one image (rows split over threads when `parallel`).
    static func im2col(_ x: UnsafePointer<Float>, _ g: Conv2dGeometry, _ col: UnsafeMutablePointer<Float>, parallel: Bool = true) {
        let rows = g.patchSize
        if parallel {
            Parallel.forRanges(rows, costPerItem: g.outHeight * g.outWidth) { r in im2colRows(x, g, col, r) }
        } else {
            im2colRows(x, g, col, 0..<rows)
        }
    }

    /// im2col rows `r`; with stride 1 each output row is a zero-padded copy of an input row.
    static func im2colRows(_ x: UnsafePointer<Float>, _ g: Conv2dGeometry, _ col: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        let (ho, wo) = (g.outHeight, g.outWidth)
        for row in r {
            let kx = row % g.kernelW, ky = (row / g.kernelW) % g.kernelH, c = row / (g.kernelW * g.kernelH)
            let plane = x + c &* g.height &* g.width
            let dst = col + row &* ho &* wo
            // Output columns whose input column ix = ox·stride + kx − padding lies inside the image.
            let lo = g.stride == 1 ? min(wo, max(0, g.padding - kx)) : 0
            let hi = g.stride == 1 ? max(lo, min(wo, g.width + g.padding - kx)) : wo
            for oy in 0..<ho {
                let iy = oy &* g.stride &+ ky &- g.padding
                let drow = dst + oy &* wo
                if iy < 0 || iy >= g.height { drow.update(repeating: 0, count: wo); continue }
                let srow = plane + iy &* g.width
                if g.stride == 1 {
                    if lo > 0 { drow.update(repeating: 0, count: lo) }
                    if hi > lo { drow.advanced(by: lo).update(from: srow + (lo &+ kx &- g.padding), count: hi &- lo) }
                    if hi < wo { drow.advanced(by: hi).update(repeating: 0, count: wo &- hi) }
                } else {
                    for ox in 0..<wo {
                        let ix = ox &* g.stride &+ kx &- g.padding
                        drow[ox] = (ix >= 0 && ix < g.width) ? srow[ix] : 0
                    }
                }
            }
        }
    }

    /// Accumulates an im2col-shaped gradient back into the image gradient (the adjoint of im2col).
    static func col2im(_ col: UnsafePointer<Float>, _ g: Conv2dGeometry, _ dx: UnsafeMutablePointer<Float>, parallel: Bool = true) {
        let (ho, wo) = (g.outHeight, g.outWidth)
        // Split over channels so that no two threads write the same plane.
        let body = { (cr: Range<Int>) in
            for c in cr {
                let plane = dx + c &* g.height &* g.width
                for ky in 0..<g.kernelH { for kx in 0..<g.kernelW {
                    let row = (c &* g.kernelH &+ ky) &* g.kernelW &+ kx
                    let src = col + row &* ho &* wo
                    for oy in 0..<ho {
                        let iy = oy &* g.stride &+ ky &- g.padding
                        if iy < 0 || iy >= g.height { continue }
                        let drow = plane + iy &* g.width, srow = src + oy &* wo
                        for ox in 0..<wo {
                            let ix = ox &* g.stride &+ kx &- g.padding
                            if ix >= 0 && ix < g.width { drow[ix] += srow[ox] }
                        }
                    }
                } }
            }
        }
        if parallel { Parallel.forRanges(g.inChannels, costPerItem: g.kernelH * g.kernelW * ho * wo, body) } else { body(0..<g.inChannels) }
    }

    /// Whether to split a convolution over the images of the batch (each thread its own im2col buffer and
    /// single-threaded products) rather than inside each image: many small per-image products otherwise spend
    /// their time in thread hand-offs.
    static func splitsOverImages(_ g: Conv2dGeometry) -> Bool {
        Parallel.threadCount > 1 && g.batch >= 2 * Parallel.threadCount
    }

    /// y[b] = W·im2col(x[b]) + bias; x [B,C,H,W], weight [O,C,kh,kw], bias [O] or nil → [B,O,Ho,Wo].
    public static func conv2dForward(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int) -> Tensor {
        let g = Conv2dGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
        if let bias { precondition(bias.count == g.outChannels, "conv2d bias \(bias.shape) vs \(g.outChannels) channels") }
        let n = g.outHeight * g.outWidth
        let y = Tensor(uninitializedShape: [g.batch, g.outChannels, g.outHeight, g.outWidth])
        let xp = x.storage.pointer, wp = weight.storage.pointer, yp = y.storage.pointer
        let bp = bias?.storage.pointer
        let byImage = splitsOverImages(g)
        func images(_ r: Range<Int>) {
            // im2col buffers come from the buffer cache: a 3×3 convolution of the codebook at 112 px needs 115 MB,
            // which malloc would map afresh (and fault in page by page) on every call.
            let scratch = g.isPointwise ? nil : TensorStorage(uninitializedCount: g.patchSize * n)
            let col = scratch?.pointer
            defer { withExtendedLifetime(scratch) {} }   // the buffer lives while `col` is used
            for bi in r {
                let xb = xp + bi &* g.inChannels &* g.height &* g.width
                let yb = yp + bi &* g.outChannels &* n
                var a = UnsafePointer(xb)
                if let col { im2col(xb, g, col, parallel: !byImage); a = UnsafePointer(col) }
                if let bp { for o in 0..<g.outChannels { (yb + o &* n).initialize(repeating: bp[o], count: n) } }
                BLAS.gemm(m: g.outChannels, n: n, k: g.patchSize, a: wp, lda: g.patchSize, b: a, ldb: n,
                          beta: bp == nil ? 0 : 1, c: yb, ldc: n)
            }
        }
        if byImage {
            BLAS.singleThreaded { Parallel.forRanges(g.batch, costPerItem: Int.max / (4 * g.batch)) { images($0) } }
        } else {
            images(0..<g.batch)
        }
        return y
    }

    /// Gradients of x, weight and bias of `conv2dForward`.
    public static func conv2dBackward(_ x: Tensor, weight: Tensor, hasBias: Bool, stride: Int, padding: Int,
                                      gradOutput gy: Tensor) -> (dx: Tensor, dWeight: Tensor, dBias: Tensor?) {
        let g = Conv2dGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = g.outHeight * g.outWidth
        let dx = Tensor.zeros(x.shape), dw = Tensor.zeros(weight.shape)
        let db: Tensor? = hasBias ? Tensor.zeros([g.outChannels]) : nil
        let xp = x.storage.pointer, wp = weight.storage.pointer, gp = gy.storage.pointer
        let dxp = dx.storage.pointer
        let byImage = splitsOverImages(g)
        let lock = NSLock()
        var partials: [(Int, Tensor, Tensor?)] = []
        func images(_ r: Range<Int>) {
            // Scratch from the buffer cache (TensorStorage), as in the forward pass.
            let scratch = g.isPointwise ? nil : (TensorStorage(uninitializedCount: g.patchSize * n), TensorStorage(uninitializedCount: g.patchSize * n))
            let col = scratch?.0.pointer, dcol = scratch?.1.pointer
            // Each thread accumulates its own weight and bias gradients, added up at the end.
            let dwLocal = byImage ? Tensor.zeros(weight.shape) : dw
            let dbLocal = byImage ? db.map { Tensor.zeros($0.shape) } : db
            defer { withExtendedLifetime(scratch) {} }   // the buffers live while `col` and `dcol` are used
            let dwp = dwLocal.storage.pointer
            for bi in r {
                let xb = xp + bi &* g.inChannels &* g.height &* g.width
                let dxb = dxp + bi &* g.inChannels &* g.height &* g.width
                let gb = gp + bi &* g.outChannels &* n
                var a = UnsafePointer(xb)
                if let col { im2col(xb, g, col, parallel: !byImage); a = UnsafePointer(col) }
                // dW += dY[O, n] · colᵀ[n, CKK]
                BLAS.gemm(transB: true, m: g.outChannels, n: g.patchSize, k: n, a: gb, lda: n, b: a, ldb: n,
                          beta: 1, c: dwp, ldc: g.patchSize)
                // dcol = Wᵀ[CKK, O] · dY[O, n]; pointwise convolutions write straight into dx.
                if let dcol {
                    BLAS.gemm(transA: true, m: g.patchSize, n: n, k: g.outChannels, a: wp, lda: g.patchSize,
                              b: gb, ldb: n, c: dcol, ldc: n)
                    col2im(dcol, g, dxb, parallel: !byImage)
                } else {
                    BLAS.gemm(transA: true, m: g.patchSize, n: n, k: g.outChannels, a: wp, lda: g.patchSize,
                              b: gb, ldb: n, c: dxb, ldc: n)
                }
                if let dbLocal {
                    let dbp = dbLocal.storage.pointer
                    for o in 0..<g.outChannels { dbp[o] += Reduce.sum(gb + o &* n, n) }
                }
            }
            if byImage { lock.lock(); partials.append((r.lowerBound, dwLocal, dbLocal)); lock.unlock() }
        }
        if byImage {
            BLAS.singleThreaded { Parallel.forRanges(g.batch, costPerItem: Int.max / (4 * g.batch)) { images($0) } }
            // Added in batch order, so the result does not depend on which thread finished first.
            for (_, pw, pb) in partials.sorted(by: { $0.0 < $1.0 }) {
                let (dst, src) = (dw.storage.pointer, pw.storage.pointer)
                for i in 0..<dw.count { dst[i] += src[i] }
                if let db, let pb { for o in 0..<db.count { db.storage.pointer[o] += pb.storage.pointer[o] } }
            }
        } else {
            images(0..<g.batch)
        }
        return (dx, dw, db)
    }

    /// 2×2 max pooling with stride 2 over [B,C,H,W] (H, W even or floored as PyTorch); returns the output
    /// and, for the backward pass, the flat input index of each maximum.
    public static func maxPool2x2(_ x: Tensor) -> (Tensor, [Int32]) {
        precondition(x.rank == 4, "max pool wants [B,C,H,W], got \(x.shape)")
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (ho, wo) = (h / 2, w / 2)
        precondition(x.count < Int(Int32.max), "max pool input too large for 32-bit indices")
        let y = Tensor(uninitializedShape: [b, c, ho, wo])
        var idx = [Int32](repeating: 0, count: b * c * ho * wo)
        let xp = x.storage.pointer, yp = y.storage.pointer
        idx.withUnsafeMutableBufferPointer { ip in
            let ipp = ip.baseAddress!
            Parallel.forRanges(b * c, costPerItem: h * w) { r in
                for plane in r {
                    let xin = plane &* h &* w, yo = plane &* ho &* wo
                    for oy in 0..<ho { for ox in 0..<wo {
                        var best = xin &+ (2 &* oy) &* w &+ 2 &* ox
                        var bv = xp[best]
                        for (dy, dxo) in [(0, 1), (1, 0), (1, 1)] {
                            let j = xin &+ (2 &* oy &+ dy) &* w &+ 2 &* ox &+ dxo
                            // PyTorch keeps the first maximum and propagates NaN.
                            if xp[j] > bv || xp[j].isNaN { best = j; bv = xp[j] }
                        }
                        yp[yo &+ oy &* wo &+ ox] = bv
                        ipp[yo &+ oy &* wo &+ ox] = Int32(truncatingIfNeeded: best)
                    } }
                }
            }
        }
        return (y, idx)
    }

    /// Routes each output gradient to the input position that held the maximum.
    public static func maxPool2x2Backward(inputShape: [Int], indices: [Int32], gradOutput g: Tensor) -> Tensor {
        let dx = Tensor.zeros(inputShape)
        let dp = dx.storage.pointer, gp = g.storage.pointer
        for i in 0..<indices.count { dp[Int(indices[i])] += gp[i] }
        return dx
    }
}
