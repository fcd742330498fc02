// DINO's multi-crop augmentation (Caron et al. 2021, main_dino.py DataAugmentationDINO): two global crops at the
// model's image size and several local crops at a smaller size, each a RandomResizedCrop (bicubic) with a
// horizontal flip, colour jitter (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1, in random order, with
// probability 0.8) and grayscale (0.2); then Gaussian blur (global 1: always, global 2: 0.1, local: 0.5) and
// solarization (global 2 only: 0.2); normalized with the model's mean and std.
//
// The blur's σ range (0.1–2.0 pixels at DINO's 224-pixel crops) is scaled by the global crop size / 224, so a
// 64-pixel crop is blurred as much, relative to its content, as DINO blurs a 224-pixel one.
import Foundation
import FlavaTensor

/// The multi-crop settings (defaults: DINO's, with its crop sizes).
public struct DINOAugmentationConfig: Codable, Sendable, Equatable {
    /// Global crops' side (the model's image size).
    public var globalSize = 224
    /// Local crops' side (96 in DINO); a multiple of the patch size, read through interpolated positions.
    public var localSize = 96
    /// Local crops per image (DINO: 8 for ViT-S, 10 for ViT-B).
    public var localCrops = 8
    /// Area fractions of the global and local crops (DINO: 0.4–1 and 0.05–0.4).
    public var globalScale: [Double] = [0.4, 1.0]
    public var localScale: [Double] = [0.05, 0.4]
    /// Colour jitter strengths and the probability it is applied.
    public var brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1
    public var jitterProbability = 0.8
    public var grayscaleProbability = 0.2
    /// Blur probability of global crop 1, global crop 2 and each local crop.
    public var blurProbabilities: [Double] = [1.0, 0.1, 0.5]
    /// Solarization probability of global crop 2.
    public var solarizationProbability = 0.2
    /// The blur's σ range in pixels at 224-pixel crops (scaled by globalSize / 224).
    public var blurSigma: [Double] = [0.1, 2.0]

    public init() {}

    /// DINO's colour augmentations toned down, for images whose colours are part of what they show (the built-in
    /// synthetic world: its captions, zero-shot classes and questions name colours, its scenes are a few flat-
    /// coloured shapes): jitter strengths halved (brightness and contrast 0.2, saturation 0.1) and hue to a fifth
    /// (0.02), grayscale and solarization at a quarter of DINO's probability (0.05); crops, flip and blur as DINO.
    /// With DINO's full colour augmentations on those images the teacher stays near uniform (about 90 % of log K)
    /// and the loss does not fall; these keep every augmentation and let it fall (README "DINO").
    public func withMildColour() -> DINOAugmentationConfig {
        var c = self
        c.brightness = 0.2; c.contrast = 0.2; c.saturation = 0.1; c.hue = 0.02
        c.grayscaleProbability = 0.05; c.solarizationProbability = 0.05
        return c
    }

    /// `other`'s colour augmentations (jitter strengths and probability, grayscale, solarization) in place of these.
    public func withColour(of other: DINOAugmentationConfig) -> DINOAugmentationConfig {
        var c = self
        c.brightness = other.brightness; c.contrast = other.contrast; c.saturation = other.saturation; c.hue = other.hue
        c.jitterProbability = other.jitterProbability; c.grayscaleProbability = other.grayscaleProbability
        c.solarizationProbability = other.solarizationProbability
        return c
    }

    /// Whether the colour augmentations are `other`'s.
    public func hasColour(of other: DINOAugmentationConfig) -> Bool { withColour(of: other) == self }

    /// Settings for a model of `imageSize`-pixel images in `patchSize` patches: local crops of about 3/7 the
    /// side (DINO's 96 / 224), rounded to whole patches (at least one).
    public init(imageSize: Int, patchSize: Int) {
        globalSize = imageSize
        localSize = max(patchSize, Int((Double(imageSize) * 96 / 224 / Double(patchSize)).rounded()) * patchSize)
    }

