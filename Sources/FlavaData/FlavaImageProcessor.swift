// Mirrors FlavaImageProcessor (transformers, PIL path): square resize with PIL BICUBIC, center crop,
// rescale 1/255, normalize with the OpenAI CLIP mean/std → pixel_values [3, S, S]; and the codebook input:
// resize with PIL LANCZOS to S/2, rescale, then 0.8x + 0.1 → codebook_pixel_values [3, S/2, S/2]
// (FLAVA_REFERENCE.md §5.1–5.2). Also the training transform: one RandomResizedCrop shared by both views.
import Foundation
import FlavaTensor

/// FlavaImageProcessor settings (`preprocessor_config.json` fields).
public struct FlavaImageProcessorConfig: Codable, Sendable, Equatable {
    public var size = 224
    public var cropSize = 224
    public var resample = ResampleFilter.bicubic
    public var imageMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public var imageStd: [Float] = [0.26862954, 0.26130258, 0.27577711]
    public var codebookSize = 112
    public var codebookResample = ResampleFilter.lanczos
    public var codebookMean: [Float] = [0, 0, 0]
    public var codebookStd: [Float] = [1, 1, 1]

    public init() {}

    /// The FLAVA defaults at another image size (codebook at half of it, one code per 8×8 codebook pixels
    /// per 16×16 model patch).
    public init(imageSize: Int) {
        size = imageSize; cropSize = imageSize; codebookSize = imageSize / 2
    }

    enum CodingKeys: String, CodingKey {
        case size, cropSize = "crop_size", resample, imageMean = "image_mean", imageStd = "image_std"
        case codebookSize = "codebook_size", codebookResample = "codebook_resample"
        case codebookMean = "codebook_image_mean", codebookStd = "codebook_image_std"
    }

    /// PIL resample codes: 1 = LANCZOS, 2 = BILINEAR, 3 = BICUBIC.
    static func filter(_ code: Int) -> ResampleFilter? { [1: .lanczos, 2: .bilinear, 3: .bicubic][code] }

    /// Sizes are an int or {"height", "width"} / {"shortest_edge"} as HF writes them (square sizes only); null or
    /// absent means the default, as in transformers.
    static func side(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Int? {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
        if let n = try? c.decode(Int.self, forKey: key) { return n }
        let d = try c.decode([String: Int].self, forKey: key)
        func fail(_ m: String) -> DecodingError { .dataCorrupted(.init(codingPath: c.codingPath + [key], debugDescription: m)) }
        if let h = d["height"], let w = d["width"], h != w { throw fail("\(w)×\(h): only square sizes are supported") }
        guard let s = d["height"] ?? d["shortest_edge"] ?? d["width"] else { throw fail("expected height and width, or shortest_edge") }
        return s
    }

    /// A PIL resample code (null or absent: the default).
    static func resampleFilter(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> ResampleFilter? {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
        let code = try c.decode(Int.self, forKey: key)
        guard let f = filter(code) else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [key],
                                                    debugDescription: "resample code \(code) is not implemented (1 = LANCZOS, 2 = BILINEAR, 3 = BICUBIC)"))
        }
        return f
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let s = try FlavaImageProcessorConfig.side(c, .size) { size = s; cropSize = s; codebookSize = s / 2 }
        if let s = try FlavaImageProcessorConfig.side(c, .cropSize) { cropSize = s }
        if let f = try FlavaImageProcessorConfig.resampleFilter(c, .resample) { resample = f }
        imageMean = try c.value(.imageMean, imageMean)
        imageStd = try c.value(.imageStd, imageStd)
        if let s = try FlavaImageProcessorConfig.side(c, .codebookSize) { codebookSize = s }
        if let f = try FlavaImageProcessorConfig.resampleFilter(c, .codebookResample) { codebookResample = f }
        codebookMean = try c.value(.codebookMean, codebookMean)
        codebookStd = try c.value(.codebookStd, codebookStd)
    }

    /// Checks sizes and normalization constants; `imageSize` is the model's, which the crop must produce.
    public func validate(_ k: ConfigChecker, imageSize: Int? = nil) throws {
        try k.int("size", size, in: 1...16_384)
        try k.int("crop_size", cropSize, in: 1...size)
        if let imageSize {
            try k.require(cropSize == imageSize, "crop_size", cropSize, "must equal the model's image_size (\(imageSize))")
        }
        try k.int("codebook_size", codebookSize, in: 8...16_384)
        try k.require(codebookSize % 8 == 0, "codebook_size", codebookSize, "must be a multiple of 8 (one code per 8×8 pixels)")
        for (name, values, isStd) in [("image_mean", imageMean, false), ("image_std", imageStd, true),
                                      ("codebook_image_mean", codebookMean, false), ("codebook_image_std", codebookStd, true)] {
            try k.require(values.count == 3, name, values, "must have 3 values (R, G, B)")
            for v in values {
                try k.number(name, Double(v), in: isStd ? 0...1e6 : -1e6...1e6, aboveLower: isStd)
            }
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let code: [ResampleFilter: Int] = [.lanczos: 1, .bilinear: 2, .bicubic: 3]
        try c.encode(["height": size, "width": size], forKey: .size)
        try c.encode(["height": cropSize, "width": cropSize], forKey: .cropSize)
        try c.encode(code[resample], forKey: .resample)
        try c.encode(imageMean, forKey: .imageMean); try c.encode(imageStd, forKey: .imageStd)
        try c.encode(["height": codebookSize, "width": codebookSize], forKey: .codebookSize)
        try c.encode(code[codebookResample], forKey: .codebookResample)
        try c.encode(codebookMean, forKey: .codebookMean); try c.encode(codebookStd, forKey: .codebookStd)
    }

    /// `preprocessor_config.json` in `dir` if present, else the FLAVA defaults at `imageSize`.
    public static func load(modelDirectory dir: String, imageSize: Int) throws -> FlavaImageProcessorConfig {
        let path = URL(fileURLWithPath: dir).appendingPathComponent("preprocessor_config.json").path
        guard let data = FileManager.default.contents(atPath: path) else { return FlavaImageProcessorConfig(imageSize: imageSize) }
        let config = try ConfigError.decode(FlavaImageProcessorConfig.self, from: data, file: path)
        try config.validate(ConfigChecker(file: path), imageSize: imageSize)
        return config
    }
}

