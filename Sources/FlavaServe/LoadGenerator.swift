// Load on a running flava serve over loopback (flava-bench serve-load and serve-soak, and the CI soak test):
// closed-loop clients, each on its own thread with LoopbackClient, sending requests back to back.
//   load: one request body at several concurrency levels → throughput and latency percentiles.
//   soak: a mix of valid and invalid requests for a while → every valid one 200, every invalid one its 4xx,
//         the server alive, and its resident memory sampled (flat after warm-up is the target).
import Foundation

public struct LoadResult: Codable, Sendable {
    public var concurrency: Int
    public var requests: Int
    public var failures: Int
    public var seconds: Double
    public var requestsPerSecond: Double
    public var p50Milliseconds: Double
    public var p99Milliseconds: Double
}

public enum LoadGenerator {
    /// `requests` POSTs of `body` to `path` from `concurrency` clients (after `warmup` requests not counted).
    public static func run(port: Int, path: String, body: Data, concurrency: Int, requests: Int, warmup: Int = 2,
                           headers: [String: String] = [:]) -> LoadResult {
        for _ in 0..<warmup { _ = try? LoopbackClient.post(port: port, path: path, json: body, headers: headers) }
        final class Tally: @unchecked Sendable { let lock = NSLock(); var latencies: [Double] = [], failures = 0, next = 0 }
        let tally = Tally()
        let group = DispatchGroup()
        let start = Date()
        for _ in 0..<concurrency {
            group.enter()
            let t = Thread {
                while true {
                    tally.lock.lock()
                    guard tally.next < requests else { tally.lock.unlock(); break }
                    tally.next += 1
                    tally.lock.unlock()
                    let t0 = Date()
                    let ok = (try? LoopbackClient.post(port: port, path: path, json: body, headers: headers))?.status == 200
                    let ms = Date().timeIntervalSince(t0) * 1000
                    tally.lock.lock(); tally.latencies.append(ms); if !ok { tally.failures += 1 }; tally.lock.unlock()
                }
                group.leave()
            }
            t.start()
        }
        group.wait()
        let seconds = Date().timeIntervalSince(start)
        let failures = tally.failures
        let sorted = tally.latencies.sorted()
        return LoadResult(concurrency: concurrency, requests: requests, failures: failures, seconds: seconds,
                          requestsPerSecond: Double(requests) / seconds, p50Milliseconds: percentile(sorted, 0.5),
                          p99Milliseconds: percentile(sorted, 0.99))
    }

    /// The `p` quantile (nearest rank) of ascending `sorted` values; 0 when empty.
    public static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))]
    }
}

public struct SoakReport: Codable, Sendable {
    public var seconds: Double
    public var valid: Int
    public var invalid: Int
    /// Valid requests not answered 200 (or invalid ones not answered their 4xx), with what came back.
    public var unexpected: [String]
    /// Resident memory of the server (MiB) sampled every `sampleSeconds`.
    public var rssMiB: [Double]
    public var sampleSeconds: Double
    public var serverAlive: Bool
    /// RSS at the end over RSS after the warm-up (the first fifth of the run).
    public var rssGrowth: Double {
        guard rssMiB.count >= 2 else { return 1 }
        let warm = rssMiB[min(rssMiB.count - 1, max(1, rssMiB.count / 5))]
        return rssMiB.last! / max(warm, 1)
    }
    public var passed: Bool { unexpected.isEmpty && serverAlive }
}

public enum Soak {
    /// One soak case: a request and the status it must get.
    public struct Case: Sendable {
        public let name: String, path: String, body: Data, expected: Int
        public init(_ name: String, _ path: String, _ body: String, _ expected: Int) {
            self.name = name; self.path = path; self.body = Data(body.utf8); self.expected = expected
        }
    }

