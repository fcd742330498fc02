// flava-bench serve-load / serve-direct / serve-soak: the service's benchmarks and soak run (scripts/bench/serve_bench.sh,
// BENCHMARKS.md "flava serve").
import ArgumentParser
import Foundation
import FlavaKit
import FlavaServe

/// The bytes of --image (needed when --what is image).
private func imageBytes(what: String, image: String?) throws -> Data? {
    guard what == "image" else { return nil }
    guard let image else { throw ValidationError("--what image needs --image FILE") }
    guard let d = FileManager.default.contents(atPath: image) else { throw ValidationError("\(image): cannot read") }
    return d
}

private func embedBody(what: String, image: String?) throws -> Data {
    switch what {
    case "image":
        return Data(#"{"images": ["\#(try imageBytes(what: what, image: image)!.base64EncodedString())"]}"#.utf8)
    case "text": return Data(#"{"texts": ["a photo of a small dog running on the beach"]}"#.utf8)
    default: throw ValidationError("--what must be image or text")
    }
}

struct ServeLoad: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve-load",
        abstract: "Throughput and p50/p99 latency of POST /v1/embed on a running flava serve (or any server with that route), closed-loop clients on loopback.")
    @Option(help: "The server's port on 127.0.0.1.") var port: Int
    @Option(help: "image (one image a request) or text (one short text a request).") var what = "image"
    @Option(help: "The image to send (JPEG or PNG).") var image: String?
    @Option(help: "Comma-separated client counts.") var concurrency = "1,4,16"
    @Option(help: "Requests per concurrency level.") var requests = 64
    func validate() throws { if requests < 1 { throw ValidationError("--requests must be at least 1") } }
    @Option(help: "A label for the rows (e.g. the server's name).") var label = "flava serve"
    @Flag(help: "Print one JSON object per level.") var json = false

    func run() throws {
        let body = try embedBody(what: what, image: image)
        let levels = concurrency.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !levels.isEmpty, levels.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--concurrency: give counts ≥ 1, e.g. 1,4,16") }
        if !json { print("server       what   clients  requests  req/s    p50 ms   p99 ms  failures") }
        for c in levels {
            let r = LoadGenerator.run(port: port, path: "/v1/embed", body: body, concurrency: c, requests: requests, warmup: 2)
            if json {
                var o: [String: Any] = ["bench": "serve_load", "server": label, "what": what, "concurrency": c, "requests": r.requests,
                                        "failures": r.failures, "requests_per_second": r.requestsPerSecond,
                                        "p50_ms": r.p50Milliseconds, "p99_ms": r.p99Milliseconds]
                o["seconds"] = r.seconds
                print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print(String(format: "%-12@ %-6@ %7d %9d %7.2f %9.1f %8.1f %9d", label as NSString, what as NSString, c, r.requests,
                             r.requestsPerSecond, r.p50Milliseconds, r.p99Milliseconds, r.failures))
            }
        }
    }
}

struct ServeDirect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve-direct",
        abstract: "The baseline of serve-load: the same work (decode, preprocess, embed one item) called sequentially in process, without HTTP or batching.")
    @Option(help: "Model folder.") var model: String
    @Option(help: "image or text.") var what = "image"
    @Option(help: "The image (JPEG or PNG).") var image: String?
    @Option(help: "Calls.") var requests = 64
    func validate() throws { if requests < 1 { throw ValidationError("--requests must be at least 1") } }
    @Option(help: "Arithmetic: fp32 or int8.") var precision: InferencePrecision = .fp32
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let embedder = try FlavaEmbedder(directory: model, precision: precision)
        guard ["image", "text"].contains(what) else { throw ValidationError("--what must be image or text") }
        let bytes = try imageBytes(what: what, image: image)
        func once() throws {
            if let bytes { _ = embedder.imageEmbeddings(embedder.pixelValues([try RGBImage.decode(bytes)]), batchSize: 1) }
            else { _ = embedder.textEmbeddings(try embedder.tokenize(["a photo of a small dog running on the beach"])) }
        }
        for _ in 0..<2 { try once() }
        var ms: [Double] = []
        let start = Date()
        for _ in 0..<requests { let t = Date(); try once(); ms.append(Date().timeIntervalSince(t) * 1000) }
        let seconds = Date().timeIntervalSince(start)
        ms.sort()
        let p50 = LoadGenerator.percentile(ms, 0.5), p99 = LoadGenerator.percentile(ms, 0.99)
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: [
                "bench": "serve_direct", "what": what, "requests": requests, "requests_per_second": Double(requests) / seconds,
                "p50_ms": p50, "p99_ms": p99] as [String: Any], options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "direct (sequential, no batching) %@: %.2f req/s, p50 %.1f ms, p99 %.1f ms", what, Double(requests) / seconds, p50, p99))
        }
    }
}

struct ServeSoak: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve-soak",
        abstract: "Mixed valid and invalid requests from several clients on a running flava serve for a while: every valid one must get 200, every invalid one its 4xx, the server must stay up; its resident memory is sampled.")
    @Option(help: "The server's port on 127.0.0.1.") var port: Int
    @Option(help: "The server's process id (for its resident memory).") var pid: Int32
    @Option(help: "An image (JPEG or PNG) for the valid requests.") var image: String
    @Option(help: "Seconds.") var duration = 600.0
    @Option(help: "Concurrent clients.") var clients = 6
    @Option(help: "The server's --max-items.") var maxItems = 64
    @Flag(help: "The server has an --index (add /v1/search).") var search = false
    @Flag(help: "The model has no ITM head (leave out /v1/match).") var noMatch = false
    @Option(help: "Write the report as JSON here.") var summary: String?

    func run() throws {
        guard let d = FileManager.default.contents(atPath: image) else { throw ValidationError("\(image): cannot read") }
        let cases = Soak.cases(imageBase64: d.base64EncodedString(), maxItems: maxItems, search: search, match: !noMatch)
        let r = Soak.run(port: port, pid: pid, cases: cases, clients: clients, seconds: duration, sampleSeconds: min(10, max(1, duration / 20))) { f in
            FileHandle.standardError.write(String(format: "\rsoak %3.0f %%", min(1, f) * 100).data(using: .utf8)!)
        }
        FileHandle.standardError.write("\n".data(using: .utf8)!)
        print(String(format: "%.0f s, %d valid and %d invalid requests, %d unexpected answers, server %@", r.seconds, r.valid, r.invalid,
                     r.unexpected.count, r.serverAlive ? "alive" : "DOWN"))
        if let first = r.rssMiB.first, let last = r.rssMiB.last {
            let warm = r.rssMiB[min(r.rssMiB.count - 1, max(1, r.rssMiB.count / 5))]
            print(String(format: "RSS MiB: start %.0f, after warm-up %.0f, max %.0f, end %.0f (end / after warm-up %.3f)",
                         first, warm, r.rssMiB.max()!, last, r.rssGrowth))
        }
        for u in r.unexpected.prefix(10) { print("  " + u) }
        if let summary { try JSONEncoder().encode(r).write(to: URL(fileURLWithPath: summary), options: .atomic) }
        if !r.passed { throw ExitCode(1) }
    }
}
