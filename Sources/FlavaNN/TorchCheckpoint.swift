// PyTorch checkpoints (`pytorch_model.bin`, torch.save's zip format) read through the restricted unpickler,
// with tensors mapped from the archive's stored entries.
import Foundation
import FlavaTensor

/// A `torch.save`d state dict, opened for reading. No code from the file is ever executed.
public final class TorchCheckpoint: TensorSource {
    public let sourcePath: String
    public let keys: [String]
    private let refs: [String: TorchTensorRef]
    private let zip: ZipArchive
    private let prefix: String

    public init(path: String) throws {
        sourcePath = path
        let file = try MappedFile(path: path)
        if file.size >= 2, file.base.load(as: UInt8.self) == 0x80 {
            throw CheckpointError(path, "legacy (pre-1.6) torch.save format is not supported; re-save it with a current PyTorch or convert it to safetensors")
        }
        if file.size >= 4, file.base.loadUnaligned(as: UInt32.self) != UInt32(0x0403_4b50).littleEndian {
            throw CheckpointError(path, "not a PyTorch checkpoint (no zip signature)")
        }
        zip = try ZipArchive(file: file)
        guard let pkl = zip.entries.keys.filter({ $0.hasSuffix("/data.pkl") || $0 == "data.pkl" }).min(by: { $0.count < $1.count }) else {
            throw CheckpointError(path, "no data.pkl in the archive: not a torch.save file")
        }
        prefix = pkl == "data.pkl" ? "" : String(pkl.dropLast("data.pkl".count))
        let (off, count) = try zip.dataRange(pkl)
        var root: PickleValue
        do {
            var u = Unpickler(file.bytes(off, count))
            root = try u.load()
        } catch let e as PickleError {
            throw CheckpointError(path, e.message)
        }
        // Accept {"state_dict": {...}} / {"model": {...}} wrappers as well as a bare state dict.
        if case .dict(let d) = root {
            for wrapper in ["state_dict", "model", "module"] {
                if case .dict(let inner)? = d.values[wrapper], d.keys.count == 1 { root = .dict(inner) }
            }
        }
        guard case .dict(let dict) = root else { throw CheckpointError(path, "the pickled object is not a dictionary of tensors") }
        var refs: [String: TorchTensorRef] = [:]
        var keys: [String] = []
        for k in dict.keys {
            guard case .tensor(let r)? = dict.values[k] else { continue }  // skip non-tensor entries (e.g. _metadata)
            refs[k] = r
            keys.append(k)
        }
        self.refs = refs
        self.keys = keys
        for k in keys { _ = try storageRange(refs[k]!, key: k) }  // validate every tensor up front
    }

    public func info(_ key: String) -> (dtype: DType, shape: [Int])? { refs[key].map { ($0.dtype, $0.shape) } }

    /// The bytes of a tensor's storage and a check that every element it addresses lies inside it.
    private func storageRange(_ r: TorchTensorRef, key: String) throws -> (offset: Int, count: Int) {
        let (off, bytes) = try zip.dataRange(prefix + "data/" + r.storageKey)
        let numel = bytes / r.dtype.size
        if Tensor.elementCount(r.shape) > 0 {
            var maxIndex = r.storageOffset
            for (s, st) in Swift.zip(r.shape, r.stride) {
                guard st >= 0 else { throw CheckpointError(sourcePath, "tensor '\(key)': negative stride") }
                maxIndex += (s - 1) * st
            }
            guard maxIndex < numel else {
                throw CheckpointError(sourcePath, "tensor '\(key)' addresses element \(maxIndex) of a storage holding \(numel) (file truncated or corrupt)")
            }
        }
        return (off, numel)
    }

    private func ref(_ key: String) throws -> TorchTensorRef {
        guard let r = refs[key] else { throw CheckpointError(sourcePath, "no tensor named '\(key)'") }
        return r
    }

    private func isContiguous(_ r: TorchTensorRef) -> Bool {
        var expected = 1
        for (s, st) in Swift.zip(r.shape, r.stride).reversed() where s != 1 {
            if st != expected { return false }
            expected *= s
        }
        return true
    }

    /// Element indices (into the storage) of a strided tensor, row-major.
    private func elementIndices(_ r: TorchTensorRef) -> [Int] {
        let n = Tensor.elementCount(r.shape)
        var out = [Int](repeating: 0, count: n)
        var idx = [Int](repeating: 0, count: r.shape.count)
        var cur = r.storageOffset
        for i in 0..<n {
            out[i] = cur
            var d = r.shape.count - 1
            while d >= 0 {
                idx[d] += 1; cur += r.stride[d]
                if idx[d] < r.shape[d] { break }
                cur -= r.stride[d] * r.shape[d]; idx[d] = 0; d -= 1
            }
        }
        return out
    }

    public func floatTensor(_ key: String) throws -> Tensor {
        let r = try ref(key)
        let (off, _) = try storageRange(r, key: key)
        let n = Tensor.elementCount(r.shape)
        let base = zip.file.base + off
        if isContiguous(r) {
            let src = base + r.storageOffset * r.dtype.size
            if r.dtype == .f32, n > 0, Int(bitPattern: src) % 4 == 0 {
                return Tensor(shape: r.shape, storage: TensorStorage(
                    borrowing: src.assumingMemoryBound(to: Float.self), count: n, owner: zip.file))
            }
            let t = Tensor(uninitializedShape: r.shape)
            r.dtype.toFloat(UnsafeRawPointer(src), count: n, into: t.storage.pointer)
            return t
        }
        let t = Tensor(uninitializedShape: r.shape)
        for (i, e) in elementIndices(r).enumerated() {
            r.dtype.toFloat(UnsafeRawPointer(base + e * r.dtype.size), count: 1, into: t.storage.pointer + i)
        }
        return t
    }

    public func intTensor(_ key: String) throws -> IntTensor {
        let r = try ref(key)
        let (off, _) = try storageRange(r, key: key)
        let base = zip.file.base + off
        var one = [0]
        let values = elementIndices(r).map { e -> Int in
            r.dtype.toInt(UnsafeRawPointer(base + e * r.dtype.size), count: 1, into: &one)
            return one[0]
        }
        return IntTensor(shape: r.shape, values)
    }
}
