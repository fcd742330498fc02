// The communicator of an `mpirun` job, over Open MPI through the CMPI shim. Only the thread that started MPI calls
// it (MPI_THREAD_FUNNELED): the training loop's. Each collective is started nonblocking and completed by polling
// MPI_Test with a deadline, so a rank whose peer died or hangs ends the job with one line instead of waiting
// forever (Open MPI 4 has no collective timeout of its own).
import Foundation
import CMPI

public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// Seconds a collective may take before the job is ended (FLAVA_COLLECTIVE_TIMEOUT, default 900: long enough
    /// for rank 0 to evaluate and write a checkpoint while the others wait).
    public let timeout: Double
    private var finalized = false
    public private(set) var traffic = CollectiveTraffic()

    private init(rank: Int, size: Int, timeout: Double) { self.rank = rank; self.size = size; self.timeout = timeout }

    static func start() throws -> MPICommunicator {
        let env = ProcessInfo.processInfo.environment
        var message = [CChar](repeating: 0, count: 1024)
        let path = env["FLAVA_MPI_LIBRARY"]
        let loaded = path.map { p in p.withCString { cmpi_load($0, &message, 1024) } } ?? cmpi_load(nil, &message, 1024)
        guard loaded == 0 else { throw DataParallelError(String(cString: message)) }
        var r: Int32 = 0, s: Int32 = 0
        let rc = cmpi_init(&r, &s)
        guard rc == 0 else { throw DataParallelError("MPI_Init_thread failed: \(errorText(rc))") }
        var timeout = 900.0
        if let t = env["FLAVA_COLLECTIVE_TIMEOUT"] {
            guard let v = Double(t), v > 0, v.isFinite else {
                throw DataParallelError("FLAVA_COLLECTIVE_TIMEOUT='\(t)': must be a positive number of seconds")
            }
            timeout = v
        }
        return MPICommunicator(rank: Int(r), size: Int(s), timeout: timeout)
    }

    static func errorText(_ code: Int32) -> String {
        var text = [CChar](repeating: 0, count: 512)
        cmpi_error_string(code, &text, 512)
        return String(cString: text)
    }

    func finalize() {
        guard !finalized else { return }
        finalized = true
        _ = cmpi_finalize()
    }

    func abort(_ code: Int32) -> Never {
        cmpi_abort(code)
        exit(code)
    }

    /// Ends the job with a line naming the collective.
    private func fail(_ what: String, _ reason: String) -> Never {
        FileHandle.standardError.write(Data("error (rank \(rank) of \(size)): \(what) \(reason); ending the job\n".utf8))
        abort(1)
    }

    /// Runs a started collective to completion within the timeout (polling: spin briefly, then every ~10 µs, and
    /// after two seconds of waiting a little less often each time, up to 1 ms, so ranks waiting long leave the
    /// cores to the ones still computing).
    private func complete(_ what: String, bytes: Int, _ start: (UnsafeMutablePointer<cmpi_request?>) -> Int32) {
        let began = DispatchTime.now().uptimeNanoseconds
        defer {
            traffic.calls += 1; traffic.payloadBytes += bytes
            traffic.seconds += Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9
        }
        var request: cmpi_request? = nil
        let rc = start(&request)
        guard rc == 0 else { fail(what, "failed: \(MPICommunicator.errorText(rc))") }
        let deadline = Date().addingTimeInterval(timeout)
        var done: Int32 = 0, polls = 0, pause: UInt32 = 10
        let patientAfter = Date().addingTimeInterval(2)
        while true {
            let t = cmpi_test(&request, &done)
            guard t == 0 else { fail(what, "failed: \(MPICommunicator.errorText(t))") }
            if done != 0 { return }
            polls += 1
            if polls > 200 {
                // Open MPI's TCP transfers advance only inside MPI_Test here (no progress thread), so the first
                // seconds poll every ~10 µs (longer pauses cut a 25 MB all-reduce's bandwidth by 3-4×);
                // a longer wait (rank 0 evaluating, a slow peer) backs off to 1 ms to leave the core alone.
                usleep(pause)
                if polls % 64 == 0 {
                    let now = Date()
                    if now > patientAfter { pause = min(max(pause * 2, 20), 1000) }
                    if now > deadline {
                        fail(what, "did not complete within \(Int(timeout)) s (another rank died or hangs; FLAVA_COLLECTIVE_TIMEOUT sets the limit)")
                    }
                }
            }
        }
    }

    private func count(_ n: Int, _ what: String) -> Int32 {
        guard n <= Int(Int32.max) else { fail(what, "of \(n) elements is larger than MPI's 2^31-1 (split it)") }
        return Int32(n)
    }

    public func allReduce<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOperation) {
        guard size > 1, buffer.count > 0 else { return }
        let n = count(buffer.count, "all-reduce")
        complete("all-reduce of \(n) values", bytes: buffer.count * MemoryLayout<T>.size) {
            cmpi_iallreduce(buffer.baseAddress, n, cmpi_type(UInt32(T.collectiveType)), cmpi_op(UInt32(op.rawValue)), $0)
        }
    }

    public func allGather<T: CollectiveElement>(_ send: UnsafeBufferPointer<T>, into receive: UnsafeMutableBufferPointer<T>) {
        precondition(receive.count == send.count * size, "all-gather: \(receive.count) slots for \(size) × \(send.count) elements")
        let n = count(send.count, "all-gather")
        complete("all-gather of \(n) values per rank", bytes: receive.count * MemoryLayout<T>.size) {
            cmpi_iallgather(send.baseAddress, receive.baseAddress, n, cmpi_type(UInt32(T.collectiveType)), $0)
        }
    }

    public func reduceScatter<T: CollectiveElement>(_ send: UnsafeBufferPointer<T>, into receive: UnsafeMutableBufferPointer<T>, _ op: ReduceOperation) {
        precondition(send.count == receive.count * size, "reduce-scatter: \(send.count) elements for \(size) × \(receive.count) slots")
        let n = count(receive.count, "reduce-scatter")
        complete("reduce-scatter of \(n) values per rank", bytes: send.count * MemoryLayout<T>.size) {
            cmpi_ireduce_scatter_block(send.baseAddress, receive.baseAddress, n, cmpi_type(UInt32(T.collectiveType)),
                                       cmpi_op(UInt32(op.rawValue)), $0)
        }
    }

    public func broadcast<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) {
        guard size > 1, buffer.count > 0 else { return }
        let n = count(buffer.count, "broadcast")
        complete("broadcast of \(n) values from rank \(root)", bytes: buffer.count * MemoryLayout<T>.size) {
            cmpi_ibcast(buffer.baseAddress, n, cmpi_type(UInt32(T.collectiveType)), Int32(root), $0)
        }
    }

    public func barrier() {
        guard size > 1 else { return }
        complete("barrier", bytes: 0) { cmpi_ibarrier($0) }
    }
}

/// Data-parallel start-up that cannot go on (MPI missing, a setting that does not fit the job).
public struct DataParallelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
