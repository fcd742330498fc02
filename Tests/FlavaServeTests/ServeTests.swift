// flava serve on the golden tiny model: each route's answer is the library's numbers; malformed, oversized and
// bomb inputs get their 4xx as {"error": ...} and the server keeps serving; the API key; a full queue's 429;
// 32 concurrent clients over a real socket (in process, HummingbirdTesting's live server); and the process
// itself: SIGTERM drains a request in flight and exits 0, a model that cannot load exits non-zero in one line.
import Testing
import Foundation
import Hummingbird
import HummingbirdTesting
import FlavaKit
import FlavaServe
import TestSupport

private let tinyDir = TestPaths.reference.appendingPathComponent("flava_tiny").path
private let imagesDir = TestPaths.reference.appendingPathComponent("images").path
private let imageNames = ["gradient_320x240.jpg", "shapes_300x300.png", "tall_50x400.jpg"]

private func b64(_ name: String) throws -> String {
    try Data(contentsOf: URL(fileURLWithPath: imagesDir + "/" + name)).base64EncodedString()
}

/// A folder with the three reference images, for the search index.
private func indexFolder() throws -> String {
    let dir = TestPaths.temporaryDirectory().appendingPathComponent("gallery").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for n in imageNames { try FileManager.default.copyItem(atPath: imagesDir + "/" + n, toPath: dir + "/" + n) }
    return dir
}

private func options(index: String? = nil, apiKeys: [String]? = nil, limits: ServeLimits = ServeLimits(),
                     worker: InferenceWorker.Limits = .init()) -> ServeOptions {
    var o = ServeOptions(model: tinyDir)
    o.host = "127.0.0.1"; o.port = 0
    o.index = index; o.apiKeys = apiKeys; o.limits = limits; o.worker = worker
    return o
}

/// A started worker, ready (the tiny model loads in well under a second).
private func readyWorker(_ o: ServeOptions, _ metrics: ServeMetrics) throws -> InferenceWorker {
    let w = InferenceWorker(limits: o.worker, metrics: metrics) { try FlavaServer.loadModels(o) }
    w.start()
    let start = Date()
    while w.state != .ready {
        if case .failed(let m) = w.state { throw LoopbackClientError(description: "load failed: \(m)") }
        if Date().timeIntervalSince(start) > 120 { throw LoopbackClientError(description: "model did not load") }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return w
}

/// The application of `o` with its worker started and ready (the caller stops the worker).
private func readyServer(_ o: ServeOptions) throws -> (some ApplicationProtocol, InferenceWorker, ServeMetrics) {
    let metrics = ServeMetrics()
    let worker = try readyWorker(o, metrics)
    return (FlavaServer.makeApplication(options: o, worker: worker, metrics: metrics), worker, metrics)
}

private func body<T: Encodable>(_ v: T) throws -> ByteBuffer { ByteBuffer(bytes: try JSONEncoder().encode(v)) }
private func decode<T: Decodable>(_ t: T.Type, _ r: TestResponse) throws -> T { try JSONDecoder().decode(t, from: Data(r.body.readableBytesView)) }
private func errorMessage(_ r: TestResponse) -> String? {
    (try? JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any])?["error"] as? String
}
private let jsonHeaders: HTTPFields = [.contentType: "application/json"]

private func maxDiff(_ a: [[Float]], _ b: Tensor) -> Float {
    var m: Float = 0
    for (i, row) in a.enumerated() { for (j, v) in row.enumerated() { m = max(m, abs(v - b[flat: i * row.count + j])) } }
    return a.count == b.shape[0] ? m : .infinity
}

