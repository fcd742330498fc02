// flava serve: the HTTP service on Hummingbird 2 (README "flava serve"). The routes decode and check each
// request (body size, JSON, base64, the image header's pixel count, items per request) on Swift's
// concurrency pool, hand the model work to the one InferenceWorker, and answer JSON; every error is
// {"error": "..."} with its 4xx/5xx. SIGTERM or SIGINT drains: /health turns 503, new model requests are
// refused, requests in flight are answered, then the worker stops.
import Foundation
import Hummingbird
import ServiceLifecycle
import Logging
import NIOCore
import FlavaKit

/// Per-request limits checked before any model work.
public struct ServeLimits: Sendable {
    public var maxBodyBytes: Int
    /// Texts + images (embed), labels (classify), texts (match) per request.
    public var maxItems: Int
    /// Pixels of one image, read from its header before decoding.
    public var maxPixels: Int
    /// Largest k of /v1/search.
    public var maxK: Int
    public init(maxBodyBytes: Int = 16 << 20, maxItems: Int = 64, maxPixels: Int = 40_000_000, maxK: Int = 100) {
        self.maxBodyBytes = maxBodyBytes; self.maxItems = maxItems; self.maxPixels = maxPixels; self.maxK = maxK
    }
}

public struct ServeOptions: Sendable {
    public var model: String
    public var host: String = "127.0.0.1"
    public var port: Int = 8080
    public var precision: InferencePrecision = .fp32
    /// A folder of images or a file of texts (one per line) to search.
    public var index: String?
    /// Where the index is kept (default: FOLDER/.flava-index or TEXTS.flava-index, as flava retrieve).
    public var indexDirectory: String?
    /// Bearer tokens; nil: no authentication.
    public var apiKeys: [String]?
    public var limits = ServeLimits()
    public var worker = InferenceWorker.Limits()
    public init(model: String) { self.model = model }

    /// The API keys of a file (`flava serve --api-key-file`): one per line, blank lines and lines starting with #
    /// skipped, surrounding spaces trimmed; a file that cannot be read or holds no key is an error.
    public static func apiKeys(file: String) throws -> [String] {
        guard let d = FileManager.default.contents(atPath: file), let s = String(data: d, encoding: .utf8) else {
            throw ConfigError(file, "cannot read the API key file")
        }
        let keys = s.codePointLines.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !keys.isEmpty else { throw ConfigError(file, "no API key in the file (one per line)") }
        return keys
    }
}

