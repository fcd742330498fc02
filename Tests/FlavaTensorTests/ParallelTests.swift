// Parallel.concurrentPerform through the persistent worker pool: every index once, from one caller, from nested
// calls (which fall back to Dispatch) and from several threads at once (one gets the pool, the others Dispatch).
import Testing
import Foundation
import Synchronization
import FlavaTensor

@Test func concurrentPerformRunsEveryIndexOnce() {
    for n in [2, 3, 7, 64, 1000] {
        for _ in 0..<200 {
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: n)
            hits.initialize(repeating: 0, count: n)
            defer { hits.deallocate() }
            Parallel.concurrentPerform(iterations: n) { i in hits[i] += 1 }
            #expect((0..<n).allSatisfy { hits[$0] == 1 }, "n = \(n)")
        }
    }
}

@Test func concurrentPerformNestsAndServesSeveralThreads() {
    let total = Atomic<Int>(0)
    DispatchQueue.concurrentPerform(iterations: 6) { _ in
        for _ in 0..<50 {
            Parallel.concurrentPerform(iterations: 4) { _ in
                Parallel.concurrentPerform(iterations: 3) { _ in total.add(1, ordering: .relaxed) }
            }
        }
    }
    #expect(total.load(ordering: .relaxed) == 6 * 50 * 4 * 3)
}
