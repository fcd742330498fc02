// Shared helpers for the test targets: where the golden data lives, and llm.c-style closeness checks.
import Foundation
import FlavaKit

/// Paths the tests read from.
public enum TestPaths {
    /// The package root (two levels above this file's folder).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// ../shared/reference beside the package: the golden data from the reference implementation.
    public static let reference: URL = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/reference")
    /// Fixtures committed with the tests.
    public static let fixtures: URL = packageRoot.appendingPathComponent("Tests/Fixtures")
    /// A fresh temporary directory, inside this test process's own folder, which is removed when the process
    /// exits (tests need not remove theirs; a crashed run leaves its folder under $TMPDIR/flava-tests-PID-*).
    public static func temporaryDirectory() -> URL {
        let url = processFolder.appendingPathComponent(UUID().uuidString)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// $TMPDIR/flava-tests-PID-RANDOM, created on first use, removed at exit.
    static let processFolder: URL = {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("flava-tests-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TestPaths.processFolder) }
        return url
    }()
}

/// Element-wise |a − b| ≤ atol + rtol·|b|. Returns nil when close, else a report of the worst elements.
public func closenessReport(_ a: Tensor, _ b: Tensor, atol: Float, rtol: Float, name: String = "") -> String? {
    guard a.shape == b.shape else { return "\(name): shape \(a.shape) vs expected \(b.shape)" }
    var bad: [(Int, Float, Float, Float)] = []
    var maxDiff: Float = 0
    for i in 0..<a.count {
        let x = a[flat: i], y = b[flat: i]
        let d = abs(x - y)
        if d.isNaN || d > maxDiff { maxDiff = d.isNaN ? .nan : max(maxDiff, d) }
        if !(d <= atol + rtol * abs(y)) { bad.append((i, x, y, d)) }
    }
    if bad.isEmpty { return nil }
    let worst = bad.sorted { $0.3 > $1.3 }.prefix(5).map { "[\($0.0)] got \($0.1) want \($0.2)" }
    return "\(name): \(bad.count)/\(a.count) elements off, max |diff| \(maxDiff); worst: \(worst.joined(separator: ", "))"
}

/// Runs the release `flava` binary (built by `swift build -c release` before the tests) and returns its exit
/// status, standard output and standard error.
/// A run still going after `timeout` seconds is killed (SIGKILL), so a hang fails the test instead of stalling the
/// suite; its status is then non-zero.
public func runFlava(_ args: [String], input: String? = nil, executable: String = "flava",
                     timeout: TimeInterval = 900) throws -> (status: Int32, out: String, err: String) {
    let exe = TestPaths.packageRoot.appendingPathComponent(".build/release/" + executable)
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    p.currentDirectoryURL = TestPaths.packageRoot
    var env = ProcessInfo.processInfo.environment
    env["FLAVA_NO_PROGRESS"] = "1"
    p.environment = env
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out; p.standardError = err; p.standardInput = inp
    try p.run()
    let pid = p.processIdentifier
    let killer = DispatchWorkItem { kill(pid, SIGKILL) }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    if let input { inp.fileHandleForWriting.write(input.data(using: .utf8)!) }
    try? inp.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    killer.cancel()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// step → losses of a run's metrics.jsonl (one TrainingLogEntry per line).
public func metricsLosses(_ path: String) throws -> [Int: [String: Double]] {
    var out: [Int: [String: Double]] = [:]
    for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
        let e = try JSONDecoder().decode(TrainingLogEntry.self, from: Data(line.utf8))
        out[e.step] = e.losses
    }
    return out
}
