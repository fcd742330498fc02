// A minimal blocking HTTP/1.1 client (one request per connection, Connection: close) for flava serve's load
// generator and soak run (flava-bench serve-load) and its tests: POSIX sockets and nothing else, so that
// measuring the server does not depend on another HTTP stack's thread pool.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct LoopbackResponse: Sendable {
    public let status: Int
    public let headers: [String: String]
    public let body: Data
    public var text: String { String(decoding: body, as: UTF8.self) }
}

public struct LoopbackClientError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

public enum LoopbackClient {
    /// Sends one request to host:port and reads the whole response (at most `timeout` seconds).
    public static func request(host: String = "127.0.0.1", port: Int, method: String = "GET", path: String,
                               headers: [String: String] = [:], body: Data? = nil, timeout: Double = 120) throws -> LoopbackResponse {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LoopbackClientError(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int(timeout.truncatingRemainder(dividingBy: 1) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr) == 1 else {
            throw LoopbackClientError(description: "\(host): not an IPv4 address")
        }
        let ok = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { throw LoopbackClientError(description: "connect \(host):\(port): \(String(cString: strerror(errno)))") }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        var out = Data(head.utf8)
        if let body { out.append(body) }
        try out.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
            var sent = 0
            while sent < b.count {
                let n = send(fd, b.baseAddress! + sent, b.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 {
                    // The server may answer (413) and close before the whole body is sent: read what it said.
                    if errno == EPIPE || errno == ECONNRESET { return }
                    throw LoopbackClientError(description: "send: \(String(cString: strerror(errno)))")
                }
                sent += n
            }
        }
        var received = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET && !received.isEmpty { break }
                throw LoopbackClientError(description: "recv: \(String(cString: strerror(errno)))")
            }
            received.append(contentsOf: buf[0..<n])
        }
        return try parse(received)
    }

    /// POST of a JSON body.
    public static func post(port: Int, path: String, json: Data, headers: [String: String] = [:], timeout: Double = 120) throws -> LoopbackResponse {
        var h = headers
        h["Content-Type"] = "application/json"
        return try request(port: port, method: "POST", path: path, headers: h, body: json, timeout: timeout)
    }

    static func parse(_ d: Data) throws -> LoopbackResponse {
        let bytes = [UInt8](d)
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 && bytes[$0 + 2] == 13 && bytes[$0 + 3] == 10 }) else {
            throw LoopbackClientError(description: "incomplete HTTP response (\(bytes.count) bytes)")
        }
        let lines = String(decoding: bytes[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw LoopbackClientError(description: "bad status line: \(lines[0])") }
        var headers: [String: String] = [:]
        for l in lines.dropFirst() {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(bytes[(end + 4)...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = try dechunk(body) }
        else if let l = headers["content-length"].flatMap(Int.init), l <= body.count { body = body.prefix(l) }
        return LoopbackResponse(status: status, headers: headers, body: body)
    }

    static func dechunk(_ d: Data) throws -> Data {
        let b = [UInt8](d)
        var out = Data(), i = 0
        while i < b.count {
            guard let lineEnd = (i..<max(i, b.count - 1)).first(where: { b[$0] == 13 && b[$0 + 1] == 10 }),
                  let size = Int(String(decoding: b[i..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16) else {
                throw LoopbackClientError(description: "malformed chunked body")
            }
            if size == 0 { break }
            let start = lineEnd + 2
            guard start + size <= b.count else { throw LoopbackClientError(description: "truncated chunked body") }
            out.append(contentsOf: b[start..<(start + size)])
            i = start + size + 2
        }
        return out
    }
}
