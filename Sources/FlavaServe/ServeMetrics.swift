// The service's Prometheus metrics (GET /metrics, text exposition format), on swift-prometheus: requests by
// route and status, request latency by route, time waiting in the queue, inference time and batch sizes by
// kind, queue depth, label-cache size. Routes are a fixed set (anything else is "other"), so a client cannot
// grow the label space.
import Foundation
import Prometheus

public final class ServeMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    public let queueDepth: Gauge
    public let labelCacheSize: Gauge
    public let queueWait: DurationHistogram

    static let routes: Set<String> = ["/v1/embed", "/v1/classify", "/v1/match", "/v1/search", "/health", "/metrics", "/openapi.json"]
    static let latencyBuckets: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30].map { .milliseconds(Int($0 * 1000)) }

    public init() {
        queueDepth = registry.makeGauge(descriptor: .init(namespace: "flava", metricName: "queue", unitName: "depth",
                                                          helpText: "Requests waiting for the inference worker"))
        labelCacheSize = registry.makeGauge(descriptor: .init(namespace: "flava", metricName: "label_cache", unitName: "entries",
                                                              helpText: "Label embeddings cached for /v1/classify"))
        queueWait = registry.makeDurationHistogram(
            descriptor: .init(namespace: "flava", metricName: "queue_wait", unitName: "seconds",
                              helpText: "Time from a request entering the queue to the worker taking it"),
            labels: [], buckets: ServeMetrics.latencyBuckets)
    }

    /// The route label of a path.
    static func route(_ path: String) -> String { routes.contains(path) ? path : "other" }

    public func requestFinished(path: String, method: String, status: Int, duration: Duration) {
        let route = ServeMetrics.route(path)
        registry.makeCounter(descriptor: .init(namespace: "flava", metricName: "http_requests", unitName: "total",
                                               helpText: "HTTP requests answered, by route, method and status"),
                             labels: [("route", route), ("method", method), ("status", String(status))]).increment()
        registry.makeDurationHistogram(
            descriptor: .init(namespace: "flava", metricName: "http_request_duration", unitName: "seconds",
                              helpText: "Time to answer a request, by route"),
            labels: [("route", route)], buckets: ServeMetrics.latencyBuckets).record(duration)
    }

    func inference(kind: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: .init(namespace: "flava", metricName: "inference", unitName: "seconds",
                              helpText: "Model time of one batch, by kind"),
            labels: [("kind", kind)], buckets: ServeMetrics.latencyBuckets)
    }

    func batchSize(kind: String) -> ValueHistogram {
        registry.makeValueHistogram(
            descriptor: .init(namespace: "flava", metricName: "batch", unitName: "items",
                              helpText: "Items (images, texts or pairs) per batch run by the worker, by kind"),
            labels: [("kind", kind)], buckets: [1, 2, 4, 8, 16, 32, 64, 128])
    }

    public func text() -> String { registry.emitToString() }
}
