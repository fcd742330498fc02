// A progress bar with rate and ETA on standard error (only when it is a terminal, so logs stay clean).
import Foundation

final class ProgressBar {
    let total: Int
    let label: String
    let start = Date()
    let enabled: Bool
    private var lastDraw = Date.distantPast

    init(total: Int, label: String) {
        self.total = max(total, 1)
        self.label = label
        enabled = isatty(2) != 0 && ProcessInfo.processInfo.environment["FLAVA_NO_PROGRESS"] == nil
    }

    func update(_ done: Int, extra: String = "") {
        guard enabled else { return }
        let now = Date()
        if done < total && now.timeIntervalSince(lastDraw) < 0.2 { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let frac = Double(done) / Double(total)
        let width = 28
        let filled = Int(frac * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let line = String(format: "\r%@ %@ %d/%d  %.1f/s  ETA %@ %@", label, bar, done, total, rate, ProgressBar.clock(eta), extra)
        FileHandle.standardError.write(line.data(using: .utf8)!)
        if done >= total { FileHandle.standardError.write("\n".data(using: .utf8)!) }
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%02d:%02d", t / 60, t % 60)
    }
}
