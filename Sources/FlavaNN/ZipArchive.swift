// A minimal read-only ZIP reader over a memory-mapped file, enough for PyTorch checkpoints.
//
// Why our own rather than ZIPFoundation: torch.save writes every entry *stored* (uncompressed, 64-byte
// aligned) precisely so that loaders can map tensors in place; a general ZIP library extracts entries into
// fresh buffers, which would need twice a 1 GB checkpoint's size in memory. Compressed entries are refused
// with a clear error. ZIP64 records (archives over 4 GB) are understood.

/// The entries of a ZIP archive.
struct ZipArchive {
    struct Entry { let name: String; let method: Int; let compressedSize: Int; let size: Int; let localHeader: Int }

    let file: MappedFile
    let entries: [String: Entry]

    init(file: MappedFile) throws {
        self.file = file
        let path = file.path
        let size = file.size
        func u16(_ o: Int) -> Int { Int(UInt16(littleEndian: file.base.loadUnaligned(fromByteOffset: o, as: UInt16.self))) }
        func u32(_ o: Int) -> Int { Int(UInt32(littleEndian: file.base.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
        func u64(_ o: Int) -> Int { Int(truncatingIfNeeded: UInt64(littleEndian: file.base.loadUnaligned(fromByteOffset: o, as: UInt64.self))) }
        guard size >= 22 else { throw CheckpointError(path, "truncated zip archive (\(size) bytes)") }
        // End of central directory: the last 0x06054b50 within the final 64 KiB + 22 bytes.
        var eocd = -1
        var i = size - 22
        let lowest = max(0, size - 22 - 65_535)
        while i >= lowest { if u32(i) == 0x0605_4b50 { eocd = i; break }; i -= 1 }
        guard eocd >= 0 else { throw CheckpointError(path, "not a zip archive, or truncated (no end-of-central-directory record)") }
        var count = u16(eocd + 10), cdSize = u32(eocd + 12), cdOffset = u32(eocd + 16)
        if count == 0xffff || cdSize == 0xffff_ffff || cdOffset == 0xffff_ffff {
            let loc = eocd - 20
            guard loc >= 0, u32(loc) == 0x0706_4b50 else { throw CheckpointError(path, "zip64 locator missing") }
            let z = u64(loc + 8)
            // Comparisons by subtraction: 64-bit fields from the file may be anything, and a sum could overflow.
            guard z >= 0, z <= size - 56, u32(z) == 0x0606_4b50 else { throw CheckpointError(path, "zip64 end record out of range") }
            count = u64(z + 32); cdSize = u64(z + 40); cdOffset = u64(z + 48)
        }
        guard cdOffset >= 0, cdSize >= 0, cdOffset <= size, cdSize <= size - cdOffset else {
            throw CheckpointError(path, "zip central directory out of range (file truncated?)")
        }
        // Every entry takes at least 46 bytes of the directory.
        guard count >= 0, count <= cdSize / 46 else { throw CheckpointError(path, "zip central directory claims \(count) entries in \(cdSize) bytes") }
        var entries: [String: Entry] = [:]
        var p = cdOffset
        for _ in 0..<count {
            guard p + 46 <= cdOffset + cdSize, u32(p) == 0x0201_4b50 else {
                throw CheckpointError(path, "corrupt zip central directory")
            }
            let method = u16(p + 10)
            var comp = u32(p + 20), uncomp = u32(p + 24)
            let nameLen = u16(p + 28), extraLen = u16(p + 30), commentLen = u16(p + 32)
            var local = u32(p + 42)
            guard p + 46 + nameLen + extraLen + commentLen <= size else { throw CheckpointError(path, "corrupt zip entry") }
            let name = String(decoding: file.bytes(p + 46, nameLen), as: UTF8.self)
            // ZIP64 extended information: 64-bit fields appear in order for each 32-bit field set to 0xffffffff.
            var e = p + 46 + nameLen
            let extraEnd = e + extraLen
            while e + 4 <= extraEnd {
                let id = u16(e), len = u16(e + 2)
                if id == 0x0001 {
                    var q = e + 4
                    let end = min(extraEnd, q + len)
                    func next() throws -> Int {
                        guard q + 8 <= end else { throw CheckpointError(path, "corrupt zip64 extra field in entry '\(name)'") }
                        defer { q += 8 }
                        return u64(q)
                    }
                    if uncomp == 0xffff_ffff { uncomp = try next() }
                    if comp == 0xffff_ffff { comp = try next() }
                    if local == 0xffff_ffff { local = try next() }
                }
                e += 4 + len
            }
            entries[name] = Entry(name: name, method: method, compressedSize: comp, size: uncomp, localHeader: local)
            p += 46 + nameLen + extraLen + commentLen
        }
        self.entries = entries
    }

    /// Byte offset of an entry's data in the file, checked to lie inside it. Stored entries only.
    func dataRange(_ name: String) throws -> (offset: Int, count: Int) {
        guard let e = entries[name] else { throw CheckpointError(file.path, "zip entry '\(name)' is missing") }
        guard e.method == 0 else {
            throw CheckpointError(file.path, "zip entry '\(name)' is compressed (method \(e.method)); torch.save writes stored entries, re-save the checkpoint or convert it to safetensors")
        }
        let h = e.localHeader
        guard h >= 0, h <= file.size - 30,
              UInt32(littleEndian: file.base.loadUnaligned(fromByteOffset: h, as: UInt32.self)) == 0x0403_4b50 else {
            throw CheckpointError(file.path, "zip entry '\(name)': bad local header")
        }
        let nameLen = Int(UInt16(littleEndian: file.base.loadUnaligned(fromByteOffset: h + 26, as: UInt16.self)))
        let extraLen = Int(UInt16(littleEndian: file.base.loadUnaligned(fromByteOffset: h + 28, as: UInt16.self)))
        let start = h + 30 + nameLen + extraLen
        guard e.size >= 0, start <= file.size, e.size <= file.size - start else {
            throw CheckpointError(file.path, "zip entry '\(name)' runs past the end of the file (truncated?)")
        }
        return (start, e.size)
    }
}