    enum CodingKeys: String, CodingKey {
        case globalSize, localSize, localCrops, globalScale, localScale, brightness, contrast, saturation, hue
        case jitterProbability, grayscaleProbability, blurProbabilities, solarizationProbability, blurSigma
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DINOAugmentationConfig()
        globalSize = try c.value(.globalSize, d.globalSize); localSize = try c.value(.localSize, d.localSize)
        localCrops = try c.value(.localCrops, d.localCrops)
        globalScale = try c.value(.globalScale, d.globalScale); localScale = try c.value(.localScale, d.localScale)
        brightness = try c.value(.brightness, d.brightness); contrast = try c.value(.contrast, d.contrast)
        saturation = try c.value(.saturation, d.saturation); hue = try c.value(.hue, d.hue)
        jitterProbability = try c.value(.jitterProbability, d.jitterProbability)
        grayscaleProbability = try c.value(.grayscaleProbability, d.grayscaleProbability)
        blurProbabilities = try c.value(.blurProbabilities, d.blurProbabilities)
        solarizationProbability = try c.value(.solarizationProbability, d.solarizationProbability)
        blurSigma = try c.value(.blurSigma, d.blurSigma)
    }

    /// Checks every setting against the model's patch size; the error names `file` and the field.
    public func validate(_ k: ConfigChecker, patchSize: Int) throws {
        try k.int("globalSize", globalSize, in: 1...4096)
        try k.int("localSize", localSize, in: 1...4096)
        try k.require(localSize % patchSize == 0, "localSize", localSize, "must be a multiple of the patch size \(patchSize)")
        try k.require(globalSize % patchSize == 0, "globalSize", globalSize, "must be a multiple of the patch size \(patchSize)")
        try k.int("localCrops", localCrops, in: 0...64)
        for (name, r) in [("globalScale", globalScale), ("localScale", localScale)] {
            try k.require(r.count == 2 && r[0] > 0 && r[0] <= r[1] && r[1] <= 1, name, r, "must be [low, high] with 0 < low ≤ high ≤ 1")
        }
        for (name, v) in [("brightness", brightness), ("contrast", contrast), ("saturation", saturation)] {
            try k.number(name, v, in: 0...1)
        }
        try k.number("hue", hue, in: 0...0.5)
        for (name, p) in [("jitterProbability", jitterProbability), ("grayscaleProbability", grayscaleProbability),
                          ("solarizationProbability", solarizationProbability)] {
            try k.number(name, p, in: 0...1)
        }
        try k.require(blurProbabilities.count == 3 && blurProbabilities.allSatisfy { (0...1).contains($0) }, "blurProbabilities",
                      blurProbabilities, "must be three probabilities (global 1, global 2, local)")
        try k.require(blurSigma.count == 2 && blurSigma[0] > 0 && blurSigma[0] <= blurSigma[1] && blurSigma[1] <= 100, "blurSigma",
                      blurSigma, "must be [low, high] with 0 < low ≤ high ≤ 100")
    }
}

/// The transform: an image → its 2 global crops then its local crops, each [3, S, S] normalized.
public struct DINOAugmentation: Sendable {
    public var config: DINOAugmentationConfig
    public var mean: [Float], std: [Float]

    public init(_ config: DINOAugmentationConfig, mean: [Float], std: [Float]) {
        self.config = config; self.mean = mean; self.std = std
    }

    /// Every view of one image: global 1, global 2, then `localCrops` local crops.
    public func views(_ image: RGBImage, using g: inout SeededGenerator) -> [Tensor] {
        let c = config
        var out: [Tensor] = []
        let gs = (c.globalScale[0])...(c.globalScale[1]), ls = (c.localScale[0])...(c.localScale[1])
        out.append(view(image, size: c.globalSize, scale: gs, blur: c.blurProbabilities[0], solarize: 0, &g))
        out.append(view(image, size: c.globalSize, scale: gs, blur: c.blurProbabilities[1], solarize: c.solarizationProbability, &g))
        for _ in 0..<c.localCrops {
            out.append(view(image, size: c.localSize, scale: ls, blur: c.blurProbabilities[2], solarize: 0, &g))
        }
        return out
    }

