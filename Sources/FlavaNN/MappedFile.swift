// Read-only memory mapping of a file (private, copy-on-write), so large checkpoints are paged in on demand
// and tensors can point straight into them.
import Foundation

/// A file mapped into memory; unmapped when the last tensor borrowing it is released.
/// Sendable (unchecked: a raw pointer): every field is set once in `init`, and the mapping is only read.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let base: UnsafeMutableRawPointer
    public let size: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw CheckpointError(path, String(cString: strerror(errno)).lowercased())
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CheckpointError(path, "cannot stat file") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw CheckpointError(path, "not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            base = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
            isMapped = false
            return
        }
        // MAP_PRIVATE + PROT_WRITE: writes (never done by us) would stay private; reads share the page cache.
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw CheckpointError(path, "cannot map file into memory") }
        base = p
        isMapped = true
    }

    private let isMapped: Bool

    /// Bytes [offset, offset+count) as a buffer (bounds are the caller's to check).
    public func bytes(_ offset: Int, _ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + offset, count: count)
    }

    deinit {
        if isMapped { munmap(base, size) } else { base.deallocate() }
    }
}
