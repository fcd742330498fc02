// Image decoding and FLAVA preprocessing against ../shared/reference/images (PIL + FlavaImageProcessor),
// and clear errors for corrupt, truncated, oversized and unsupported files.
import Testing
import Foundation
import FlavaKit
import TestSupport

private let imagesDir = TestPaths.reference.appendingPathComponent("images")

@Test(arguments: ["gradient_320x240.jpg", "gray_64x96.png", "noise_224x224.png", "rgba_100x150.png",
                  "shapes_300x300.png", "tall_50x400.jpg"])
func preprocessingMatchesThePythonStack(file: String) throws {
    let golden = try SafeTensorsFile(path: imagesDir.appendingPathComponent("processed.safetensors").path)
    let stem = String(file.split(separator: ".")[0])
    let image = try RGBImage.load(imagesDir.appendingPathComponent(file).path)
    let processor = FlavaImageProcessor()
    for (got, key, maxTol) in [(processor.pixelValues(image), "\(stem).pixel_values", Float(0.03)),
                               (processor.codebookPixelValues(image), "\(stem).codebook_pixel_values", Float(0.01))] {
        let want = try golden.floatTensor(key)
        #expect(got.shape == want.shape)
        var maxDiff: Float = 0, sum: Double = 0
        for i in 0..<want.count { let d = abs(got[flat: i] - want[flat: i]); maxDiff = max(maxDiff, d); sum += Double(d) }
        let mean = sum / Double(want.count)
        #expect(maxDiff <= maxTol, "\(key): max |diff| \(maxDiff)")
        #expect(mean < 1e-3, "\(key): mean |diff| \(mean)")
    }
}

private func expectImageError(_ bytes: [UInt8], _ needle: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try RGBImage.decode(Data(bytes), name: "x")
        Issue.record("decoded a bad image", sourceLocation: sourceLocation)
    } catch {
        #expect("\(error)".contains(needle), "\(error)", sourceLocation: sourceLocation)
        #expect(!"\(error)".contains("\n"), sourceLocation: sourceLocation)
    }
}

@Test func corruptTruncatedOversizedAndUnsupportedImagesGiveClearErrors() throws {
    let jpg = [UInt8](try Data(contentsOf: imagesDir.appendingPathComponent("gradient_320x240.jpg")))
    let png = [UInt8](try Data(contentsOf: imagesDir.appendingPathComponent("shapes_300x300.png")))
    expectImageError(Array(png.prefix(png.count / 2)), "PNG")
    expectImageError(Array(png.prefix(30)), "PNG")
    var corrupt = png
    for i in 40..<min(200, corrupt.count) { corrupt[i] ^= 0x5a }
    expectImageError(corrupt, "PNG")
    expectImageError(Array(jpg.prefix(200)), "JPEG")
    expectImageError(Array("GIF89a......".utf8), "unsupported image format")
    expectImageError([1, 2], "truncated")
    // A PNG header claiming 100000×100000 pixels is refused before anything is allocated.
    var bomb = Array(png.prefix(33))
    let side: [UInt8] = [0x00, 0x01, 0x86, 0xA0]   // 100000
    bomb.replaceSubrange(16..<20, with: side); bomb.replaceSubrange(20..<24, with: side)
    let crc = crc32(Array(bomb[12..<29]))   // the IHDR chunk's CRC covers its type and data
    bomb.replaceSubrange(29..<33, with: [UInt8(crc >> 24), UInt8((crc >> 16) & 0xff), UInt8((crc >> 8) & 0xff), UInt8(crc & 0xff)])
    expectImageError(bomb, "exceeds the limit")
    #expect { try RGBImage.load("/nonexistent.png") } throws: { "\($0)".contains("no such file") }
}

@Test func truncatedJPEGWithHeaderIntactIsAnErrorNotGarbage() throws {
    let jpg = [UInt8](try Data(contentsOf: imagesDir.appendingPathComponent("tall_50x400.jpg")))
    // libjpeg pads a truncated scan with grey and warns; we must not silently accept it.
    expectImageError(Array(jpg.prefix(jpg.count * 2 / 3)), "JPEG")
}

@Test func pngRoundTripIsLossless() throws {
    var g = SeededGenerator(seed: 1)
    let img = RGBImage(width: 7, height: 5, pixels: (0..<105).map { _ in UInt8(g.next() % 256) })
    #expect(try RGBImage.decode(img.pngData()) == img)
}

@Test func randomResizedCropIsDeterministicAndInBounds() {
    var a = SeededGenerator(seed: 3), b = SeededGenerator(seed: 3)
    for _ in 0..<50 {
        let x = FlavaImageProcessor.randomResizedCropBox(width: 320, height: 240, scale: 0.9...1.0, ratio: 0.75...(4.0 / 3), using: &a)
        let y = FlavaImageProcessor.randomResizedCropBox(width: 320, height: 240, scale: 0.9...1.0, ratio: 0.75...(4.0 / 3), using: &b)
        #expect(x == y)
        #expect(x.left >= 0 && x.top >= 0 && x.left + x.width <= 320 && x.top + x.height <= 240)
        #expect(Double(x.width * x.height) >= 0.85 * 320 * 240)
    }
}

private func crc32(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xffff_ffff
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xedb8_8320 : c >> 1 }
    }
    return c ^ 0xffff_ffff
}

@Test(arguments: ["progressive.jpg", "gray.jpg", "cmyk.jpg", "gray16.png", "palette.png", "palette_trns.png", "gray_alpha.png", "bilevel.png"])
func decodingMatchesPILConvertRGB(file: String) throws {
    let dir = TestPaths.fixtures.appendingPathComponent("decode")
    let want = try SafeTensorsFile(path: dir.appendingPathComponent("decoded.safetensors").path).intTensor(file.replacingOccurrences(of: ".", with: "_"))
    let img = try RGBImage.load(dir.appendingPathComponent(file).path)
    #expect([img.height, img.width, 3] == want.shape)
    let diffs = zip(img.pixels, want.values).map { abs(Int($0) - $1) }
    // Same libjpeg-turbo arithmetic for JPEG; PNG is lossless: expect identity (CMYK within one level of rounding).
    #expect((diffs.max() ?? 0) <= (file == "cmyk.jpg" ? 1 : 0), "\(file): max diff \(diffs.max() ?? 0)")
}
