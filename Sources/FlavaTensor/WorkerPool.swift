// A small pool of persistent worker threads behind Parallel.concurrentPerform. Each worker spins briefly for the
// next job before it sleeps, so the back-to-back kernels of a forward pass (a few hundred per pass, tens of
// microseconds each at batch 1) do not each pay a thread wake-up, as libdispatch's concurrentPerform does.
import Foundation
import Synchronization

/// One job at a time: a second caller (another thread, or a kernel inside a kernel) is refused and uses Dispatch.
///
/// A job is published in `ticket` = (job number << 32) | next index. A worker claims index i of job g only by
/// swapping ticket (g, i) for (g, i + 1) while i < count, so a worker that wakes late never runs an index of a job
/// that is done or of the next one: the ticket has moved on and its swap fails.
final class WorkerPool: @unchecked Sendable {
    // Unchecked Sendable: every field shared with the workers is an atomic, or (the condition's `sleepers`) only
    // touched under the condition's lock.
    static let shared = WorkerPool()

    private let busy = Atomic<Bool>(false)
    private let ticket = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let body = Atomic<UnsafeRawPointer?>(nil)
    /// Bumped before each OpenBLAS product: idle workers stop spinning and sleep, leaving the cores to OpenBLAS's
    /// own threads (spinning beside them measured 20–25 % slower float32 encoders).
    let standDown = Atomic<Int>(0)
    private let count = Atomic<Int>(0)
    private let condition = NSCondition()
    private var sleepers = 0
    private var started = 0          // only the caller holding `busy` reads or writes it
    private var job = 0              // likewise
    /// Loads of the ticket before an idle worker sleeps (tens of microseconds).
    private let spins = 20_000

    private typealias Body = (Int) -> Void

    /// Runs body(0 ..< n) on the caller and `workers` pool threads; false (nothing run) when the pool is busy.
    func run(iterations n: Int, workers wanted: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        while started < wanted {
            let t = Thread { [unowned self] in self.work() }
            t.name = "flava-worker"
            t.start()
            started += 1
        }
        job = (job &+ 1) & 0x7fff_ffff
        let first = job << 32
        withoutActuallyEscaping(body) { esc in
            withUnsafePointer(to: esc) { p in
                self.body.store(UnsafeRawPointer(p), ordering: .relaxed)
                count.store(n, ordering: .relaxed)
                remaining.store(n, ordering: .relaxed)
                ticket.store(first, ordering: .releasing)
                condition.lock()
                if sleepers > 0 { condition.broadcast() }
                condition.unlock()
                drain(job: first)
                while remaining.load(ordering: .acquiring) > 0 {}
                self.body.store(nil, ordering: .relaxed)
            }
        }
        return true
    }

    /// Claims and runs indices of the job whose first ticket is `first` until none are left.
    private func drain(job first: Int) {
        while true {
            let t = ticket.load(ordering: .acquiring)
            guard t >> 32 == first >> 32 else { return }
            let i = t & 0xffff_ffff
            let n = count.load(ordering: .relaxed)
            guard i < n, let raw = body.load(ordering: .relaxed) else { return }
            // Read before the swap; used only when the swap proves the job is still this one and i unclaimed.
            guard ticket.compareExchange(expected: t, desired: t + 1, ordering: .acquiringAndReleasing).exchanged else { continue }
            call(raw.assumingMemoryBound(to: Body.self), i)
            remaining.subtract(1, ordering: .releasing)
        }
    }

    @inline(never)
    private func call(_ p: UnsafePointer<Body>, _ i: Int) { p.pointee(i) }

    private func work() {
        var seen = ticket.load(ordering: .acquiring) >> 32
        while true {
            var t = ticket.load(ordering: .acquiring)
            var s = 0
            let quiet = standDown.load(ordering: .relaxed)
            while t >> 32 == seen && s < spins && standDown.load(ordering: .relaxed) == quiet {
                s += 1; t = ticket.load(ordering: .acquiring)
            }
            if t >> 32 == seen {
                condition.lock()
                sleepers += 1
                while ticket.load(ordering: .acquiring) >> 32 == seen { condition.wait() }
                sleepers -= 1
                condition.unlock()
                t = ticket.load(ordering: .acquiring)
            }
            seen = t >> 32
            drain(job: t)
        }
    }
}
