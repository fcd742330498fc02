// Splitting row-wise kernels over the machine's cores. BLAS has its own threads; these loops never run
// inside a BLAS call, and BLAS is never called from inside them unless told to run single-threaded.
import Foundation
import Dispatch
import Synchronization

/// Work-splitting helpers for elementwise and row kernels.
public enum Parallel {
    /// Number of worker threads used by kernels (defaults to the active processor count). Any thread may read
    /// or set it; the value is atomic.
    public static var threadCount: Int {
        get { threadCountStorage.load(ordering: .relaxed) }
        set { threadCountStorage.store(max(1, newValue), ordering: .relaxed) }
    }
    @usableFromInline static let threadCountStorage = Atomic<Int>(max(1, ProcessInfo.processInfo.activeProcessorCount))

    /// Below this much work (elements touched), a kernel runs on the calling thread: waking a thread costs more.
    public static let minimumWorkPerThread = 32_768

    /// Calls `body(range)` over disjoint chunks of `0..<count`, in parallel when `count * costPerItem` pays for it.
    @inlinable
    public static func forRanges(_ count: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let work = count &* max(costPerItem, 1)
        let chunks = min(threadCount, max(1, work / minimumWorkPerThread), count)
        if chunks <= 1 { body(0..<count); return }
        concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Tells idle pool workers to stop spinning (BLAS calls it before each product, which brings its own threads).
    public static func yieldCores() { WorkerPool.shared.standDown.add(1, ordering: .relaxed) }

    /// Runs body(0 ..< iterations) in parallel: on the caller and the persistent workers of `WorkerPool` (which
    /// spin briefly between jobs, so back-to-back kernels skip a thread wake-up), or through
    /// `DispatchQueue.concurrentPerform` when the pool is busy (another thread's job, or a nested call). For a
    /// closure that is not `@Sendable` (kernels capture raw pointers and tensors). Sound because this returns
    /// only after every iteration has finished, so the
    /// closure never outlives this call, and every caller gives each iteration disjoint output memory (a
    /// range, a row, an image) and only reads what the others read.
    public static func concurrentPerform(iterations: Int, _ body: (Int) -> Void) {
        if iterations <= 0 { return }
        if iterations == 1 { body(0); return }
        if WorkerPool.shared.run(iterations: iterations, workers: min(iterations, threadCount) - 1, body) { return }
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: iterations) { i in shared.value(i) }
        }
    }
}

/// A value handed across threads without the compiler's check, for the cases where the check cannot see
/// the invariant that makes it safe. Every use says beside it why the value is not raced on.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    @inlinable public init(_ value: Value) { self.value = value }
}
