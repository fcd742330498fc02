// Small SVG line charts for run reports (report.svg of pretraining and codebook training).
import Foundation
import FlavaKit

enum SVGCharts {
    /// The entries of a JSON-lines log that decode as `T` (nil when the file cannot be read).
    static func entries<T: Decodable>(_ type: T.Type, in path: String) -> [T]? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let decoder = JSONDecoder()
        return text.split(separator: "\n").compactMap { try? decoder.decode(T.self, from: Data($0.utf8)) }
    }

    /// report.svg of a training run's metrics.jsonl: `pick` names the series each entry adds a point to.
    static func trainingReport(metrics: String, to path: String, pick: (TrainingLogEntry) -> [(String, Double)]) throws {
        guard let entries = entries(TrainingLogEntry.self, in: metrics) else { return }
        var series: [String: [(Int, Double)]] = [:]
        for e in entries { for (name, v) in pick(e) where v.isFinite { series[name, default: []].append((e.step, v)) } }
        try write(series, to: path)
    }

    /// One panel per series, three per row; series whose name starts with "eval" are drawn as measured, the
    /// others smoothed with a running mean of 20 steps for readability.
    static func write(_ series: [String: [(Int, Double)]], to path: String) throws {
        let names = series.keys.sorted()
        let w = 360, h = 200, cols = 3
        let rows = (names.count + cols - 1) / cols
        var svg = "<svg xmlns='http://www.w3.org/2000/svg' width='\(cols * (w + 20))' height='\(rows * (h + 40))' font-family='sans-serif' font-size='12'>"
        for (i, name) in names.enumerated() {
            let pts = series[name]!
            // Smooth losses with a running mean of 20 steps for readability.
            var smooth: [(Int, Double)] = []
            var window: [Double] = []
            for (s, v) in pts { window.append(v); if window.count > 20 && !name.hasPrefix("eval") { window.removeFirst() }; smooth.append((s, name.hasPrefix("eval") ? v : window.reduce(0, +) / Double(window.count))) }
            let x0 = (i % cols) * (w + 20) + 10, y0 = (i / cols) * (h + 40) + 20
            let maxS = Double(smooth.map(\.0).max() ?? 1), lo = smooth.map(\.1).min() ?? 0, hi = max(smooth.map(\.1).max() ?? 1, lo + 1e-6)
            let poly = smooth.map { String(format: "%.1f,%.1f", Double(x0) + Double($0.0) / maxS * Double(w), Double(y0 + h) - ($0.1 - lo) / (hi - lo) * Double(h)) }.joined(separator: " ")
            svg += "<rect x='\(x0)' y='\(y0)' width='\(w)' height='\(h)' fill='none' stroke='#ccc'/>"
            svg += "<text x='\(x0)' y='\(y0 - 5)'>\(name) (\(String(format: "%.3g", lo))–\(String(format: "%.3g", hi)))</text>"
            svg += "<polyline fill='none' stroke='#1f77b4' stroke-width='1.5' points='\(poly)'/>"
        }
        svg += "</svg>"
        try svg.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
