// Choosing OpenBLAS's kernels. Debian's OpenBLAS 0.3.21 is built with DYNAMIC_ARCH and picks its kernels when
// the library loads; on CPUs newer than the build (Sapphire Rapids and later) its detection fails and it falls
// back to "Prescott" (SSE3) kernels, about 5× slower for float32 GEMM (≈45 vs ≈230 GFLOP/s on our 2-core
// machines). The choice can only be made through OPENBLAS_CORETYPE before the library loads, so executables
// call `BLASRuntime.ensureFastKernels()` first thing: when detection failed and the user set nothing, it sets
// the variable to the best kernel family the CPU supports and re-executes the program once.
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

    /// Re-executes the current program with OPENBLAS_CORETYPE set when OpenBLAS fell back to generic kernels
    /// on a CPU with AVX2/AVX-512. Does nothing if the user set OPENBLAS_CORETYPE, if FLAVA_BLAS_AUTO=0, or if
    /// detection worked. Returns normally only when no re-exec happened.
    public static func ensureFastKernels() {
        let env = ProcessInfo.processInfo.environment
        if env["OPENBLAS_CORETYPE"] != nil || env["FLAVA_BLAS_AUTO"] == "0" { return }
        guard coreName == "Prescott" || coreName == "Core2" || coreName == "Nehalem",
              let best = bestCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", best, 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", cargs)
        // execv returned: carry on with the slow kernels rather than fail.
        unsetenv("OPENBLAS_CORETYPE")
    }
}
