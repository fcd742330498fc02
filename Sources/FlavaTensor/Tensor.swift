// The float32 tensor: a shape over contiguous row-major storage, with value semantics (copy-on-write).

/// A contiguous, row-major float32 tensor with value semantics.
///
/// Copies share storage until one of them is written (`withMutableBuffer`), which then copies. Kernels read
/// through `withBuffer` and write fresh outputs, so no hidden aliasing reaches the math.
/// Sendable: its stored parts are a shape array and a `TensorStorage`; a thread that writes goes through
/// copy-on-write (`withMutableBuffer`), which copies whenever the storage is shared.
public struct Tensor: Sendable, CustomStringConvertible {
    /// Sizes of each dimension; `[]` is a scalar.
    public private(set) var shape: [Int]
    /// The underlying buffer (may be shared with other tensors).
    public private(set) var storage: TensorStorage

    /// Number of elements (product of `shape`).
    public var count: Int { storage.count }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// Product of a shape's sizes.
    @inlinable public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for s in shape { precondition(s >= 0, "negative dimension in shape \(shape)"); n *= s }
        return n
    }

    /// Wraps existing storage; its count must equal the shape's element count.
    public init(shape: [Int], storage: TensorStorage) {
        precondition(Tensor.elementCount(shape) == storage.count,
                     "shape \(shape) needs \(Tensor.elementCount(shape)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// An uninitialized tensor, for kernels that write every element.
    public init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(uninitializedCount: Tensor.elementCount(shape)))
    }

    /// A tensor filled with `value`.
    public init(shape: [Int], repeating value: Float) {
        self.init(uninitializedShape: shape)
        storage.pointer.initialize(repeating: value, count: storage.count)
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }
    /// A tensor of ones.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }

    /// A tensor from row-major values.
    public init(shape: [Int], _ values: [Float]) {
        precondition(Tensor.elementCount(shape) == values.count,
                     "shape \(shape) needs \(Tensor.elementCount(shape)) values, got \(values.count)")
        self.init(uninitializedShape: shape)
        values.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    /// A scalar (rank-0) tensor.
    public init(scalar: Float) { self.init(shape: [], [scalar]) }

    /// The single value of a one-element tensor.
    public var scalarValue: Float {
        precondition(count == 1, "scalarValue needs one element, shape is \(shape)")
        return storage.pointer[0]
    }

    /// All values, row-major.
    public var array: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// Element at a flat row-major index.
    public subscript(flat i: Int) -> Float {
        get { precondition(i >= 0 && i < count); return storage.pointer[i] }
        set { precondition(i >= 0 && i < count); withMutableBuffer { $0[i] = newValue } }
    }

    /// Reads the contiguous buffer.
    @inlinable public func withBuffer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// Writes the buffer in place, first copying it if it is shared or borrowed.
    public mutating func withMutableBuffer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) || !storage.isOwned {
            let copy = TensorStorage(uninitializedCount: storage.count)
            copy.pointer.update(from: storage.pointer, count: storage.count)
            storage = copy
        }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// The same values under another shape with the same element count (no copy). One size may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: Tensor.resolveShape(newShape, count: count), storage: storage)
    }

    /// Resolves a single -1 in `shape` against `count`.
    public static func resolveShape(_ shape: [Int], count: Int) -> [Int] {
        var s = shape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(count) elements to \(shape)")
            s[i] = count / known
        }
        precondition(elementCount(s) == count, "cannot reshape \(count) elements to \(shape)")
        return s
    }

    /// A deep copy with its own storage.
    public func copy() -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        t.storage.pointer.update(from: storage.pointer, count: count)
        return t
    }

    public var description: String {
        let n = min(count, 8)
        let head = (0..<n).map { String(format: "%.5g", Double(storage.pointer[$0])) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > n ? ", …" : "")]"
    }
}

import Foundation