    func chance(_ p: Double, _ g: inout SeededGenerator) -> Bool { p > 0 && Double(g.nextUniform()) < p }
    func uniform(_ lo: Double, _ hi: Double, _ g: inout SeededGenerator) -> Double { lo + Double(g.nextUniform()) * (hi - lo) }

    /// One view: crop, resize, flip, jitter, grayscale, blur, solarize, normalize.
    func view(_ image: RGBImage, size: Int, scale: ClosedRange<Double>, blur: Double, solarize: Double,
              _ g: inout SeededGenerator) -> Tensor {
        let box = FlavaImageProcessor.randomResizedCropBox(width: image.width, height: image.height, scale: scale,
                                                           ratio: (3.0 / 4)...(4.0 / 3), using: &g)
        let crop = image.cropped(left: box.left, top: box.top, width: box.width, height: box.height)
            .resized(width: size, height: size, filter: .bicubic)
        var px = DINOPixels(crop)
        if chance(0.5, &g) { px.flipHorizontally() }
        if chance(config.jitterProbability, &g) { colorJitter(&px, &g) }
        if chance(config.grayscaleProbability, &g) { px.grayscale() }
        if chance(blur, &g) {
            let f = Double(config.globalSize) / 224
            px.gaussianBlur(sigma: uniform(config.blurSigma[0] * f, config.blurSigma[1] * f, &g))
        }
        if chance(solarize, &g) { px.solarize() }
        return px.normalized(mean: mean, std: std)
    }

    /// torchvision ColorJitter: brightness, contrast, saturation and hue with factors drawn uniformly, applied
    /// in a random order.
    func colorJitter(_ px: inout DINOPixels, _ g: inout SeededGenerator) {
        var order = [0, 1, 2, 3]
        for i in stride(from: 3, to: 0, by: -1) { order.swapAt(i, Int(g.next() % UInt64(i + 1))) }
        let c = config
        for op in order {
            switch op {
            case 0 where c.brightness > 0: px.brightness(Float(uniform(max(0, 1 - c.brightness), 1 + c.brightness, &g)))
            case 1 where c.contrast > 0: px.contrast(Float(uniform(max(0, 1 - c.contrast), 1 + c.contrast, &g)))
            case 2 where c.saturation > 0: px.saturation(Float(uniform(max(0, 1 - c.saturation), 1 + c.saturation, &g)))
            case 3 where c.hue > 0: px.hueShift(Float(uniform(-c.hue, c.hue, &g)))
            default: break
            }
        }
    }
}

/// An image as floats in [0, 1], channels last, for the photometric augmentations (torchvision's tensor
/// formulas: blends clamped to [0, 1], grayscale by ITU-R 601-2 luma).
public struct DINOPixels: Sendable {
    public var width: Int, height: Int
    /// [h, w, 3] in [0, 1].
    public var v: [Float]

    public init(_ image: RGBImage) {
        width = image.width; height = image.height
        v = image.pixels.map { Float($0) / 255 }
    }

    public mutating func flipHorizontally() {
        for y in 0..<height {
            for x in 0..<(width / 2) {
                for c in 0..<3 { v.swapAt((y * width + x) * 3 + c, (y * width + width - 1 - x) * 3 + c) }
            }
        }
    }

    func luma(_ i: Int) -> Float { 0.299 * v[3 * i] + 0.587 * v[3 * i + 1] + 0.114 * v[3 * i + 2] }

    /// x·f + other·(1 − f), clamped.
    mutating func blend(_ f: Float, with other: (Int, Int) -> Float) {
        for i in 0..<(width * height) { for c in 0..<3 { v[3 * i + c] = min(max(v[3 * i + c] * f + other(i, c) * (1 - f), 0), 1) } }
    }

