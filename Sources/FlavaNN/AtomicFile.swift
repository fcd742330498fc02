// Atomic file replacement: write a temporary file beside the target, flush it to disk, rename it into place.
import Foundation

/// Buffered writer to a file descriptor.
public final class FileSink {
    let fd: Int32
    let path: String
    private var buffer: [UInt8] = []

    init(fd: Int32, path: String) { self.fd = fd; self.path = path; buffer.reserveCapacity(1 << 20) }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if bytes.count >= (1 << 20) { try flush(); try writeAll(bytes); return }
        buffer.append(contentsOf: bytes)
        if buffer.count >= (1 << 20) { try flush() }
    }

    func flush() throws {
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw CheckpointError(path, "write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }
}

/// Atomic writes.
public enum AtomicFile {
    /// Runs `body` against a temporary file next to `path`; on success flushes, fsyncs and renames it to
    /// `path`; on failure removes it. Readers see either the old file or the complete new one.
    public static func write(to path: String, _ body: (FileSink) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw CheckpointError(path, "folder \(dir) does not exist")
        }
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw CheckpointError(path, "cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        do {
            let sink = FileSink(fd: fd, path: path)
            try body(sink)
            try sink.flush()
            guard fsync(fd) == 0 else { throw CheckpointError(path, "fsync failed: \(String(cString: strerror(errno)))") }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            throw CheckpointError(path, "rename failed: \(String(cString: strerror(errno)))")
        }
        ok = true
        // Make the rename itself durable.
        let dfd = open(dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}

/// Atomic folder writes: checkpoints are folders of several files.
public enum AtomicFolder {
    /// Runs `body` with a fresh temporary folder beside `path`; on success moves it to `path` (swapping out any
    /// folder already there), on failure removes it. A crash or an error never leaves a half-written folder under
    /// the final name. With `keepingOtherFiles`, files already in the folder that `body` does not write (a run's
    /// logs and checkpoints beside a saved model) are carried into the new folder before the swap: hard-linked
    /// (copied where the file system has no hard links), so gigabytes of checkpoints are not copied at each save.
    public static func write(to path: String, keepingOtherFiles: Bool = false, _ body: (String) throws -> Void) throws {
        let fm = FileManager.default
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let tmp = path + ".tmp-\(getpid())"
        try? fm.removeItem(atPath: tmp)
        try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        do {
            try body(tmp)
            if keepingOtherFiles, let existing = try? fm.contentsOfDirectory(atPath: path) {
                let written = Set(try fm.contentsOfDirectory(atPath: tmp))
                for name in existing where !written.contains(name) {
                    try linkTree(path + "/" + name, to: tmp + "/" + name)
                }
            }
        } catch { try? fm.removeItem(atPath: tmp); throw error }
        if fm.fileExists(atPath: path) {
            let old = path + ".old-\(getpid())"
            try? fm.removeItem(atPath: old)
            try fm.moveItem(atPath: path, toPath: old)
            try fm.moveItem(atPath: tmp, toPath: path)
            try? fm.removeItem(atPath: old)
        } else {
            try fm.moveItem(atPath: tmp, toPath: path)
        }
    }

    /// Recreates `source` at `destination`: folders as new folders, files as hard links to the same data.
    static func linkTree(_ source: String, to destination: String) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: source, isDirectory: &isDir) else { return }
        if isDir.boolValue {
            try fm.createDirectory(atPath: destination, withIntermediateDirectories: false)
            for name in try fm.contentsOfDirectory(atPath: source) { try linkTree(source + "/" + name, to: destination + "/" + name) }
        } else if link(source, destination) != 0 {
            try fm.copyItem(atPath: source, toPath: destination)
        }
    }
}
