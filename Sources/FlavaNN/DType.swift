// Element types found in safetensors and PyTorch checkpoints, and their conversion to our two tensor kinds.
import FlavaTensor

/// A stored element type.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .u8, .i8, .bool: return 1
        }
    }

    /// True for the floating-point types (read into `Tensor`, half types upcast).
    public var isFloatingPoint: Bool { self == .f32 || self == .f16 || self == .bf16 || self == .f64 }

    /// Converts `count` little-endian elements at `src` to Float.
    func toFloat(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch self {
        case .f32: for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f64: for i in 0..<count { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        case .f16: for i in 0..<count { dst[i] = DType.halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .bf16: for i in 0..<count { dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
        case .i64, .i32, .i16, .i8, .u8, .bool:
            var tmp = [Int](repeating: 0, count: count)
            toInt(src, count: count, into: &tmp)
            for i in 0..<count { dst[i] = Float(tmp[i]) }
        }
    }

    /// Converts `count` little-endian integer (or float, truncated) elements at `src` to Int.
    func toInt(_ src: UnsafeRawPointer, count: Int, into dst: inout [Int]) {
        switch self {
        case .i64: for i in 0..<count { dst[i] = Int(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
        case .i32: for i in 0..<count { dst[i] = Int(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
        case .i16: for i in 0..<count { dst[i] = Int(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
        case .i8: for i in 0..<count { dst[i] = Int(src.load(fromByteOffset: i, as: Int8.self)) }
        case .u8, .bool: for i in 0..<count { dst[i] = Int(src.load(fromByteOffset: i, as: UInt8.self)) }
        case .f32, .f64, .f16, .bf16:
            let tmp = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            defer { tmp.deallocate() }
            toFloat(src, count: count, into: tmp)
            for i in 0..<count { dst[i] = Int(tmp[i]) }
        }
    }

    /// IEEE half → float (handles subnormals, infinities and NaN).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1f), mant = UInt32(h & 0x3ff)
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            let v = Float(mant) * 0x1p-24
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
    }
}

/// A tensor as stored: float32 values or integers.
public enum StoredTensor: Sendable {
    case float(Tensor)
    case int(IntTensor)

    public var shape: [Int] {
        switch self { case .float(let t): return t.shape; case .int(let t): return t.shape }
    }
}

/// Read access to a set of named tensors (a safetensors file, a torch checkpoint, a sharded folder).
public protocol TensorSource: AnyObject {
    /// Where the tensors come from, for error messages.
    var sourcePath: String { get }
    /// All tensor names.
    var keys: [String] { get }
    /// Shape and dtype of a tensor, without reading it.
    func info(_ key: String) -> (dtype: DType, shape: [Int])?
    /// The tensor as float32 (half and integer types converted).
    func floatTensor(_ key: String) throws -> Tensor
    /// The tensor as integers.
    func intTensor(_ key: String) throws -> IntTensor
}
