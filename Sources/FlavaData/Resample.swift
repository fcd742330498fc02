// Resizing with PIL's antialiased separable filters (Pillow's Resample.c): for each output pixel a filter
// window scaled by the reduction factor, coefficients normalized and turned into 22-bit fixed point, a
// horizontal pass then a vertical pass, each rounded and clipped to 8 bits. Matching this is what keeps
// our pixel values within a grey level of the reference's.
import Foundation

/// PIL's resampling filters.
public enum ResampleFilter: String, Sendable, Codable, CaseIterable {
    case bilinear, bicubic, lanczos

    var support: Double {
        switch self { case .bilinear: return 1; case .bicubic: return 2; case .lanczos: return 3 }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .bilinear:
            let a = abs(x); return a < 1 ? 1 - a : 0
        case .bicubic:
            let a = -0.5, ax = abs(x)
            if ax < 1 { return ((a + 2) * ax - (a + 3)) * ax * ax + 1 }
            if ax < 2 { return (((ax - 5) * ax + 8) * ax - 4) * a }
            return 0
        case .lanczos:
            func sinc(_ v: Double) -> Double { v == 0 ? 1 : sin(Double.pi * v) / (Double.pi * v) }
            return (-3 < x && x < 3) ? sinc(x) * sinc(x / 3) : 0
        }
    }
}

extension RGBImage {
    static let precisionBits = 32 - 8 - 2

    /// Fixed-point coefficients of one axis: per output pixel the first input index, the count, and weights.
    static func coefficients(inSize: Int, outSize: Int, filter: ResampleFilter) -> (bounds: [(Int, Int)], weights: [Int32], ksize: Int) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let ksize = Int(ceil(support)) * 2 + 1
        var bounds: [(Int, Int)] = []
        var kk = [Int32](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1 / filterScale
            // Pillow truncates toward zero with (int) casts here.
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var ww = 0.0
            for x in 0..<xmax {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w; ww += w
            }
            for x in 0..<xmax {
                let w = ww != 0 ? k[x] / ww : k[x]
                kk[xx * ksize + x] = Int32(w < 0 ? (w * Double(1 << precisionBits) - 0.5).rounded(.towardZero)
                                                 : (w * Double(1 << precisionBits) + 0.5).rounded(.towardZero))
            }
            bounds.append((xmin, xmax))
        }
        return (bounds, kk, ksize)
    }

    @inline(__always) static func clip8(_ v: Int32) -> UInt8 {
        let s = v >> Int32(precisionBits)
        return s < 0 ? 0 : (s > 255 ? 255 : UInt8(truncatingIfNeeded: s))
    }

    /// PIL's `Image.resize((width, height), filter)` (no reducing_gap), 8-bit per channel. Each pass rounds to
    /// 8 bits, so the order of the passes shows in the result: Pillow (13.0, measured) runs the vertical pass
    /// first exactly when the width grows and the height shrinks, and the horizontal pass first otherwise.
    public func resized(width outW: Int, height outH: Int, filter: ResampleFilter) -> RGBImage {
        precondition(outW > 0 && outH > 0, "resize to \(outW)×\(outH)")
        if outW == width && outH == height { return self }
        let verticalFirst = outW > width && outH < height
        if verticalFirst { return resampledVertically(outH, filter).resampledHorizontally(outW, filter) }
        return resampledHorizontally(outW, filter).resampledVertically(outH, filter)
    }

    /// One horizontal pass to `outW` columns (32-bit fixed-point accumulation, as Pillow).
    func resampledHorizontally(_ outW: Int, _ filter: ResampleFilter) -> RGBImage {
        if outW == width { return self }
        let (bounds, kk, ksize) = RGBImage.coefficients(inSize: width, outSize: outW, filter: filter)
        var out = [UInt8](repeating: 0, count: outW * height * 3)
        let half = Int32(1) << Int32(RGBImage.precisionBits - 1)
        pixels.withUnsafeBufferPointer { srcBuf in
            out.withUnsafeMutableBufferPointer { dstBuf in
                kk.withUnsafeBufferPointer { kBuf in
                    let src = srcBuf.baseAddress!, dst = dstBuf.baseAddress!, kp = kBuf.baseAddress!
                    for y in 0..<height {
                        let row = src + y &* width &* 3
                        let orow = dst + y &* outW &* 3
                        for xx in 0..<outW {
                            let (xmin, n) = bounds[xx]
                            let k = kp + xx &* ksize
                            var s0 = half, s1 = half, s2 = half
                            var p = row + xmin &* 3
                            for x in 0..<n {
                                let w = k[x]
                                s0 &+= Int32(p[0]) &* w; s1 &+= Int32(p[1]) &* w; s2 &+= Int32(p[2]) &* w
                                p += 3
                            }
                            orow[xx &* 3] = RGBImage.clip8(s0); orow[xx &* 3 &+ 1] = RGBImage.clip8(s1); orow[xx &* 3 &+ 2] = RGBImage.clip8(s2)
                        }
                    }
                }
            }
        }
        return RGBImage(width: outW, height: height, pixels: out)
    }

    /// One vertical pass to `outH` rows: each output row accumulates whole input rows (vectorizable).
    func resampledVertically(_ outH: Int, _ filter: ResampleFilter) -> RGBImage {
        if outH == height { return self }
        let (bounds, kk, ksize) = RGBImage.coefficients(inSize: height, outSize: outH, filter: filter)
        let n3 = width * 3
        var out = [UInt8](repeating: 0, count: n3 * outH)
        var acc = [Int32](repeating: 0, count: n3)
        let half = Int32(1) << Int32(RGBImage.precisionBits - 1)
        pixels.withUnsafeBufferPointer { srcBuf in
            out.withUnsafeMutableBufferPointer { dstBuf in
                acc.withUnsafeMutableBufferPointer { accBuf in
                    let src = srcBuf.baseAddress!, dst = dstBuf.baseAddress!, a = accBuf.baseAddress!
                    for yy in 0..<outH {
                        let (ymin, n) = bounds[yy]
                        for i in 0..<n3 { a[i] = half }
                        for y in 0..<n {
                            let k = kk[yy &* ksize &+ y]
                            let row = src + (ymin &+ y) &* n3
                            for i in 0..<n3 { a[i] &+= Int32(row[i]) &* k }
                        }
                        let orow = dst + yy &* n3
                        for i in 0..<n3 { orow[i] = RGBImage.clip8(a[i]) }
                    }
                }
            }
        }
        return RGBImage(width: width, height: outH, pixels: out)
    }

    /// The central width×height region (HF `center_crop`: top = (H − h)/2 rounded as int(round(...))).
    public func centerCropped(width w: Int, height h: Int) -> RGBImage {
        if w == width && h == height { return self }
        let top = Int(((Double(height - h)) / 2).rounded()), left = Int(((Double(width - w)) / 2).rounded())
        return cropped(left: left, top: top, width: w, height: h)
    }
}
