// 8-bit RGB images: decoding JPEG/PNG files as PIL's Image.open(path).convert("RGB") does, and writing PNG.
import Synchronization
import Foundation
import CImageCodecs

/// An image that cannot be read, in one line naming the file.
public struct ImageError: Error, CustomStringConvertible {
    public let path: String, reason: String
    /// The image's header gives more pixels than the limit (refused before decoding: a decompression bomb).
    public let tooLarge: Bool
    public init(_ path: String, _ reason: String, tooLarge: Bool = false) { self.path = path; self.reason = reason; self.tooLarge = tooLarge }
    public var description: String { "\(path): \(reason)" }
}

/// An 8-bit RGB image, row-major, 3 bytes a pixel.
public struct RGBImage: Sendable, Equatable {
    public let width: Int, height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGB image \(width)×\(height) needs \(width * height * 3) bytes")
        self.width = width; self.height = height; self.pixels = pixels
    }

    /// A solid image.
    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        self.width = width; self.height = height
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { p[3 * i] = fill.0; p[3 * i + 1] = fill.1; p[3 * i + 2] = fill.2 }
        pixels = p
    }

    /// The pixel limit against decompression bombs (PIL's MAX_IMAGE_PIXELS, 89,478,485); atomic, so any
    /// thread may read or change it.
    public static var maximumPixels: Int {
        get { maximumPixelsStorage.load(ordering: .relaxed) }
        set { maximumPixelsStorage.store(newValue, ordering: .relaxed) }
    }
    private static let maximumPixelsStorage = Atomic<Int>(89_478_485)

    /// Decodes a JPEG or PNG file.
    public static func load(_ path: String) throws -> RGBImage {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw ImageError(path, "no such file") }
        guard !isDir.boolValue else { throw ImageError(path, "is a folder, expected an image file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw ImageError(path, "cannot read file") }
        return try decode(data, name: path)
    }

    /// Decodes JPEG or PNG bytes (the format is recognized by its signature); an image whose header gives more
    /// than `maximumPixels` pixels (default: the process-wide `RGBImage.maximumPixels`) is refused before any
    /// pixel is decoded (`ImageError.tooLarge`).
    public static func decode(_ data: Data, name: String = "image", maximumPixels limit: Int? = nil) throws -> RGBImage {
        let maximumPixels = limit ?? RGBImage.maximumPixels
        let bytes = [UInt8](data)
        guard bytes.count >= 4 else { throw ImageError(name, "truncated image (\(bytes.count) bytes)") }
        let result: flava_image = bytes.withUnsafeBufferPointer { b in
            if bytes[0] == 0xFF && bytes[1] == 0xD8 { return flava_decode_jpeg(b.baseAddress, b.count, maximumPixels) }
            if bytes[0] == 0x89 && bytes[1] == 0x50 && bytes[2] == 0x4E && bytes[3] == 0x47 {
                return flava_decode_png(b.baseAddress, b.count, maximumPixels)
            }
            var r = flava_image()
            r.rgb = nil
            return r
        }
        guard let rgb = result.rgb else {
            var r = result
            let message = withUnsafeBytes(of: &r.error) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            // (flava_decode_jpeg/png word the pixel-limit refusal this way, in CImageCodecs.)
            throw ImageError(name, message.isEmpty ? "unsupported image format (only JPEG and PNG are read)" : message,
                             tooLarge: message.hasPrefix("image of ") && message.contains("exceeds the limit"))
        }
        defer { flava_free(rgb) }
        let n = Int(result.width) * Int(result.height) * 3
        return RGBImage(width: Int(result.width), height: Int(result.height), pixels: Array(UnsafeBufferPointer(start: rgb, count: n)))
    }

    /// PNG bytes of this image.
    public func pngData() -> Data {
        var size = 0
        let buf = pixels.withUnsafeBufferPointer { flava_encode_png($0.baseAddress, Int32(width), Int32(height), &size) }
        guard let buf else { return Data() }
        defer { flava_free(buf) }
        return Data(bytes: buf, count: size)
    }

    /// Writes a PNG file (atomically).
    public func savePNG(_ path: String) throws {
        do { try pngData().write(to: URL(fileURLWithPath: path), options: .atomic) }
        catch { throw ImageError(path, "cannot write: \(error.localizedDescription)") }
    }

    /// The rectangle [left, left+w) × [top, top+h), clipped to the image.
    public func cropped(left: Int, top: Int, width w: Int, height h: Int) -> RGBImage {
        var out = RGBImage(width: w, height: h)
        for y in 0..<h {
            let sy = top + y
            guard sy >= 0 && sy < height else { continue }
            for x in 0..<w {
                let sx = left + x
                guard sx >= 0 && sx < width else { continue }
                for c in 0..<3 { out.pixels[(y * w + x) * 3 + c] = pixels[(sy * width + sx) * 3 + c] }
            }
        }
        return out
    }
}
