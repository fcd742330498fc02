// Reference-counted float32 buffer behind a Tensor: owned (malloc'd) or borrowed from an owner such as a
// memory-mapped file, so checkpoints can be read without a second copy.
import Foundation

/// A contiguous buffer of `Float` shared by tensors until one of them writes (copy-on-write in `Tensor`).
/// Sendable (unchecked: it holds a raw pointer): its fields never change after `init`; its contents are
/// written only by the code that allocated it before handing it out, or through `Tensor`'s copy-on-write,
/// which writes in place only when this storage is uniquely referenced.
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
        let raw = BufferPool.shared.allocate(byteCount: bytes)
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
        if owner == nil {
            BufferPool.shared.release(UnsafeMutableRawPointer(pointer), byteCount: max(count, 1) * MemoryLayout<Float>.stride)
        }
    }
}

/// A size-keyed cache of large buffers. Training and inference allocate the same activation shapes every
/// step; handing back a recently freed buffer of the same size avoids returning memory to the OS and taking
/// page faults on it again (each fresh 5 MB activation costs ~1,200 faults). Small buffers go straight to
/// malloc. The cache holds at most `limitBytes`; anything beyond is freed at once.
/// Sendable (unchecked: raw pointers and a C mutex): every mutable field is read and written under `lock`.
public final class BufferPool: @unchecked Sendable {
    public static let shared = BufferPool()

    /// Buffers below this size are not cached.
    public let minimumBytes = 64 * 1024
    /// Most bytes kept in the cache.
    public var limitBytes: Int {
        get { pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }; return limit }
        set { pthread_mutex_lock(lock); limit = max(0, newValue); pthread_mutex_unlock(lock) }
    }
    /// FLAVA_BUFFER_POOL_MB if set, else a sixth of physical memory between 1 and 8 GiB. A full-size training
    /// step at batch 4 frees about 1.1 GB of activations that a 1 GiB cache could not keep: 275,000 page faults
    /// a step, gone with 4 GiB (24 GiB machine; BENCHMARKS.md).
    private var limit: Int = {
        if let v = ProcessInfo.processInfo.environment["FLAVA_BUFFER_POOL_MB"], let mb = Int(v), mb >= 0 { return mb << 20 }
        return min(8 << 30, max(1 << 30, Int(ProcessInfo.processInfo.physicalMemory / 6)))
    }()

    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var cachedBytes = 0
    // A heap-allocated mutex: `&storedProperty` is not guaranteed to be a stable address in Swift.
    private let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let p = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(p, nil)
        return p
    }()

    init() {}

    /// A 64-byte aligned buffer of `byteCount` bytes (contents undefined).
    public func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        if byteCount >= minimumBytes {
            pthread_mutex_lock(lock)
            if let p = free[byteCount]?.popLast() {
                cachedBytes -= byteCount
                pthread_mutex_unlock(lock)
                return p
            }
            pthread_mutex_unlock(lock)
        }
        return UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
    }

    /// Returns a buffer obtained from `allocate`.
    public func release(_ p: UnsafeMutableRawPointer, byteCount: Int) {
        if byteCount >= minimumBytes {
            pthread_mutex_lock(lock)
            if cachedBytes + byteCount <= limit {
                free[byteCount, default: []].append(p)
                cachedBytes += byteCount
                pthread_mutex_unlock(lock)
                return
            }
            pthread_mutex_unlock(lock)
        }
        p.deallocate()
    }

    /// Frees every cached buffer.
    public func trim() {
        pthread_mutex_lock(lock)
        for (_, list) in free { for p in list { p.deallocate() } }
        free = [:]
        cachedBytes = 0
        pthread_mutex_unlock(lock)
    }
}
