// Memory figures of the running process, for benchmarks and capacity planning.
import Foundation

/// Resident-memory readings from /proc/self/status.
public enum ProcessMemory {
    /// Peak resident set size (VmHWM) in bytes, or 0 where /proc is unavailable.
    public static var peakResidentBytes: Int { field("VmHWM:") }
    /// Current resident set size (VmRSS) in bytes.
    public static var residentBytes: Int { field("VmRSS:") }

    static func field(_ name: String) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix(name) {
            // "VmHWM:\t  123456 kB": the padding is tabs and spaces.
            return (line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int($0) }.first ?? 0) * 1024
        }
        return 0
    }
}
