// Data-parallel collectives: one protocol, an in-process implementation for one process and an MPI one for
// `mpirun` (MPICommunicator.swift). Training code talks only to `Communicator`; nothing but MPICommunicator
// touches MPI, so everything builds, runs and tests without it.
//
// A collective that cannot complete (another rank died or hangs) never hangs this rank: after the communicator's
// timeout it prints one line naming the collective and ends the whole job (MPI_Abort), so collectives do not throw.
import Foundation

/// Element types the collectives move.
public protocol CollectiveElement: Numeric, Sendable {
    static var collectiveType: Int32 { get }
}
extension Float: CollectiveElement { public static var collectiveType: Int32 { 0 } }
extension Int32: CollectiveElement { public static var collectiveType: Int32 { 1 } }
extension Double: CollectiveElement { public static var collectiveType: Int32 { 2 } }

/// How an all-reduce or reduce-scatter combines the ranks' values.
public enum ReduceOperation: Int32, Sendable { case sum = 0, max = 1 }

/// The ranks of a data-parallel job. Every rank must call the same collectives in the same order with the same
/// counts; results are identical on every rank (the MPI standard requires it for all-reduce).
public protocol Communicator: AnyObject {
    /// This process's rank, 0..<size.
    var rank: Int { get }
    /// Number of processes.
    var size: Int { get }
    /// In place: every rank ends with the element-wise combination of all ranks' buffers.
    func allReduce<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOperation)
    /// `send` (count elements) from every rank into `receive` (size × count), in rank order.
    func allGather<T: CollectiveElement>(_ send: UnsafeBufferPointer<T>, into receive: UnsafeMutableBufferPointer<T>)
    /// `send` holds size blocks of receive.count elements; rank r receives the combination of every rank's block r.
    func reduceScatter<T: CollectiveElement>(_ send: UnsafeBufferPointer<T>, into receive: UnsafeMutableBufferPointer<T>, _ op: ReduceOperation)
    /// In place: every rank ends with `root`'s buffer.
    func broadcast<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int)
    /// Returns once every rank has called it.
    func barrier()
    /// What this rank's collectives have moved and waited so far (zero for one process).
    var traffic: CollectiveTraffic { get }
}

/// Counters of a rank's collectives: calls, payload bytes (each call's buffer on this rank: what an all-reduce
/// reduces, what an all-gather receives, what a reduce-scatter sends), and seconds from start to completion
/// (transfer, reduction, and waiting for slower ranks).
public struct CollectiveTraffic: Sendable, Equatable {
    public var calls = 0
    public var payloadBytes = 0
    public var seconds = 0.0
    public init() {}
    /// The counts since `earlier`.
    public func since(_ earlier: CollectiveTraffic) -> CollectiveTraffic {
        var d = CollectiveTraffic()
        d.calls = calls - earlier.calls; d.payloadBytes = payloadBytes - earlier.payloadBytes; d.seconds = seconds - earlier.seconds
        return d
    }
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }
    public var traffic: CollectiveTraffic { CollectiveTraffic() }

    /// All-reduce of an array.
    public func allReduce<T: CollectiveElement>(_ values: [T], _ op: ReduceOperation = .sum) -> [T] {
        var v = values
        if size > 1 { v.withUnsafeMutableBufferPointer { allReduce($0, op) } }
        return v
    }

    /// All-gather of equal-length arrays: every rank's values, concatenated in rank order.
    public func allGather<T: CollectiveElement>(_ values: [T]) -> [T] {
        guard size > 1 else { return values }
        var out = [T](repeating: 0, count: values.count * size)
        values.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { allGather(s, into: $0) } }
        return out
    }

    /// Broadcast of an array from `root` (every rank passes an array of the same length).
    public func broadcast<T: CollectiveElement>(_ values: [T], root: Int = 0) -> [T] {
        var v = values
        if size > 1 { v.withUnsafeMutableBufferPointer { broadcast($0, root: root) } }
        return v
    }

    /// Whether every rank passed the same value (a cheap check that the ranks agree on a setting or a step).
    public func agree(_ value: Int) -> Bool {
        guard size > 1 else { return true }
        let r = allReduce([Double(value), -Double(value)], .max)
        return r[0] == Double(value) && -r[1] == Double(value)
    }
}

/// One process: every collective is the identity (a copy where the output is another buffer).
public final class LocalCommunicator: Communicator, @unchecked Sendable {
    public static let shared = LocalCommunicator()
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduce<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOperation) {}
    public func allGather<T: CollectiveElement>(_ send: UnsafeBufferPointer<T>, into receive: UnsafeMutableBufferPointer<T>) {
        precondition(receive.count == send.count, "all-gather: \(receive.count) slots for \(send.count) elements on one rank")
        _ = receive.initialize(from: send)
    }
    public func reduceScatter<T: CollectiveElement>(_ send: UnsafeBufferPointer<T>, into receive: UnsafeMutableBufferPointer<T>, _ op: ReduceOperation) {
        precondition(receive.count == send.count, "reduce-scatter: \(receive.count) slots for \(send.count) elements on one rank")
        _ = receive.initialize(from: send)
    }
    public func broadcast<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) {}
    public func barrier() {}
}

/// The processes of this job: MPI's world when started by `mpirun` (Open MPI sets OMPI_COMM_WORLD_SIZE), one
/// local process otherwise.
public enum DataParallel {
    nonisolated(unsafe) private static var cached: Communicator?
    private static let lock = NSLock()

    /// Whether this process was started by mpirun (or another Open MPI launcher).
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil
    }

    /// The job's communicator (initializing MPI on first use when launched by mpirun). Throws when mpirun started
    /// the process but MPI cannot be loaded or initialized.
    public static func world() throws -> Communicator {
        lock.lock(); defer { lock.unlock() }
        if let c = cached { return c }
        let c: Communicator = launchedByMPI ? try MPICommunicator.start() : LocalCommunicator.shared
        cached = c
        return c
    }

    /// The communicator if one was started, without starting one.
    public static var current: Communicator? { lock.lock(); defer { lock.unlock() }; return cached }

    /// Ends MPI cleanly (every rank calls it before a normal exit). Nothing when running alone.
    public static func finish() {
        lock.lock(); defer { lock.unlock() }
        (cached as? MPICommunicator)?.finalize()
    }

    /// Ends a failed job from any rank: the message on one line (prefixed by the rank when there are several),
    /// then every rank is ended with `code`. Returns only for a single process (the caller exits).
    public static func abort(_ message: String, code: Int32 = 1) {
        lock.lock(); let c = cached; lock.unlock()
        if let m = c as? MPICommunicator, m.size > 1 {
            FileHandle.standardError.write(Data("error (rank \(m.rank) of \(m.size)): \(message)\n".utf8))
            m.abort(code)
        }
    }
}
