// flava serve: parses flags into ServeOptions and runs FlavaServer (Sources/FlavaServe) until SIGTERM/SIGINT.
import ArgumentParser
import Dispatch
import Foundation
import FlavaKit
import FlavaServe
import Logging

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve embeddings, zero-shot labels, image-text matching and search over HTTP.",
        discussion: """
        Routes (JSON; images as base64 JPEG/PNG strings): POST /v1/embed {"texts": [...], "images": [...]}, \
        POST /v1/classify {"image", "labels", "templates"?}, POST /v1/match {"image", "texts"}, \
        POST /v1/search {"text" | "image", "k"?, "rerank"?} (needs --index), GET /health, GET /metrics \
        (Prometheus), GET /openapi.json. One inference worker batches concurrent requests; a full queue answers \
        429, a request over a limit 413, a malformed one 400, all as {"error": "..."}. SIGTERM or SIGINT drains \
        (requests in flight are answered) and exits 0. See README "flava serve" for curl examples.
        """)

    @Option(help: "Model folder (config.json, weights, vocab.txt); a FlavaForPreTraining checkpoint also serves /v1/match and reranking.") var model: String
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port; the line 'listening on' names it).") var port = 8080
    @Option(help: "Arithmetic: fp32 or int8.") var precision: InferencePrecision = .fp32
    @Option(help: "A folder of JPEG/PNG images or a text file (one item per line) to serve /v1/search over; its index is read, or built once and saved, as flava retrieve does.") var index: String?
    @Option(help: "Where the index is kept (default: FOLDER/.flava-index or FILE.flava-index).") var indexDir: String?
    @Option(help: "A file of API keys, one per line: requests then need 'Authorization: Bearer KEY' (/health, /metrics and /openapi.json stay open).") var apiKeyFile: String?
    @Option(help: "Images per forward pass of the worker.") var maxBatch = 8
    @Option(help: "Padded text tokens per forward pass of the worker (texts × longest).") var maxBatchTokens = 16 * 77
    @Option(help: "Requests waiting for the worker; beyond it: 429.") var maxQueue = 64
    @Option(help: "Largest request body in bytes; beyond it: 413.") var maxBodyBytes = 16 << 20
    @Option(help: "Items (texts + images, labels, texts to match) per request; beyond it: 413.") var maxItems = 64
    @Option(help: "Pixels of one image, checked from its header before decoding; beyond it: 413.") var maxPixels = 40_000_000
    @Option(help: "Seconds a request may wait in the queue; beyond it: 503.") var deadline = 30.0
    @Option(help: "Label embeddings kept across /v1/classify requests.") var labelCache = 4096
    @Option(help: .hidden) var batchDelay = 0.0   // seconds before each batch: the shutdown tests' request in flight

    func validate() throws {
        for (name, v) in [("--max-batch", maxBatch), ("--max-batch-tokens", maxBatchTokens), ("--max-queue", maxQueue),
                          ("--max-body-bytes", maxBodyBytes), ("--max-items", maxItems), ("--max-pixels", maxPixels)] where v < 1 {
            throw ValidationError("\(name) must be at least 1")
        }
        if maxBatchTokens < 77 { throw ValidationError("--max-batch-tokens must hold one 77-token text") }
        if labelCache < 0 { throw ValidationError("--label-cache must be 0 or more") }
        if !(deadline > 0) { throw ValidationError("--deadline must be positive") }
        if !(0...65535).contains(port) { throw ValidationError("--port must be 0 to 65535") }
    }

    func options() throws -> ServeOptions {
        var o = ServeOptions(model: model)
        o.host = host; o.port = port; o.precision = precision
        o.index = index; o.indexDirectory = indexDir
        if let f = apiKeyFile { o.apiKeys = try ServeOptions.apiKeys(file: f) }
        o.limits = ServeLimits(maxBodyBytes: maxBodyBytes, maxItems: maxItems, maxPixels: maxPixels)
        o.worker = InferenceWorker.Limits(maxBatchImages: maxBatch, maxBatchTokens: maxBatchTokens, maxQueue: maxQueue,
                                          deadline: deadline, labelCache: labelCache, batchDelay: batchDelay)
        return o
    }

    func run() throws {
        let o = try options()
        // The folder must at least be a model folder before the port opens; the weights load on the worker
        // while /health answers 503.
        _ = try FlavaCheckpoint.config(in: model)
        var logger = Logger(label: "flava-serve")
        logger.logLevel = .warning
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let host = self.host
        Task.detached {
            do {
                try await FlavaServer.run(o, logger: logger) { port in
                    FileHandle.standardError.write("flava serve: listening on http://\(host):\(port) (model \(o.model), \(o.precision.rawValue))\n".data(using: .utf8)!)
                }
            } catch { outcome.error = error }
            done.signal()
        }
        done.wait()
        if let e = outcome.error { throw e }
        FileHandle.standardError.write("flava serve: stopped\n".data(using: .utf8)!)
    }
}

private final class Outcome: @unchecked Sendable {
    private let lock = NSLock()
    private var _error: (any Error)?
    var error: (any Error)? {
        get { lock.lock(); defer { lock.unlock() }; return _error }
        set { lock.lock(); _error = newValue; lock.unlock() }
    }
}