    /// The mix: valid embeddings (image, text, both), classify, match and search when `search` is true, and
    /// malformed JSON, a wrong type, bad base64, a corrupt image, a bomb header, too many items, an unknown route.
    public static func cases(imageBase64 img: String, maxItems: Int = 64, search: Bool, match: Bool) -> [Case] {
        var c: [Case] = [
            Case("embed image", "/v1/embed", #"{"images": ["\#(img)"]}"#, 200),
            Case("embed text", "/v1/embed", #"{"texts": ["a small red circle next to a blue square"]}"#, 200),
            Case("embed both", "/v1/embed", #"{"texts": ["a photo", "a drawing"], "images": ["\#(img)"]}"#, 200),
            Case("classify", "/v1/classify", #"{"image": "\#(img)", "labels": ["a circle", "a square", "a star"]}"#, 200),
            Case("malformed json", "/v1/embed", #"{"texts": ["#, 400),
            Case("wrong type", "/v1/embed", #"{"texts": 5}"#, 400),
            Case("bad base64", "/v1/embed", #"{"images": ["***"]}"#, 400),
            Case("corrupt image", "/v1/embed", #"{"images": ["\#(Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 1, 2, 3, 4]).base64EncodedString())"]}"#, 400),
            Case("bomb", "/v1/embed", #"{"images": ["\#(bombPNG.base64EncodedString())"]}"#, 413),
            Case("too many items", "/v1/embed", #"{"texts": [\#(Array(repeating: #""x""#, count: maxItems + 1).joined(separator: ","))]}"#, 413),
            Case("unknown route", "/v1/none", "{}", 404),
        ]
        if match { c.append(Case("match", "/v1/match", #"{"image": "\#(img)", "texts": ["a circle", "a square"]}"#, 200)) }
        if search { c.append(Case("search", "/v1/search", #"{"text": "a red circle", "k": 3}"#, 200)) }
        return c
    }

    /// A PNG header of 100,000 × 100,000 pixels and nothing after it: the shape of a decompression bomb.
    public static let bombPNG: Data = {
        var d = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52])
        for v: UInt32 in [100_000, 100_000] { withUnsafeBytes(of: v.bigEndian) { d.append(contentsOf: $0) } }
        d.append(contentsOf: [8, 2, 0, 0, 0, 0, 0, 0, 0])
        return d
    }()

    /// `clients` threads sending `cases` round-robin (each from its own offset) for `seconds`; the server's RSS
    /// (process `pid`, from /proc) sampled every `sampleSeconds`.
    public static func run(port: Int, pid: Int32, cases: [Case], clients: Int, seconds: Double,
                           sampleSeconds: Double = 5, headers: [String: String] = [:],
                           progress: ((Double) -> Void)? = nil) -> SoakReport {
        final class Tally: @unchecked Sendable { let lock = NSLock(); var valid = 0, invalid = 0, unexpected: [String] = [] }
        let tally = Tally()
        let end = Date().addingTimeInterval(seconds)
        let group = DispatchGroup()
        for k in 0..<clients {
            group.enter()
            Thread {
                var i = k
                while Date() < end {
                    let c = cases[i % cases.count]; i += 1
                    let r = try? LoopbackClient.post(port: port, path: c.path, json: c.body, headers: headers)
                    tally.lock.lock()
                    if c.expected == 200 { tally.valid += 1 } else { tally.invalid += 1 }
                    if r?.status != c.expected, tally.unexpected.count < 100 {
                        tally.unexpected.append("\(c.name): expected \(c.expected), got \(r.map { "\($0.status) \($0.text.prefix(120))" } ?? "no answer")")
                    }
                    tally.lock.unlock()
                }
                group.leave()
            }.start()
        }
        var rss: [Double] = []
        let start = Date()
        while group.wait(timeout: .now() + sampleSeconds) == .timedOut {
            if let r = residentMiB(pid) { rss.append(r) }
            progress?(Date().timeIntervalSince(start) / seconds)
        }
        if let r = residentMiB(pid) { rss.append(r) }
        let alive = (try? LoopbackClient.request(port: port, path: "/health", timeout: 10))?.status == 200
        tally.lock.lock(); defer { tally.lock.unlock() }
        return SoakReport(seconds: Date().timeIntervalSince(start), valid: tally.valid, invalid: tally.invalid, unexpected: tally.unexpected,
                          rssMiB: rss, sampleSeconds: sampleSeconds, serverAlive: alive)
    }

    /// VmRSS of a process, MiB.
    public static func residentMiB(_ pid: Int32) -> Double? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kb / 1024
    }
}