@Test func everyRouteAnswersTheLibrarysNumbers() async throws {
    let gallery = try indexFolder()
    let o = options(index: gallery)
    let (app, worker, _) = try readyServer(o)
    defer { worker.stop() }
    // The library, directly.
    let matcher = try ImageTextMatcher(directory: tinyDir)
    let embedder = matcher.embedder
    let texts = ["a red circle", "two blue squares on a white background", "a photo"]
    let images = try imageNames.map { try RGBImage.load(imagesDir + "/" + $0) }
    let pixels = embedder.pixelValues(images)
    let libText = embedder.textEmbeddings(try embedder.tokenize(texts))
    let libImage = embedder.imageEmbeddings(pixels)

    try await app.test(.router) { client in
        let health = try await client.execute(uri: "/health", method: .get)
        #expect(health.status == .ok)
        #expect(try decode(HealthResponse.self, health).status == "ready")
        let e = try await client.execute(uri: "/v1/embed", method: .post, headers: jsonHeaders,
                                         body: try body(EmbedRequest(texts: texts, images: try imageNames.map(b64))))
        #expect(e.status == .ok)
        let er = try decode(EmbedResponse.self, e)
        #expect(maxDiff(er.textEmbeds!, libText) < 1e-5)
        #expect(maxDiff(er.imageEmbeds!, libImage) < 1e-5)

        let labels = ["a circle", "a square", "a gradient"]
        let c = try await client.execute(uri: "/v1/classify", method: .post, headers: jsonHeaders,
                                         body: try body(ClassifyRequest(image: try b64(imageNames[1]), labels: labels, templates: ["a picture of {}", "{}"])))
        #expect(c.status == .ok)
        let cr = try decode(ClassifyResponse.self, c)
        let classes = try embedder.classEmbeddings(classes: labels, templates: ["a picture of {}", "{}"])
        let probs = embedder.labelProbabilities(images: ShapeKernel.slice(libImage, axis: 0, start: 1, end: 2), classes: classes)[0]
        #expect(cr.labels.count == 3)
        #expect(zip(cr.labels, cr.labels.dropFirst()).allSatisfy { $0.probability >= $1.probability })
        for l in cr.labels { #expect(abs(l.probability - probs[labels.firstIndex(of: l.label)!]) < 1e-5) }
        // The same labels again come from the cache, with the same numbers.
        let c2 = try decode(ClassifyResponse.self, try await client.execute(uri: "/v1/classify", method: .post, headers: jsonHeaders,
            body: try body(ClassifyRequest(image: try b64(imageNames[1]), labels: labels, templates: ["a picture of {}", "{}"]))))
        #expect(c2.labels == cr.labels)

        let m = try await client.execute(uri: "/v1/match", method: .post, headers: jsonHeaders,
                                         body: try body(MatchRequest(image: try b64(imageNames[0]), texts: texts)))
        #expect(m.status == .ok)
        let libMatch = try matcher.probabilities(pixels: ShapeKernel.slice(pixels, axis: 0, start: 0, end: 1), texts: texts)
        let mr = try decode(MatchResponse.self, m)
        #expect(mr.probabilities.count == 3 && zip(mr.probabilities, libMatch).allSatisfy { abs($0 - $1) < 1e-5 })

        let index = try EmbeddingIndex.open(folder: gallery, embedder: embedder)
        let s = try await client.execute(uri: "/v1/search", method: .post, headers: jsonHeaders,
                                         body: try body(SearchRequest(text: texts[1], k: 2)))
        #expect(s.status == .ok)
        let sr = try decode(SearchResponse.self, s)
        let libHits = index.search(ShapeKernel.slice(libText, axis: 0, start: 1, end: 2), k: 2)
        #expect(sr.kind == "images" && sr.hits.map(\.index) == libHits.map(\.index))
        #expect(zip(sr.hits, libHits).allSatisfy { abs($0.score - $1.similarity) < 1e-5 })
        #expect(sr.hits.map(\.item) == libHits.map { URL(fileURLWithPath: index.items[$0.index]).lastPathComponent })
        let rr = try decode(SearchResponse.self, try await client.execute(uri: "/v1/search", method: .post, headers: jsonHeaders,
            body: try body(SearchRequest(text: texts[1], k: 3, rerank: true))))
        #expect(rr.hits.count == 3 && rr.hits.allSatisfy { $0.matchProbability != nil })
        #expect(zip(rr.hits, rr.hits.dropFirst()).allSatisfy { $0.matchProbability! >= $1.matchProbability! })
        let imageQuery = try decode(SearchResponse.self, try await client.execute(uri: "/v1/search", method: .post, headers: jsonHeaders,
            body: try body(SearchRequest(image: try b64(imageNames[2]), k: 1))))
        #expect(imageQuery.hits.first?.item == imageNames[2])   // an image is nearest to itself

        let metricsText = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
        #expect(metricsText.contains(#"flava_http_requests_total{route="/v1/embed",method="POST",status="200"} 1"#))
        #expect(metricsText.contains("flava_queue_wait_seconds_bucket"))
        #expect(metricsText.contains(#"flava_batch_items_count{kind="embed_images"}"#))
        let openapi = try await client.execute(uri: "/openapi.json", method: .get)
        let doc = try JSONSerialization.jsonObject(with: Data(openapi.body.readableBytesView)) as? [String: Any]
        #expect(doc?["openapi"] as? String == "3.1.0")
        #expect(((doc?["paths"] as? [String: Any])?.keys.sorted() ?? []) == ["/health", "/metrics", "/openapi.json", "/v1/classify", "/v1/embed", "/v1/match", "/v1/search"])
    }
}

/// A PNG whose header claims `w`×`h` pixels and then ends: a decompression bomb's shape.
private func bombPNG(width w: UInt32, height h: UInt32) -> Data {
    var d = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52])
    for v in [w, h] { withUnsafeBytes(of: v.bigEndian) { d.append(contentsOf: $0) } }
    d.append(contentsOf: [8, 2, 0, 0, 0, 0, 0, 0, 0])   // 8-bit RGB; CRC not checked before the size
    return d
}

