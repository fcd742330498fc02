// The one inference worker of flava serve: it owns the model and the cores. Requests wait in a bounded queue;
// the worker takes what is waiting, batches requests of the same kind (image embeddings up to maxBatchImages
// images, text embeddings up to a token budget; no artificial delay: a request alone is run alone), runs the
// model on its own thread (never on an event loop, never one BLAS team per request) and resumes each waiting
// request with its part of the answer. A full queue refuses at once (429); a request that waited past its
// deadline is answered 503 without being run.
import Foundation
import FlavaKit

/// What a request asks of the model. Images come decoded and preprocessed (pixel values [n, 3, S, S]), texts
/// tokenized (unpadded ids): that CPU work is the caller's, off the worker.
public enum InferenceRequest: Sendable {
    case embedImages(Tensor)
    case embedTexts([[Int]])
    case classify(pixels: Tensor, labels: [String], templates: [String])
    case match(pixels: Tensor, texts: [String])
    case search(SearchQuery, k: Int, rerank: Bool)

    var kind: String {
        switch self {
        case .embedImages: return "embed_images"
        case .embedTexts: return "embed_texts"
        case .classify: return "classify"
        case .match: return "match"
        case .search: return "search"
        }
    }
}

public enum SearchQuery: Sendable {
    case text(String)
    case image(Tensor)      // [1, 3, S, S]
}

public struct LabelScore: Codable, Sendable, Equatable {
    public let label: String
    public let probability: Double
}

public struct SearchHit: Codable, Sendable, Equatable {
    /// The file name (an image index) or the text (a text index).
    public let item: String
    /// Row of the index.
    public let index: Int
    /// Cosine similarity of the embeddings.
    public let score: Double
    /// ITM probability, when reranked.
    public let matchProbability: Double?

    enum CodingKeys: String, CodingKey { case item, index, score, matchProbability = "match_probability" }
}

public enum InferenceResult: Sendable {
    case embeddings([[Float]])
    case labels([LabelScore])
    case probabilities([Double])
    case hits([SearchHit])
}

/// What the worker serves with: the encoders, the ITM head when the checkpoint has one, the search index.
public struct ServedModels: @unchecked Sendable {
    public let embedder: FlavaEmbedder
    public let matcher: ImageTextMatcher?
    public let index: EmbeddingIndex?
    public init(embedder: FlavaEmbedder, matcher: ImageTextMatcher?, index: EmbeddingIndex?) {
        self.embedder = embedder; self.matcher = matcher; self.index = index
    }
}

public final class InferenceWorker: @unchecked Sendable {
    public enum State: Sendable, Equatable {
        case loading, ready, draining, stopped
        case failed(String)
    }

    public struct Limits: Sendable {
        /// Images per forward pass (embeddings, matching pairs, reranking).
        public var maxBatchImages: Int
        /// Padded tokens per text forward pass (texts × longest).
        public var maxBatchTokens: Int
        /// Requests waiting (beyond it: 429).
        public var maxQueue: Int
        /// Seconds a request may wait in the queue before it is refused (503).
        public var deadline: Double
        /// Label embeddings kept for /v1/classify.
        public var labelCache: Int
        /// Extra seconds before each batch (0 in use; the shutdown tests hold a request in flight with it).
        public var batchDelay: Double
        public init(maxBatchImages: Int = 8, maxBatchTokens: Int = 16 * 77, maxQueue: Int = 64, deadline: Double = 30,
                    labelCache: Int = 4096, batchDelay: Double = 0) {
            self.maxBatchImages = maxBatchImages; self.maxBatchTokens = maxBatchTokens; self.maxQueue = maxQueue
            self.deadline = deadline; self.labelCache = labelCache; self.batchDelay = batchDelay
        }
    }

    private struct Job {
        let request: InferenceRequest
        let enqueued: ContinuousClock.Instant
        let continuation: CheckedContinuation<InferenceResult, any Error>
    }

