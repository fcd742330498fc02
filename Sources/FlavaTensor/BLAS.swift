// Every matrix product goes through OpenBLAS's cblas_sgemm; this file is the only door to it.
import Synchronization
import CBLAS
import Foundation

/// Matrix products over raw row-major buffers (`cblas_sgemm`).
public enum BLAS {
    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, row-major, with explicit leading dimensions so that
    /// strided views (a head's slice of Q, K, V) need no copy.
    @inlinable
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            // BLAS leaves C untouched when k = 0 only for beta = 1; make the result well defined.
            for i in 0..<m { for j in 0..<n { c[i &* ldc &+ j] = beta == 0 ? 0 : beta * c[i &* ldc &+ j] } }
            return
        }
        Parallel.yieldCores()
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Number of threads OpenBLAS uses for one call.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }

    /// Runs `body` with OpenBLAS limited to one thread, for many small products issued from our own threads.
    /// Safe when several threads do this at once (a server handling requests in parallel, the test runner): the
    /// first to enter saves the thread count and the last to leave restores it, so no caller's products run
    /// multi-threaded from inside another caller's parallel region. OpenBLAS's thread count is one setting for
    /// the whole process, so while any thread is in here, products other threads issue run on one thread as well;
    /// a threaded OpenBLAS product rounds differently from a single-threaded one (last bits), so a pass run beside
    /// another can differ from the same pass run alone by float rounding, never more. One thread at a time (a
    /// training run, the server's one worker) gets the same bits on every run.
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        singleThreadedState.withLock { s in
            if s.depth == 0 {
                s.saved = openblas_get_num_threads()
                if s.saved != 1 { openblas_set_num_threads(1) }
            }
            s.depth += 1
        }
        defer {
            singleThreadedState.withLock { s in
                s.depth -= 1
                if s.depth == 0 && s.saved != 1 { openblas_set_num_threads(s.saved) }
            }
        }
        return try body()
    }

    /// How many callers are inside `singleThreaded`, and the thread count the first of them found.
    private static let singleThreadedState = Mutex<(depth: Int, saved: Int32)>((0, 1))
}