@Test func badInputGetsItsStatusAndTheServerKeepsServing() async throws {
    let gallery = try indexFolder()
    let o = options(index: gallery, limits: ServeLimits(maxBodyBytes: 200_000, maxItems: 4, maxPixels: 1_000_000, maxK: 10))
    let (app, worker, _) = try readyServer(o)
    defer { worker.stop() }
    let png = try b64(imageNames[1])
    let cases: [(String, String, HTTPResponse.Status, String)] = [
        ("/v1/embed", "{not json", .badRequest, "malformed"),
        ("/v1/embed", "", .badRequest, "empty body"),
        ("/v1/embed", #"{"texts": "a single string"}"#, .badRequest, "texts"),
        ("/v1/embed", #"{"texts": [1, 2]}"#, .badRequest, "texts[0]"),
        ("/v1/embed", #"{}"#, .badRequest, "give"),
        ("/v1/embed", #"{"texts": ["a", "b", "c", "d", "e"]}"#, .contentTooLarge, "limit is 4"),
        ("/v1/embed", #"{"images": ["%%%not base64%%%"]}"#, .badRequest, "images[0]"),
        ("/v1/embed", #"{"images": ["\#(Data("GIF89a not an image at all".utf8).base64EncodedString())"]}"#, .badRequest, "images[0]"),
        ("/v1/embed", #"{"images": ["\#(Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]).base64EncodedString())"]}"#, .badRequest, "images[0]"),
        ("/v1/embed", #"{"images": ["\#(bombPNG(width: 100_000, height: 100_000).base64EncodedString())"]}"#, .contentTooLarge, "exceeds the limit"),
        ("/v1/embed", #"{"texts": ["\#(String(repeating: "x", count: 300_000))"]}"#, .contentTooLarge, "exceeds the limit"),
        ("/v1/classify", #"{"image": "\#(png)", "labels": []}"#, .badRequest, "labels"),
        ("/v1/classify", #"{"image": "\#(png)"}"#, .badRequest, "labels: missing"),
        ("/v1/classify", #"{"image": "\#(png)", "labels": ["a"], "templates": ["no placeholder"]}"#, .badRequest, "templates"),
        ("/v1/match", #"{"image": "\#(png)", "texts": []}"#, .badRequest, "texts"),
        ("/v1/match", #"{"image": 7, "texts": ["a"]}"#, .badRequest, "image"),
        ("/v1/search", #"{"k": 3}"#, .badRequest, "exactly one"),
        ("/v1/search", #"{"text": "a", "k": 0}"#, .badRequest, "k"),
        ("/v1/search", #"{"text": "a", "k": 1000}"#, .contentTooLarge, "k of 1000"),
        ("/v1/search", #"{"image": "\#(png)", "rerank": true}"#, .badRequest, "rerank"),
        ("/v1/nothing", #"{}"#, .notFound, "route"),
    ]
    try await app.test(.router) { client in
        for (uri, text, status, words) in cases {
            let r = try await client.execute(uri: uri, method: .post, headers: jsonHeaders, body: ByteBuffer(string: text))
            #expect(r.status == status, "\(uri) \(text.prefix(80)): \(r.status)")
            let m = errorMessage(r)
            #expect(m?.contains(words) == true, "\(uri) \(text.prefix(80)): \(m ?? String(buffer: r.body))")
            // Still serving.
            let ok = try await client.execute(uri: "/v1/embed", method: .post, headers: jsonHeaders, body: ByteBuffer(string: #"{"texts": ["still here"]}"#))
            #expect(ok.status == .ok)
        }
        let wrongMethod = try await client.execute(uri: "/v1/embed", method: .get)
        #expect(wrongMethod.status.code >= 400 && wrongMethod.status.code < 500 && errorMessage(wrongMethod) != nil)
        #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
    }
}

@Test func theAPIKeyIsEnforcedAndHealthAndMetricsStayOpen() async throws {
    let o = options(apiKeys: ["s3cret", "other-key"])
    let (app, worker, _) = try readyServer(o)
    defer { worker.stop() }
    let req = ByteBuffer(string: #"{"texts": ["a cat"]}"#)
    try await app.test(.router) { client in
        let none = try await client.execute(uri: "/v1/embed", method: .post, headers: jsonHeaders, body: req)
        #expect(none.status == .unauthorized && errorMessage(none)?.contains("missing API key") == true)
        #expect(none.headers[.wwwAuthenticate] == "Bearer")
        var wrong = jsonHeaders; wrong[.authorization] = "Bearer nope"
        #expect(try await client.execute(uri: "/v1/embed", method: .post, headers: wrong, body: req).status == .unauthorized)
        var right = jsonHeaders; right[.authorization] = "Bearer other-key"
        #expect(try await client.execute(uri: "/v1/embed", method: .post, headers: right, body: req).status == .ok)
        #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
        #expect(try await client.execute(uri: "/metrics", method: .get).status == .ok)
    }
}

@Test func aFullQueueAnswers429WithRetryAfter() async throws {
    let o = options(worker: .init(maxQueue: 2))
    let (app, worker, _) = try readyServer(o)
    defer { worker.stop() }
    worker.pause()
    try await app.test(.router) { client in
        let waiting = (0..<2).map { i in
            Task { try await client.execute(uri: "/v1/embed", method: .post, headers: jsonHeaders, body: ByteBuffer(string: #"{"texts": ["text \#(i)"]}"#)).status }
        }
        while worker.queueDepth < 2 { try await Task.sleep(for: .milliseconds(5)) }
        let refused = try await client.execute(uri: "/v1/embed", method: .post, headers: jsonHeaders, body: ByteBuffer(string: #"{"texts": ["one more"]}"#))
        #expect(refused.status == .tooManyRequests)
        #expect(refused.headers[.retryAfter] == "1")
        #expect(errorMessage(refused)?.contains("queue is full") == true)
        worker.resume()
        for t in waiting { #expect(try await t.value == .ok) }
    }
}

@Test func thirtyTwoConcurrentClientsOverARealSocketAllSucceed() async throws {
    let o = options(worker: .init(maxBatchImages: 8, maxQueue: 64))
    let (app, worker, metrics) = try readyServer(o)
    defer { worker.stop() }
    let embedder = worker.models!.embedder
    let image = try b64(imageNames[0])
    let expectedImage = embedder.imageEmbeddings(embedder.pixelValues([try RGBImage.load(imagesDir + "/" + imageNames[0])]))
    try await app.test(.live) { client in
        let port = client.port!
        // Blocking clients on threads of their own: Swift's concurrency pool (2 threads here) serves the server.
        let results = await onThread { () -> [(Int, Int, Float)] in
            let box = LockedBox<[(Int, Int, Float)]>([])
            let group = DispatchGroup()
            for i in 0..<32 {
                group.enter()
                Thread {
                    let isImage = i % 2 == 0
                    let json = isImage ? #"{"images": ["\#(image)"]}"# : #"{"texts": ["client number \#(i)"]}"#
                    let r = try? LoopbackClient.post(port: port, path: "/v1/embed", json: Data(json.utf8))
                    var diff: Float = 0
                    if isImage, r?.status == 200, let e = try? JSONDecoder().decode(EmbedResponse.self, from: r!.body) {
                        diff = maxDiff(e.imageEmbeds!, expectedImage)
                    }
                    box.append((i, r?.status ?? 0, diff))
                    group.leave()
                }.start()
            }
            group.wait()
            return box.value
        }
        #expect(results.count == 32 && results.allSatisfy { $0.1 == 200 }, "\(results.filter { $0.1 != 200 })")
        #expect(results.allSatisfy { $0.2 < 1e-5 })
    }
    // Concurrent requests were batched: fewer batches than requests.
    let text = metrics.text()
    let batches = text.components(separatedBy: "\n").filter { $0.hasPrefix("flava_batch_items_count") }
        .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    #expect(batches > 0 && batches < 32, "\(batches) batches")
}

// MARK: the process

/// `flava serve` started on a free port; returns the process and the port once /health is 200.
private func startServer(_ args: [String]) throws -> (Process, Int, Pipe) {
    let p = Process()
    p.executableURL = TestPaths.packageRoot.appendingPathComponent(".build/release/flava")
    p.arguments = ["serve", "--model", tinyDir, "--port", "0"] + args
    let err = Pipe()
    p.standardError = err; p.standardOutput = FileHandle.nullDevice
    try p.run()
    var seen = "", port = 0
    let start = Date()
    while port == 0 && Date().timeIntervalSince(start) < 120 && p.isRunning {
        let chunk = err.fileHandleForReading.availableData
        seen += String(decoding: chunk, as: UTF8.self)
        if let r = seen.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
            port = Int(seen[r].split(separator: ":").last!)!
        }
    }
    guard port > 0 else { p.terminate(); throw LoopbackClientError(description: "server did not start: \(seen)") }
    while Date().timeIntervalSince(start) < 120 {
        if (try? LoopbackClient.request(port: port, path: "/health"))?.status == 200 { return (p, port, err) }
        Thread.sleep(forTimeInterval: 0.05)
    }
    p.terminate()
    throw LoopbackClientError(description: "the model did not load")
}

private func wait(_ p: Process, seconds: Double) -> Bool {
    let start = Date()
    while p.isRunning && Date().timeIntervalSince(start) < seconds { Thread.sleep(forTimeInterval: 0.05) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit(); return false }
    return true
}

@Test func sigtermDrainsTheRequestInFlightAndExitsZero() throws {
    let (p, port, _) = try startServer(["--batch-delay", "1.5"])
    let result = LockedBox<LoopbackResponse?>(nil)
    let sent = Thread { result.value = try? LoopbackClient.post(port: port, path: "/v1/embed", json: Data(#"{"texts": ["in flight"]}"#.utf8)) }
    sent.start()
    Thread.sleep(forTimeInterval: 0.5)    // the request is with the worker (which waits 1.5 s before the batch)
    kill(p.processIdentifier, SIGTERM)
    Thread.sleep(forTimeInterval: 0.3)
    // Draining: health is 503 (or the listener is already closed); a new request is not run.
    if let h = try? LoopbackClient.request(port: port, path: "/health", timeout: 5) { #expect(h.status == 503) }
    #expect(wait(p, seconds: 30), "the server did not exit after SIGTERM")
    #expect(p.terminationStatus == 0)
    let start = Date()
    while result.value == nil && Date().timeIntervalSince(start) < 10 { Thread.sleep(forTimeInterval: 0.05) }
    #expect(result.value?.status == 200, "the request in flight was not answered")
    #expect((try? JSONDecoder().decode(EmbedResponse.self, from: result.value?.body ?? Data()))?.textEmbeds?.count == 1)
}

@Test func aModelThatCannotLoadEndsTheServerInOneLine() throws {
    let broken = TestPaths.temporaryDirectory().appendingPathComponent("broken").path
    try FileManager.default.createDirectory(atPath: broken, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: tinyDir + "/config.json", toPath: broken + "/config.json")
    try Data("not a safetensors file".utf8).write(to: URL(fileURLWithPath: broken + "/model.safetensors"))
    for model in [broken, broken + "/missing"] {
        let r = try runFlava(["serve", "--model", model, "--port", "0"], timeout: 120)
        #expect(r.status != 0)
        let errors = r.err.components(separatedBy: "\n").filter { $0.hasPrefix("error: ") }
        #expect(errors.count == 1, "\(r.err)")
    }
    let keys = TestPaths.temporaryDirectory().appendingPathComponent("keys").path
    try Data("\n# comment\n".utf8).write(to: URL(fileURLWithPath: keys))
    let k = try runFlava(["serve", "--model", tinyDir, "--port", "0", "--api-key-file", keys], timeout: 60)
    #expect(k.status != 0 && k.err.contains("no API key"), "\(k.err)")
}

/// Runs blocking work on a thread of its own (never on Swift's concurrency pool, which the server runs on).
func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { c in Thread { c.resume(returning: work()) }.start() }
}

final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T
    init(_ v: T) { _value = v }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return _value }
        set { lock.lock(); _value = newValue; lock.unlock() }
    }
    func append<E>(_ e: E) where T == [E] { lock.lock(); _value.append(e); lock.unlock() }
}

/// The soak run's short version (the 10-minute one is `flava-bench serve-soak`, BENCHMARKS.md): mixed valid and
/// invalid requests from 4 clients for 15 s on a live server.
/// A folder without the image-text matching head (a FlavaModel checkpoint), or with it but without vocab.txt,
/// is served without a matcher, and the log says which is missing; the API key file is read by the library.
@Test func aFolderWithoutMatchingHeadIsServedWithoutMatcher() throws {
    let root = TestPaths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: root) }
    let encoders = root.appendingPathComponent("encoders").path, noVocab = root.appendingPathComponent("novocab").path
    for d in [encoders, noVocab] {
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: tinyDir + "/config.json", toPath: d + "/config.json")
    }
    try FileManager.default.copyItem(atPath: tinyDir + "/vocab.txt", toPath: encoders + "/vocab.txt")
    try FlavaCheckpoint.loadModel(tinyDir).saveSafeTensors(to: encoders + "/model.safetensors")
    try FileManager.default.copyItem(atPath: tinyDir + "/model.safetensors", toPath: noVocab + "/model.safetensors")
    #expect(try FlavaCheckpoint.holdsImageTextMatchingHead(tinyDir))
    #expect(try !FlavaCheckpoint.holdsImageTextMatchingHead(encoders))
    #expect(try FlavaCheckpoint.holdsImageTextMatchingHead(noVocab))
    for (dir, reason) in [(encoders, "no image-text matching head"), (noVocab, "no vocab.txt")] {
        let logs = LockedBox<[String]>([])
        let served = try FlavaServer.loadModels(ServeOptions(model: dir), log: { logs.append($0) })
        #expect(served.matcher == nil)
        #expect(logs.value.contains { $0.contains(reason) && $0.contains("501") }, "\(logs.value)")
    }
    #expect(try FlavaServer.loadModels(ServeOptions(model: tinyDir)).matcher != nil)
    let keys = root.appendingPathComponent("keys").path
    try Data("  alpha  \n\n# a comment\nbeta\n".utf8).write(to: URL(fileURLWithPath: keys))
    #expect(try ServeOptions.apiKeys(file: keys) == ["alpha", "beta"])
    #expect(throws: ConfigError.self) { try ServeOptions.apiKeys(file: root.appendingPathComponent("absent").path) }
}

@Test func aShortSoakOfMixedRequestsGetsOnlyExpectedAnswers() async throws {
    let gallery = try indexFolder()
    let o = options(index: gallery)
    let (app, worker, _) = try readyServer(o)
    defer { worker.stop() }
    let cases = Soak.cases(imageBase64: try b64(imageNames[1]), maxItems: o.limits.maxItems, search: true, match: true)
    try await app.test(.live) { client in
        let port = client.port!
        let report = await onThread { Soak.run(port: port, pid: getpid(), cases: cases, clients: 4, seconds: 15, sampleSeconds: 3) }
        #expect(report.passed, "\(report.unexpected.prefix(5))")
        #expect(report.valid > 20 && report.invalid > 20)
        #expect(report.rssMiB.count >= 3)
    }
}
