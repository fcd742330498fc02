// Reading configuration files that may come from anywhere (DESIGN §3.11): every field is decoded with its
// default when absent, refused when present with the wrong type or `null`, and then range-checked before
// anything is built from it. One error type, one line: the file, the field and the value.
import Foundation

/// A config file that cannot be used, in one line.
public struct ConfigError: Error, CustomStringConvertible {
    public let path: String, reason: String
    public init(_ path: String, _ reason: String) { self.path = path; self.reason = reason }
    public var description: String { "\(path): \(reason)" }

    /// A one-line description of a decoding error with the offending field.
    public static func describe(_ e: DecodingError) -> String {
        switch e {
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .keyNotFound(_, let ctx), .dataCorrupted(let ctx):
            let path = ctx.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? "not valid JSON (\(ctx.debugDescription))" : "field '\(path)': \(ctx.debugDescription)"
        @unknown default: return "\(e)"
        }
    }

    /// Decodes `T` from the JSON file at `path`; a missing file, bad JSON or a field of the wrong type is one
    /// ConfigError naming the file (and the field).
    public static func decode<T: Decodable>(_ type: T.Type, fromFile path: String) throws -> T {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw ConfigError(path, "no such file") }
        guard !isDirectory.boolValue else { throw ConfigError(path, "is a folder, expected a JSON file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigError(path, "cannot read file") }
        return try decode(type, from: data, file: path)
    }

    /// Decodes `T` from JSON bytes that came from `file`.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, file: String) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: data) }
        catch let e as DecodingError { throw ConfigError(file, describe(e)) }
        catch let e as ConfigError { throw e }
        catch { throw ConfigError(file, "not valid JSON (\(error))") }
    }
}

/// Decoding helpers: every key optional, defaulting to the reference's value.
extension KeyedDecodingContainer {
    /// The value at `key`, or `fallback` when the key is absent. An explicit `null` is refused: it would
    /// otherwise silently become the default (transformers would store None and fail later, or differ).
    public func value<T: Decodable>(_ key: Key, _ fallback: T) throws -> T {
        guard contains(key) else { return fallback }
        if try decodeNil(forKey: key) {
            throw DecodingError.valueNotFound(T.self, .init(codingPath: codingPath + [key],
                                                            debugDescription: "null; expected a value of type \(T.self)"))
        }
        do { return try decode(T.self, forKey: key) }
        catch let e as DecodingError { throw e }
        catch {
            // Foundation throws a number that does not fit the type (1e30 or 3.5 for an Int) as an internal
            // error that surfaces as "not valid JSON" with no field; say which field and why.
            let shown = (try? decode(Double.self, forKey: key)).map { "\($0)" } ?? "this value"
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [key],
                                                    debugDescription: "\(shown) is not a valid \(T.self)"))
        }
    }
}

/// Range and consistency checks for one section of a configuration file. Each check throws a
/// `ConfigError` that names the file, the field (with its section, `text_config.hidden_size`) and the value.
public struct ConfigChecker: Sendable {
    /// The file (or a description of where the config came from).
    public let file: String
    /// The section's key path, "" for the top level.
    public let section: String

    public init(file: String, section: String = "") { self.file = file; self.section = section }

    /// The checker of a nested section.
    public func nested(_ name: String) -> ConfigChecker { ConfigChecker(file: file, section: field(name)) }

    /// The full dotted name of a field of this section.
    public func field(_ name: String) -> String { section.isEmpty ? name : section + "." + name }

    /// The error for `name` having `value`.
    public func error(_ name: String, _ value: Any, _ problem: String) -> ConfigError {
        ConfigError(file, "field '\(field(name))' = \(value): \(problem)")
    }

    /// `value` must be within `range`.
    public func int(_ name: String, _ value: Int, in range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw error(name, value, range.upperBound == .max ? "must be at least \(range.lowerBound)"
                                                              : "must be between \(range.lowerBound) and \(range.upperBound)")
        }
    }

    /// `value` must be finite and within `range` (excluding the lower bound with `aboveLower`).
    public func number(_ name: String, _ value: Double, in range: ClosedRange<Double>, aboveLower: Bool = false) throws {
        guard value.isFinite else { throw error(name, value, "must be a finite number") }
        guard range.contains(value), !(aboveLower && value == range.lowerBound) else {
            let low = aboveLower ? "greater than \(range.lowerBound)" : "at least \(range.lowerBound)"
            throw error(name, value, range.upperBound == .greatestFiniteMagnitude ? "must be \(low)" : "must be \(low) and at most \(range.upperBound)")
        }
    }

    /// `value` must be one of `allowed`.
    public func oneOf(_ name: String, _ value: String, _ allowed: [String], _ why: String = "") throws {
        guard allowed.contains(value) else {
            throw error(name, "\"\(value)\"", "must be " + allowed.map { "\"\($0)\"" }.joined(separator: " or ") + (why.isEmpty ? "" : " (\(why))"))
        }
    }

    /// A consistency rule: `ok` or an error naming `name` and `value`.
    public func require(_ ok: Bool, _ name: String, _ value: Any, _ problem: String) throws {
        if !ok { throw error(name, value, problem) }
    }
}

/// Sizes of things described by untrusted files, checked against what this machine can hold.
public enum ResourceLimits {
    /// Physical memory of this machine in bytes.
    public static var physicalMemory: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }

    /// Human-readable byte count ("1.2 GB").
    public static func bytes(_ n: Double) -> String {
        let units = ["B", "kB", "MB", "GB", "TB", "PB"]
        var v = n, u = 0
        while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
        return u == 0 ? "\(Int(v)) B" : String(format: "%.1f", v) + " " + units[u]
    }
}