    public let limits: Limits
    let metrics: ServeMetrics?
    private let load: @Sendable () throws -> ServedModels
    private let condition = NSCondition()
    private var pending: [Job] = []
    private var _state: State = .loading
    private var _models: ServedModels?
    private var stopRequested = false
    private var paused = false
    private var thread: Thread?
    private var finished = false
    // Label embeddings by (templates, label), oldest first out (worker thread only).
    private var labelEmbeddings: [String: Tensor] = [:]
    private var labelOrder: [String] = []

    /// `load` runs on the worker's thread when `start` is called; until it returns the state is `.loading`.
    public init(limits: Limits = Limits(), metrics: ServeMetrics? = nil, load: @escaping @Sendable () throws -> ServedModels) {
        self.limits = limits; self.metrics = metrics; self.load = load
    }

    public var state: State { condition.lock(); defer { condition.unlock() }; return _state }
    /// The loaded models (nil until ready).
    public var models: ServedModels? { condition.lock(); defer { condition.unlock() }; return _models }
    public var queueDepth: Int { condition.lock(); defer { condition.unlock() }; return pending.count }

    /// Starts the worker thread: it loads the models, then serves the queue until `stop`.
    public func start() {
        condition.lock(); defer { condition.unlock() }
        guard thread == nil else { return }
        let t = Thread { [self] in run() }
        t.name = "flava-inference"
        t.stackSize = 16 << 20
        thread = t
        t.start()
    }

    /// Holds the queue: requests wait (and the queue fills) until `resume` (maintenance and tests).
    public func pause() { condition.lock(); paused = true; condition.unlock() }
    public func resume() { condition.lock(); paused = false; condition.broadcast(); condition.unlock() }

    /// Refuses new requests (503) from now on; what is queued is still run. /health answers 503.
    public func beginDraining() {
        condition.lock(); defer { condition.unlock() }
        if _state == .ready || _state == .loading { _state = .draining }
    }

    /// Runs what is queued, then ends the thread; returns when it has ended.
    public func stop() {
        condition.lock()
        stopRequested = true
        if _state == .ready || _state == .loading { _state = .draining }
        condition.broadcast()
        let started = thread != nil
        while started && !finished { condition.wait() }
        _state = .stopped
        condition.unlock()
    }

