// Integer tensors: token ids, labels, masks and indices (int64 in checkpoints and golden data).

/// A row-major tensor of integers (ids, labels, 0/1 masks).
public struct IntTensor: Sendable, Equatable, CustomStringConvertible {
    /// Sizes of each dimension.
    public var shape: [Int]
    /// Row-major values.
    public var values: [Int]

    /// A tensor from row-major values.
    public init(shape: [Int], _ values: [Int]) {
        precondition(Tensor.elementCount(shape) == values.count,
                     "shape \(shape) needs \(Tensor.elementCount(shape)) values, got \(values.count)")
        self.shape = shape
        self.values = values
    }

    /// A tensor filled with `value`.
    public init(shape: [Int], repeating value: Int) {
        self.init(shape: shape, Array(repeating: value, count: Tensor.elementCount(shape)))
    }

    /// Number of elements.
    public var count: Int { values.count }

    /// The same values as float32.
    public var asFloat: Tensor { Tensor(shape: shape, values.map { Float($0) }) }

    /// The same values under another shape.
    public func reshaped(_ newShape: [Int]) -> IntTensor {
        IntTensor(shape: Tensor.resolveShape(newShape, count: count), values)
    }

    public var description: String { "IntTensor\(shape)\(values.prefix(8))\(count > 8 ? "…" : "")" }
}
