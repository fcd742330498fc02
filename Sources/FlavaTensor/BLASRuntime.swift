// Choosing OpenBLAS's kernels. Debian's OpenBLAS 0.3.21 is built with DYNAMIC_ARCH and picks its kernels when
// the library loads; on CPUs newer than the build (Sapphire Rapids and later) its detection fails and it falls
// back to "Prescott" (SSE3) kernels, about 5× slower for float32 GEMM (≈45 vs ≈230 GFLOP/s on our 2-core
// machines). The choice can only be made through OPENBLAS_CORETYPE before the library loads, so executables
// call `BLASRuntime.ensureFastKernels()` first thing: when detection failed and the user set nothing, it sets
// the variable to the best kernel family the CPU supports and re-executes the program once.
//
// The same call sets OPENBLAS_THREAD_TIMEOUT=4 (when unset): OpenBLAS's idle worker threads then sleep after
// about 2^4 cycles instead of spinning with sched_yield for 2^28. With as many threads as cores, a spinning
// OpenBLAS worker takes a core from our own parallel loops (LayerNorm, softmax, GELU, AdamW) between GEMMs;
// measured on an Intel Xeon (2 cores): full-size training step 13.56 → 11.42 s, small 0.43 → 0.36 s
// (BENCHMARKS.md). OpenBLAS reads the variable only when it loads, hence the re-execution.
import Foundation
import CBLAS

/// OpenBLAS kernel selection.
public enum BLASRuntime {
    /// The kernel family OpenBLAS is using (e.g. "SkylakeX", "Haswell", "Prescott").
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS's build configuration string.
    public static var config: String { String(cString: openblas_get_config()) }

    /// The best OpenBLAS 0.3.21 kernel family for this CPU from /proc/cpuinfo, or nil if unknown.
    public static func bestCoreType() -> String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// What OpenBLAS's idle threads wait for before sleeping (2^N cycles), as set for this process.
    public static let threadTimeout = "4"

    /// Re-executes the current program once with OPENBLAS_CORETYPE set when OpenBLAS fell back to generic
    /// kernels on a CPU with AVX2/AVX-512, and with OPENBLAS_THREAD_TIMEOUT set when it is unset. Variables the
    /// user set are kept; FLAVA_BLAS_AUTO=0 turns the whole thing off. Returns normally only when no re-exec
    /// happened (or it failed: the program then carries on as it is).
    /// Under mpirun with several ranks on this machine (OMPI_COMM_WORLD_LOCAL_SIZE), each rank's threads (ours and
    /// OpenBLAS's) are the cores divided among them, unless OPENBLAS_NUM_THREADS is set (then both use it).
    public static var threadsPerRank: Int? {
        let env = ProcessInfo.processInfo.environment
        if let t = env["OPENBLAS_NUM_THREADS"].flatMap(Int.init), t >= 1 { return t }
        guard let local = env["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init), local > 1 else { return nil }
        return max(1, ProcessInfo.processInfo.activeProcessorCount / local)
    }

    public static func ensureFastKernels() {
        let env = ProcessInfo.processInfo.environment
        if let t = threadsPerRank { Parallel.threadCount = t }
        if env["FLAVA_BLAS_AUTO"] == "0" || env["FLAVA_BLAS_CONFIGURED"] != nil { return }
        var set: [(String, String)] = []
        if env["OPENBLAS_NUM_THREADS"] == nil, let t = threadsPerRank { set.append(("OPENBLAS_NUM_THREADS", String(t))) }
        if env["OPENBLAS_CORETYPE"] == nil, coreName == "Prescott" || coreName == "Core2" || coreName == "Nehalem",
           let best = bestCoreType() {
            set.append(("OPENBLAS_CORETYPE", best))
        }
        if env["OPENBLAS_THREAD_TIMEOUT"] == nil { set.append(("OPENBLAS_THREAD_TIMEOUT", threadTimeout)) }
        guard !set.isEmpty else { return }
        for (k, v) in set { setenv(k, v, 1) }
        setenv("FLAVA_BLAS_CONFIGURED", "1", 1)   // once: never a loop of re-executions
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", cargs)
        // execv returned: carry on with the kernels we have rather than fail.
        for (k, _) in set { unsetenv(k) }
        unsetenv("FLAVA_BLAS_CONFIGURED")
    }
}
