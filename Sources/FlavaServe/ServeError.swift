// The service's errors: each an HTTP status and one line naming the problem, answered as {"error": "..."}
// (README "flava serve", the limits). Every failure a request can cause maps to one of these, so that a bad
// request gets its 4xx and the server goes on serving.
import Foundation
import Hummingbird
import NIOCore
import FlavaKit

public struct ServeError: HTTPResponseError, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let message: String
    /// Seconds after which a retry may succeed (429 and 503 carry it as Retry-After).
    public let retryAfter: Int?

    public init(_ status: HTTPResponse.Status, _ message: String, retryAfter: Int? = nil) {
        self.status = status; self.message = message; self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(message)" }

    public static func badRequest(_ m: String) -> ServeError { ServeError(.badRequest, m) }
    public static func tooLarge(_ m: String) -> ServeError { ServeError(.contentTooLarge, m) }
    public static func unavailable(_ m: String, retryAfter: Int = 1) -> ServeError { ServeError(.serviceUnavailable, m, retryAfter: retryAfter) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: ServeError.json(message))))
    }

    /// {"error": message} as UTF-8 bytes.
    static func json(_ message: String) -> [UInt8] {
        Array((try? JSONEncoder().encode(["error": message])) ?? Data(#"{"error":"internal error"}"#.utf8))
    }

    /// The ServeError for any error a handler can meet: the service's own, Hummingbird's (404, 405, a body over
    /// the limit), the library's one-line errors about inputs (400), and anything else (500, logged by the caller).
    public static func from(_ error: any Error) -> ServeError {
        switch error {
        case let e as ServeError: return e
        case is NIOTooManyBytesError: return .tooLarge("request body exceeds the limit")
        case let e as HTTPError:
            let m = e.body ?? (e.status == .notFound ? "no such route" : e.status.reasonPhrase)
            return ServeError(e.status, m)
        case let e as HTTPResponseError: return ServeError(e.status, e.status.reasonPhrase)
        case let e as ImageError: return e.tooLarge ? .tooLarge(e.description) : .badRequest(e.description)
        case let e as DecodingError: return .badRequest(describe(e))
        case let e as DataError: return .badRequest(e.description)
        case let e as TokenizerError: return .badRequest(e.description)
        default: return ServeError(.internalServerError, "internal error: \(error)")
        }
    }

    /// One line for a JSON decoding error: where in the body, and what was wrong.
    static func describe(_ e: DecodingError) -> String {
        func path(_ c: [any CodingKey]) -> String {
            let p = c.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return p.isEmpty ? "the body" : String(p.drop(while: { $0 == "." }))
        }
        switch e {
        case .dataCorrupted(let c):
            return c.codingPath.isEmpty ? "malformed JSON body" : "\(path(c.codingPath)): \(c.debugDescription)"
        case .keyNotFound(let k, let c): return "\(path(c.codingPath + [k])): missing"
        case .typeMismatch(let t, let c): return "\(path(c.codingPath)): expected \(typeName(t))"
        case .valueNotFound(let t, let c): return "\(path(c.codingPath)): expected \(typeName(t)), got null"
        @unknown default: return "malformed JSON body"
        }
    }

    static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is String.Type: return "a string"
        case is [String].Type: return "a list of strings"
        case is Int.Type: return "an integer"
        case is Bool.Type: return "true or false"
        case is Double.Type, is Float.Type: return "a number"
        default: return "\(t)".contains("Array") ? "a list" : "an object"
        }
    }
}