    public mutating func brightness(_ f: Float) { blend(f) { _, _ in 0 } }
    public mutating func contrast(_ f: Float) {
        let n = width * height
        var m: Float = 0
        for i in 0..<n { m += luma(i) }
        m /= Float(max(n, 1))
        blend(f) { _, _ in m }
    }
    public mutating func saturation(_ f: Float) {
        let gray = (0..<(width * height)).map { luma($0) }
        blend(f) { i, _ in gray[i] }
    }
    public mutating func grayscale() {
        for i in 0..<(width * height) { let l = luma(i); v[3 * i] = l; v[3 * i + 1] = l; v[3 * i + 2] = l }
    }

    /// Rotates the hue by `shift` of a full turn (through HSV, as torchvision's adjust_hue).
    public mutating func hueShift(_ shift: Float) {
        for i in 0..<(width * height) {
            let (r, g, b) = (v[3 * i], v[3 * i + 1], v[3 * i + 2])
            let mx = max(r, g, b), mn = min(r, g, b), d = mx - mn
            var h: Float = 0
            if d > 0 {
                if mx == r { h = ((g - b) / d).truncatingRemainder(dividingBy: 6) }
                else if mx == g { h = (b - r) / d + 2 }
                else { h = (r - g) / d + 4 }
                h /= 6
            }
            h = (h + shift).truncatingRemainder(dividingBy: 1)
            if h < 0 { h += 1 }
            let s = mx > 0 ? d / mx : 0, val = mx
            let hh = h * 6, k = Int(hh) % 6, f = hh - Float(Int(hh))
            let p = val * (1 - s), q = val * (1 - s * f), t = val * (1 - s * (1 - f))
            let rgb: (Float, Float, Float)
            switch k {
            case 0: rgb = (val, t, p)
            case 1: rgb = (q, val, p)
            case 2: rgb = (p, val, t)
            case 3: rgb = (p, q, val)
            case 4: rgb = (t, p, val)
            default: rgb = (val, p, q)
            }
            v[3 * i] = rgb.0; v[3 * i + 1] = rgb.1; v[3 * i + 2] = rgb.2
        }
    }

    /// A separable Gaussian of standard deviation `sigma` pixels, radius ⌈3σ⌉, edges replicated.
    public mutating func gaussianBlur(sigma: Double) {
        let r = max(1, Int((3 * sigma).rounded(.up)))
        var k = (-r...r).map { Float(exp(-Double($0 * $0) / (2 * sigma * sigma))) }
        let s = k.reduce(0, +)
        k = k.map { $0 / s }
        var tmp = v
        for y in 0..<height { for x in 0..<width { for c in 0..<3 {
            var acc: Float = 0
            for (j, w) in k.enumerated() { acc += w * v[(y * width + min(max(x + j - r, 0), width - 1)) * 3 + c] }
            tmp[(y * width + x) * 3 + c] = acc
        } } }
        for y in 0..<height { for x in 0..<width { for c in 0..<3 {
            var acc: Float = 0
            for (j, w) in k.enumerated() { acc += w * tmp[(min(max(y + j - r, 0), height - 1) * width + x) * 3 + c] }
            v[(y * width + x) * 3 + c] = acc
        } } }
    }

    /// PIL's solarize at 128: every channel value ≥ 128/255 is inverted.
    public mutating func solarize() {
        let t: Float = 128 / 255
        for i in v.indices where v[i] >= t { v[i] = 1 - v[i] }
    }

    /// Channels-first [3, h, w], (x − mean) / std.
    public func normalized(mean: [Float], std: [Float]) -> Tensor {
        let t = Tensor(uninitializedShape: [3, height, width])
        let p = t.storage.pointer, n = width * height
        for c in 0..<3 { for i in 0..<n { p[c * n + i] = (v[3 * i + c] - mean[c]) / std[c] } }
        return t
    }
}