    /// Queues `request` and waits for its answer.
    public func submit(_ request: InferenceRequest) async throws -> InferenceResult {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<InferenceResult, any Error>) in
            condition.lock()
            let refusal = InferenceWorker.refusal(_state) ?? (pending.count >= limits.maxQueue
                ? ServeError(.tooManyRequests, "the queue is full (\(limits.maxQueue) requests waiting)", retryAfter: 1) : nil)
            if let refusal {
                condition.unlock()
                c.resume(throwing: refusal)
                return
            }
            pending.append(Job(request: request, enqueued: .now, continuation: c))
            metrics?.queueDepth.set(Double(pending.count))
            condition.signal()
            condition.unlock()
        }
    }

    /// Why a worker in `state` takes no model work (503), or nil when it is ready.
    public static func refusal(_ state: State) -> ServeError? {
        switch state {
        case .ready: return nil
        case .loading: return .unavailable("the model is still loading", retryAfter: 5)
        case .failed(let m): return ServeError(.serviceUnavailable, "the model failed to load: \(m)")
        case .draining, .stopped: return .unavailable("the server is shutting down", retryAfter: 5)
        }
    }

    // MARK: the worker thread

    private func run() {
        do {
            let m = try load()
            condition.lock()
            _models = m
            if _state == .loading { _state = .ready }
            condition.unlock()
        } catch {
            let message = "\(error)"
            condition.lock(); _state = .failed(message); condition.unlock()
        }
        while let jobs = next() {
            if limits.batchDelay > 0 { Thread.sleep(forTimeInterval: limits.batchDelay) }
            let now = ContinuousClock.now
            var live: [Job] = []
            for j in jobs {
                let waited = now - j.enqueued
                metrics?.queueWait.record(waited)
                if waited > .seconds(limits.deadline) {
                    j.continuation.resume(throwing: ServeError.unavailable(
                        "deadline exceeded: waited \(String(format: "%.1f", seconds(waited))) s in the queue (limit \(limits.deadline) s)"))
                } else {
                    live.append(j)
                }
            }
            guard !live.isEmpty else { continue }
            guard let models = models else {
                for j in live { j.continuation.resume(throwing: ServeError.unavailable("the model is not loaded")) }
                continue
            }
            let kind = live[0].request.kind
            let t0 = ContinuousClock.now
            let results = execute(live.map(\.request), models)
            metrics?.inference(kind: kind).record(ContinuousClock.now - t0)
            for (j, r) in zip(live, results) {
                switch r {
                case .success(let v): j.continuation.resume(returning: v)
                case .failure(let e): j.continuation.resume(throwing: e)
                }
            }
        }
        condition.lock()
        // Whatever arrived after the last batch (nothing can, once stopping) is refused, never left waiting.
        for j in pending { j.continuation.resume(throwing: ServeError.unavailable("the server is shutting down")) }
        pending.removeAll()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// The next batch: the oldest request and, when it is an embedding, the following ones of the same kind
    /// that fit the batch; nil once stopping with nothing left.
    private func next() -> [Job]? {
        condition.lock(); defer { condition.unlock() }
        while (pending.isEmpty || paused) && !stopRequested { condition.wait() }
        if pending.isEmpty { return nil }
        let first = pending.removeFirst()
        var batch = [first]
        switch first.request {
        case .embedImages(let px):
            var images = px.shape[0]
            var i = 0
            while i < pending.count {
                if case .embedImages(let p) = pending[i].request, images + p.shape[0] <= limits.maxBatchImages {
                    images += p.shape[0]; batch.append(pending.remove(at: i))
                } else { i += 1 }
            }
        case .embedTexts(let ids):
            var count = ids.count, longest = ids.map(\.count).max() ?? 0
            var i = 0
            while i < pending.count {
                if case .embedTexts(let more) = pending[i].request {
                    let l = max(longest, more.map(\.count).max() ?? 0)
                    if (count + more.count) * l <= limits.maxBatchTokens {
                        count += more.count; longest = l; batch.append(pending.remove(at: i)); continue
                    }
                }
                i += 1
            }
        default: break
        }
        metrics?.queueDepth.set(Double(pending.count))
        return batch
    }

    /// Runs one batch (requests of one kind); one result per request.
    private func execute(_ requests: [InferenceRequest], _ m: ServedModels) -> [Result<InferenceResult, any Error>] {
        switch requests[0] {
        case .embedImages:
            let parts = requests.map { r -> Tensor in if case .embedImages(let p) = r { return p }; fatalError("batched kinds differ") }
            let counts = parts.map { $0.shape[0] }
            metrics?.batchSize(kind: "embed_images").record(Double(counts.reduce(0, +)) as Double)
            let pixels = parts.count == 1 ? parts[0] : ShapeKernel.concat(parts, axis: 0)
            let e = m.embedder.imageEmbeddings(pixels, batchSize: limits.maxBatchImages)
            return split(e, counts)
        case .embedTexts:
            let parts = requests.map { r -> [[Int]] in if case .embedTexts(let t) = r { return t }; fatalError("batched kinds differ") }
            let all = parts.flatMap { $0 }
            metrics?.batchSize(kind: "embed_texts").record(Double(all.count) as Double)
            let longest = max(1, all.map(\.count).max() ?? 1)
            let e = m.embedder.textEmbeddings(m.embedder.batch(ids: all), batchSize: max(1, limits.maxBatchTokens / longest))
            return split(e, parts.map(\.count))
        default:
            return requests.map { r in Result { try single(r, m) } }
        }
    }

    private func split(_ e: Tensor, _ counts: [Int]) -> [Result<InferenceResult, any Error>] {
        let p = e.shape[1], v = e.array
        var start = 0
        return counts.map { n in
            defer { start += n }
            return .success(.embeddings((0..<n).map { i in Array(v[((start + i) * p)..<((start + i + 1) * p)]) }))
        }
    }

    private func single(_ r: InferenceRequest, _ m: ServedModels) throws -> InferenceResult {
        switch r {
        case .classify(let pixels, let labels, let templates):
            metrics?.batchSize(kind: "classify").record(Double(1) as Double)
            let image = m.embedder.imageEmbeddings(pixels, batchSize: 1)
            let classes = try labelEmbeddingRows(labels, templates: templates, m.embedder)
            let probs = m.embedder.labelProbabilities(images: image, classes: classes)[0]
            return .labels(zip(labels, probs).map { LabelScore(label: $0, probability: $1) }
                .sorted { $0.probability > $1.probability })
        case .match(let pixels, let texts):
            guard let matcher = m.matcher else {
                throw ServeError(.notImplemented, "this model has no image-text matching head (a FlavaModel checkpoint); /v1/match needs a FlavaForPreTraining one")
            }
            metrics?.batchSize(kind: "match").record(Double(texts.count) as Double)
            return .probabilities(try matcher.probabilities(pixels: pixels, texts: texts, batchSize: limits.maxBatchImages))
        case .search(let query, let k, let rerank):
            guard let index = m.index else { throw ServeError(.notImplemented, "no index: start the server with --index FOLDER or --index TEXTS.txt") }
            metrics?.batchSize(kind: "search").record(Double(1) as Double)
            let q: Tensor
            switch query {
            case .text(let t): q = m.embedder.textEmbeddings(try m.embedder.tokenize([t]))
            case .image(let px): q = m.embedder.imageEmbeddings(px, batchSize: 1)
            }
            let top = index.search(q, k: min(k, index.items.count))
            var hits = top.map { SearchHit(item: name(index, $0.index), index: $0.index, score: $0.similarity, matchProbability: nil) }
            if rerank {
                guard let matcher = m.matcher else {
                    throw ServeError(.notImplemented, "this model has no image-text matching head to rerank with")
                }
                let p: [Double]
                switch (query, index.kind) {
                case (.text(let t), .images):
                    let px = m.embedder.pixelValues(try top.map { try RGBImage.load(index.items[$0.index]) })
                    p = try matcher.probabilities(pixels: px, texts: Array(repeating: t, count: top.count), batchSize: limits.maxBatchImages)
                case (.image(let px), .texts):
                    p = try matcher.probabilities(pixels: px, texts: top.map { index.items[$0.index] }, batchSize: limits.maxBatchImages)
                default:
                    throw ServeError.badRequest("rerank needs a text query over an image index or an image query over a text index")
                }
                hits = zip(hits, p).map { SearchHit(item: $0.item, index: $0.index, score: $0.score, matchProbability: $1) }
                    .sorted { ($0.matchProbability ?? 0) > ($1.matchProbability ?? 0) }
            }
            return .hits(hits)
        default:
            fatalError("embeddings are batched")
        }
    }

    private func name(_ index: EmbeddingIndex, _ row: Int) -> String {
        index.kind == .images ? URL(fileURLWithPath: index.items[row]).lastPathComponent : index.items[row]
    }

    /// Class embedding rows [labels, P] from the cache, computing the missing ones in one pass.
    private func labelEmbeddingRows(_ labels: [String], templates: [String], _ embedder: FlavaEmbedder) throws -> Tensor {
        let prefix = templates.joined(separator: "\u{1F}") + "\u{1E}"
        let missing = Array(Set(labels.filter { labelEmbeddings[prefix + $0] == nil })).sorted()
        if !missing.isEmpty {
            let e = try embedder.classEmbeddings(classes: missing, templates: templates)
            for (i, l) in missing.enumerated() {
                labelEmbeddings[prefix + l] = ShapeKernel.slice(e, axis: 0, start: i, end: i + 1)
                labelOrder.append(prefix + l)
            }
            while labelOrder.count > max(limits.labelCache, labels.count) {
                labelEmbeddings[labelOrder.removeFirst()] = nil
            }
        }
        metrics?.labelCacheSize.set(Double(labelEmbeddings.count))
        return ShapeKernel.concat(labels.map { labelEmbeddings[prefix + $0]! }, axis: 0)
    }
}