public enum FlavaServer {
    /// Loads the model folder (and builds or reads the index) as the worker will: the ITM head when the
    /// checkpoint has one, the encoders alone otherwise.
    public static func loadModels(_ o: ServeOptions, log: (@Sendable (String) -> Void)? = nil) throws -> ServedModels {
        let embedder: FlavaEmbedder, matcher: ImageTextMatcher?
        // Which of the two is decided from the checkpoint's keys, so the weights are read once, and an error of
        // the folder (corrupt weights, a config that does not fit) is reported as it is.
        let hasHead = try FlavaCheckpoint.holdsImageTextMatchingHead(o.model)
        let hasVocab = FileManager.default.fileExists(atPath: URL(fileURLWithPath: o.model).appendingPathComponent("vocab.txt").path)
        if hasHead && hasVocab {
            let m = try ImageTextMatcher(directory: o.model, precision: o.precision)
            matcher = m; embedder = m.embedder
        } else {
            matcher = nil
            embedder = try FlavaEmbedder(directory: o.model, precision: o.precision)
            log?("\(o.model): \(hasHead ? "no vocab.txt to encode texts" : "no image-text matching head"); /v1/match and reranking answer 501")
        }
        var index: EmbeddingIndex? = nil
        if let path = o.index {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw DataError("\(path): no such folder or file to index") }
            index = try EmbeddingIndex.open(folder: isDir.boolValue ? path : nil, texts: isDir.boolValue ? nil : path,
                                            directory: o.indexDirectory, embedder: embedder)
            log?("index \(index!.directory): \(index!.items.count) \(index!.kind.rawValue)\(index!.built ? " (built)" : "")")
        }
        return ServedModels(embedder: embedder, matcher: matcher, index: index)
    }

    /// The application: routes, middleware and the worker (which the caller starts and stops; `run` does both).
    public static func makeApplication(options o: ServeOptions, worker: InferenceWorker, metrics: ServeMetrics,
                                       logger: Logger = Logger(label: "flava-serve"),
                                       onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol {
        let router = Router()
        router.middlewares.add(ServeMiddleware(metrics: metrics, apiKeys: o.apiKeys.map(Set.init), logger: logger))
        let routes = Routes(options: o, worker: worker)
        router.post("/v1/embed") { req, _ in try await routes.embed(req) }
        router.post("/v1/classify") { req, _ in try await routes.classify(req) }
        router.post("/v1/match") { req, _ in try await routes.match(req) }
        router.post("/v1/search") { req, _ in try await routes.search(req) }
        router.get("/health") { _, _ in routes.health() }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics.text())))
        }
        let openapi = ServeOpenAPI.document(limits: o.limits)
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: openapi)))
        }
        return Application(router: router, configuration: .init(address: .hostname(o.host, port: o.port), serverName: "flava-serve"),
                           onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? o.port) },
                           logger: logger)
    }

    /// Serves until SIGTERM or SIGINT (then drains) or until the model fails to load (then throws).
    public static func run(_ o: ServeOptions, logger: Logger = Logger(label: "flava-serve"),
                           onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let metrics = ServeMetrics()
        let worker = InferenceWorker(limits: o.worker, metrics: metrics) {
            try FlavaServer.loadModels(o) { logger.info("\($0)") }
        }
        let app = makeApplication(options: o, worker: worker, metrics: metrics, logger: logger, onServerRunning: onServerRunning)
        // Services shut down in reverse order: the drain notice first (health 503, new model work refused), then
        // the server, which answers what is in flight before it returns. A model that fails to load ends the
        // group with that error.
        let group = ServiceGroup(configuration: .init(services: [app, DrainNotice(worker: worker)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        worker.start()
        defer { worker.stop() }
        try await group.run()
    }
}

/// Puts the worker in draining mode when the graceful shutdown begins; throws if the model fails to load.
struct DrainNotice: Service {
    let worker: InferenceWorker
    func run() async throws {
        while true {
            if case .failed(let m) = worker.state { throw ServeError(.serviceUnavailable, "cannot load the model: \(m)") }
            if Task.isShuttingDownGracefully || Task.isCancelled { worker.beginDraining(); return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// Errors as JSON, the API key, and the request metrics, around every route.
struct ServeMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServeMetrics
    let apiKeys: Set<String>?
    let logger: Logger
    static var open: Set<String> { ["/health", "/metrics", "/openapi.json"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let path = request.uri.path
        var response: Response
        do {
            if let keys = apiKeys, !ServeMiddleware.open.contains(path) {
                let header = request.headers[.authorization] ?? ""
                guard header.hasPrefix("Bearer "), keys.contains(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)) else {
                    throw ServeError(.unauthorized, header.isEmpty ? "missing API key (Authorization: Bearer KEY)" : "invalid API key")
                }
            }
            response = try await next(request, context)
        } catch {
            let e = ServeError.from(error)
            if e.status.code >= 500 && e.status != .serviceUnavailable && e.status != .notImplemented {
                logger.error("\(request.method) \(path): \(error)")
            }
            response = try e.response(from: request, context: context)
        }
        metrics.requestFinished(path: path, method: request.method.rawValue, status: response.status.code,
                                duration: ContinuousClock.now - start)
        return response
    }
}

/// The route handlers: decode and check, hand to the worker, encode.
struct Routes: Sendable {
    let options: ServeOptions
    let worker: InferenceWorker
    var limits: ServeLimits { options.limits }

    func body<T: Decodable>(_ request: Request, as: T.Type) async throws -> T {
        if let l = request.headers[.contentLength].flatMap(Int.init), l > limits.maxBodyBytes {
            throw ServeError.tooLarge("request body of \(l) bytes exceeds the limit of \(limits.maxBodyBytes) bytes")
        }
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: limits.maxBodyBytes) }
        catch is NIOTooManyBytesError { throw ServeError.tooLarge("request body exceeds the limit of \(limits.maxBodyBytes) bytes") }
        guard buffer.readableBytes > 0 else { throw ServeError.badRequest("empty body: expected a JSON object") }
        do { return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView)) }
        catch let e as DecodingError { throw ServeError.badRequest(ServeError.describe(e)) }
    }

    /// The models, or 503 while loading / after a failure / while draining.
    func ready() throws -> ServedModels {
        if let refusal = InferenceWorker.refusal(worker.state) { throw refusal }
        guard let m = worker.models else { throw ServeError.unavailable("the model is still loading", retryAfter: 5) }
        return m
    }

    /// Pixel values [n, 3, S, S] of base64 images named `field[i]`.
    func pixels(_ images: [String], field: String, _ m: ServedModels) throws -> Tensor {
        let decoded = try images.enumerated().map { i, s -> RGBImage in
            let name = images.count == 1 && field != "images" ? field : "\(field)[\(i)]"
            var b64 = Substring(s)
            if b64.hasPrefix("data:"), let comma = b64.firstIndex(of: ",") { b64 = b64[b64.index(after: comma)...] }
            guard let data = Data(base64Encoded: String(b64), options: .ignoreUnknownCharacters), !data.isEmpty else {
                throw ServeError.badRequest("\(name): not base64 image data")
            }
            return try RGBImage.decode(data, name: name, maximumPixels: limits.maxPixels)
        }
        return m.embedder.pixelValues(decoded)
    }

    func checkItems(_ n: Int, _ what: String) throws {
        guard n <= limits.maxItems else { throw ServeError.tooLarge("\(n) \(what) in one request; the limit is \(limits.maxItems)") }
    }

    func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONEncoder().encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    func embed(_ request: Request) async throws -> Response {
        let r = try await body(request, as: EmbedRequest.self)
        let texts = r.texts ?? [], images = r.images ?? []
        guard !texts.isEmpty || !images.isEmpty else { throw ServeError.badRequest("give \"texts\" or \"images\" (non-empty lists)") }
        try checkItems(texts.count + images.count, "texts and images")
        let m = try ready()
        async let textPart: [[Float]]? = texts.isEmpty ? nil : embeddings(try await worker.submit(.embedTexts(try m.embedder.tokenIds(texts))))
        let imagePart: [[Float]]? = images.isEmpty ? nil : embeddings(try await worker.submit(.embedImages(try pixels(images, field: "images", m))))
        return try json(EmbedResponse(textEmbeds: try await textPart, imageEmbeds: imagePart))
    }

    func embeddings(_ r: InferenceResult) -> [[Float]] {
        if case .embeddings(let e) = r { return e }
        return []
    }

    func classify(_ request: Request) async throws -> Response {
        let r = try await body(request, as: ClassifyRequest.self)
        guard !r.labels.isEmpty else { throw ServeError.badRequest("labels: give at least one label") }
        guard r.labels.allSatisfy({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else { throw ServeError.badRequest("labels: a label is empty") }
        try checkItems(r.labels.count, "labels")
        let templates = r.templates ?? clipTemplates
        do { try PromptTemplates.validate(templates, source: "templates") } catch { throw ServeError.badRequest("\(error)") }
        try checkItems(templates.count, "templates")
        let m = try ready()
        let px = try pixels([r.image], field: "image", m)
        guard case .labels(let l) = try await worker.submit(.classify(pixels: px, labels: r.labels, templates: templates)) else { throw ServeError(.internalServerError, "unexpected answer") }
        return try json(ClassifyResponse(labels: l))
    }

    func match(_ request: Request) async throws -> Response {
        let r = try await body(request, as: MatchRequest.self)
        guard !r.texts.isEmpty else { throw ServeError.badRequest("texts: give at least one text") }
        try checkItems(r.texts.count, "texts")
        let m = try ready()
        guard m.matcher != nil else { throw ServeError(.notImplemented, "this model has no image-text matching head (a FlavaModel checkpoint); /v1/match needs a FlavaForPreTraining one") }
        let px = try pixels([r.image], field: "image", m)
        guard case .probabilities(let p) = try await worker.submit(.match(pixels: px, texts: r.texts)) else { throw ServeError(.internalServerError, "unexpected answer") }
        return try json(MatchResponse(probabilities: p))
    }

    func search(_ request: Request) async throws -> Response {
        let r = try await body(request, as: SearchRequest.self)
        guard (r.text == nil) != (r.image == nil) else { throw ServeError.badRequest("give exactly one of \"text\" and \"image\"") }
        let k = r.k ?? 10
        guard k >= 1 else { throw ServeError.badRequest("k: must be at least 1") }
        guard k <= limits.maxK else { throw ServeError.tooLarge("k of \(k) exceeds the limit of \(limits.maxK)") }
        let m = try ready()
        guard let index = m.index else { throw ServeError(.notImplemented, "no index: start the server with --index FOLDER or --index TEXTS.txt") }
        if r.rerank == true {
            guard m.matcher != nil else { throw ServeError(.notImplemented, "this model has no image-text matching head to rerank with") }
            guard (r.text != nil && index.kind == .images) || (r.image != nil && index.kind == .texts) else {
                throw ServeError.badRequest("rerank needs a text query over an image index or an image query over a text index (this index holds \(index.kind.rawValue))")
            }
        }
        let query: SearchQuery
        if let t = r.text { query = .text(t) } else { query = .image(try pixels([r.image!], field: "image", m)) }
        guard case .hits(let h) = try await worker.submit(.search(query, k: k, rerank: r.rerank ?? false)) else { throw ServeError(.internalServerError, "unexpected answer") }
        return try json(SearchResponse(kind: index.kind.rawValue, hits: h))
    }

    func health() -> Response {
        let s = worker.state
        var h = HealthResponse(status: "ready")
        switch s {
        case .ready:
            let m = worker.models
            h.model = options.model; h.precision = options.precision.rawValue; h.index = m?.index?.items.count
        case .loading: h.status = "loading"
        case .draining, .stopped: h.status = "draining"
        case .failed(let m): h.status = "failed: \(m)"
        }
        let data = (try? JSONEncoder().encode(h)) ?? Data()
        return Response(status: s == .ready ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
