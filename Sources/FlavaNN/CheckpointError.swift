// Errors from reading and writing checkpoints: each names the file and what is wrong with it, in one line.

/// A checkpoint file that cannot be read or does not fit the model.
public struct CheckpointError: Error, CustomStringConvertible, Equatable {
    /// The file concerned (or the folder).
    public let path: String
    /// What is wrong, in one line.
    public let reason: String

    public init(_ path: String, _ reason: String) { self.path = path; self.reason = reason }

    public var description: String { "\(path): \(reason)" }
}