/// Turns decoded images into model inputs.
public struct FlavaImageProcessor: Sendable {
    public var config: FlavaImageProcessorConfig

    public init(_ config: FlavaImageProcessorConfig = .init()) { self.config = config }

    /// 8-bit RGB → channels-first float32 ((x/255 − mean)/std).
    public static func normalized(_ image: RGBImage, mean: [Float], std: [Float], affine: (Float, Float)? = nil) -> Tensor {
        let (w, h) = (image.width, image.height)
        let t = Tensor(uninitializedShape: [3, h, w])
        let p = t.storage.pointer
        for c in 0..<3 {
            let m = mean[c], s = std[c]
            for i in 0..<(w * h) {
                // rescale in double precision, cast to float (as HF's rescale), then normalize in float.
                var v = Float(Double(image.pixels[3 * i + c]) * (1.0 / 255.0))
                v = (v - m) / s
                if let (a, b) = affine { v = a * v + b }
                p[c * w * h + i] = v
            }
        }
        return t
    }

    /// pixel_values [3, S, S].
    public func pixelValues(_ image: RGBImage) -> Tensor {
        let r = image.resized(width: config.size, height: config.size, filter: config.resample)
            .centerCropped(width: config.cropSize, height: config.cropSize)
        return FlavaImageProcessor.normalized(r, mean: config.imageMean, std: config.imageStd)
    }

    /// codebook_pixel_values [3, S/2, S/2] in [0.1, 0.9].
    public func codebookPixelValues(_ image: RGBImage) -> Tensor {
        let r = image.resized(width: config.codebookSize, height: config.codebookSize, filter: config.codebookResample)
        return FlavaImageProcessor.normalized(r, mean: config.codebookMean, std: config.codebookStd, affine: (0.8, 0.1))
    }

    /// The training transform (TorchMultimodal): one RandomResizedCrop (scale 0.9–1.0, aspect 3/4–4/3, as
    /// torchvision samples it) applied to both views, then the two resizes.
    public func trainingViews(_ image: RGBImage, scale: ClosedRange<Double> = 0.9...1.0,
                              ratio: ClosedRange<Double> = (3.0 / 4)...(4.0 / 3),
                              using g: inout SeededGenerator) -> (pixels: Tensor, codebook: Tensor) {
        let crop = FlavaImageProcessor.randomResizedCropBox(width: image.width, height: image.height, scale: scale, ratio: ratio, using: &g)
        let c = image.cropped(left: crop.left, top: crop.top, width: crop.width, height: crop.height)
        let px = FlavaImageProcessor.normalized(c.resized(width: config.size, height: config.size, filter: config.resample),
                                                mean: config.imageMean, std: config.imageStd)
        let cb = FlavaImageProcessor.normalized(c.resized(width: config.codebookSize, height: config.codebookSize, filter: config.codebookResample),
                                                mean: config.codebookMean, std: config.codebookStd, affine: (0.8, 0.1))
        return (px, cb)
    }

    /// torchvision's RandomResizedCrop.get_params: up to 10 tries of (area, log-uniform aspect), else a
    /// center crop at the clamped aspect ratio.
    public static func randomResizedCropBox(width: Int, height: Int, scale: ClosedRange<Double>, ratio: ClosedRange<Double>,
                                            using g: inout SeededGenerator) -> (left: Int, top: Int, width: Int, height: Int) {
        let area = Double(width * height)
        let logRatio = (log(ratio.lowerBound), log(ratio.upperBound))
        for _ in 0..<10 {
            let target = area * (scale.lowerBound + Double(g.nextUniform()) * (scale.upperBound - scale.lowerBound))
            let aspect = exp(logRatio.0 + Double(g.nextUniform()) * (logRatio.1 - logRatio.0))
            let w = Int((target * aspect).squareRoot().rounded()), h = Int((target / aspect).squareRoot().rounded())
            if w > 0 && w <= width && h > 0 && h <= height {
                let top = Int(g.next() % UInt64(height - h + 1)), left = Int(g.next() % UInt64(width - w + 1))
                return (left, top, w, h)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio.lowerBound { h = Int((Double(w) / ratio.lowerBound).rounded()) }
        else if inRatio > ratio.upperBound { w = Int((Double(h) * ratio.upperBound).rounded()) }
        return ((width - w) / 2, (height - h) / 2, w, h)
    }
}
