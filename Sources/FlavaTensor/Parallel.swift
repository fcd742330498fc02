// Splitting row-wise kernels over the machine's cores. BLAS has its own threads; these loops never run
// inside a BLAS call, and BLAS is never called from inside them unless told to run single-threaded.
import Foundation
import Dispatch

/// Work-splitting helpers for elementwise and row kernels.
public enum Parallel {
    /// Number of worker threads used by kernels (defaults to the active processor count).
    nonisolated(unsafe) public static var threadCount: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Below this much work (elements touched), a kernel runs on the calling thread: waking a thread costs more.
    public static let minimumWorkPerThread = 32_768

    /// Calls `body(range)` over disjoint chunks of `0..<count`, in parallel when `count * costPerItem` pays for it.
    @inlinable
    public static func forRanges(_ count: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let work = count &* max(costPerItem, 1)
        let chunks = min(threadCount, max(1, work / minimumWorkPerThread), count)
        if chunks <= 1 { body(0..<count); return }
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = count * c / chunks, hi = count * (c + 1) / chunks
                if lo < hi { body(lo..<hi) }
            }
        }
    }
}
