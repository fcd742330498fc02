// Reference-counted float32 buffer behind a Tensor: owned (malloc'd) or borrowed from an owner such as a
// memory-mapped file, so checkpoints can be read without a second copy.
import Foundation

/// A contiguous buffer of `Float` shared by tensors until one of them writes (copy-on-write in `Tensor`).
public final class TensorStorage: @unchecked Sendable {
    /// First element.
    public let pointer: UnsafeMutablePointer<Float>
    /// Number of elements.
    public let count: Int
    private let owner: AnyObject?

    /// Allocates `count` uninitialized floats (64-byte aligned, as SIMD loads and BLAS prefer).
    public init(uninitializedCount count: Int) {
        precondition(count >= 0, "negative element count \(count)")
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        owner = nil
    }

    /// Wraps memory that `owner` keeps alive (for example a memory-mapped file region).
    public init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = pointer
        self.count = count
        self.owner = owner
    }

    /// True when this storage owns its memory (it may then be written in place).
    public var isOwned: Bool { owner == nil }

    deinit {
        if owner == nil { UnsafeMutableRawPointer(pointer).deallocate() }
    }
}
