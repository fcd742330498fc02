// The images a codebook trains and is evaluated on: the synthetic world's, or any image source with a held-out
// part (given, or 1 in 20 records by a hash of their origin), decoded and resized by a background loader.
import Foundation
import FlavaTensor
import FlavaData
import FlavaDistributed

/// Training and held-out images for the codebook: the synthetic world, or any image source.
public final class CodebookImages {
    let size: Int
    let processor: FlavaImageProcessor
    let world: SyntheticWorld?
    var loader: DataLoader<Tensor, Tensor>?
    var seed: UInt64 = 0
    let heldOutSource: DataSource?
    let trainingSource: DataSource?
    let evalCount: Int
    /// Synthetic images handed out so far (training), and where k-means images start (nil: in the training order).
    var next = 0
    let kmeansStart: Int?
    public let description: String
    let heldOutGiven: Bool
    /// The job's ranks: each hands out its slice of every global batch (one process: the whole batch).
    let communicator: Communicator
    /// Images a source's loader reads per batch: the global batch (its records are dealt out to the ranks).
    let window: Int

    /// Images from the source spec `images` (nil or "synthetic…": the synthetic world's), at `size` pixels for the
    /// codebook; held out: `heldOut`'s, or 1 in 20 records of `images` chosen by a hash of their origin.
    ///
    /// Data-parallel (`communicator` of several ranks, `globalBatch` a multiple of their number): each rank's
    /// `trainingBatch(globalBatch / ranks)` is its slice, in rank order, of the global batch one process would
    /// train on (the same images, however many ranks), and k-means images are the same on every rank.
    public init(images: String?, heldOut: String?, size: Int, seed: UInt64, evalCount: Int, processor: FlavaImageProcessor,
                globalBatch: Int = 16, communicator: Communicator = LocalCommunicator.shared) throws {
        self.size = size; self.processor = processor; self.evalCount = evalCount; self.seed = seed
        self.communicator = communicator
        guard globalBatch >= 1, globalBatch % communicator.size == 0 else {
            throw DataError("a batch of \(globalBatch) images cannot be split evenly across \(communicator.size) ranks")
        }
        window = globalBatch
        heldOutGiven = heldOut != nil
        kmeansStart = nil
        if let images, !images.hasPrefix("synthetic") {
            let source = try dataSource(spec: images, imageSize: size, seed: seed)
            // Without --held-out, 1 in 20 records (by a hash of where they come from) is held out.
            let train: DataSource = heldOut == nil ? FilteredSource(source, keep: { !CodebookImages.isHeldOut($0) }) : source
            loader = try CodebookImages.makeLoader(train, seed: seed, processor: processor, from: LoaderPosition(),
                                                   window: window, communicator: communicator)
            lastBatchStart = LoaderPosition()
            world = nil
            trainingSource = train
            heldOutSource = try heldOut.map { try dataSource(spec: $0, imageSize: size, seed: seed) }
                ?? FilteredSource(source, keep: CodebookImages.isHeldOut)
            description = "images from \(source.name)"
        } else {
            world = SyntheticWorld(seed: seed, imageSize: size)
            loader = nil; trainingSource = nil
            heldOutSource = try heldOut.map { try dataSource(spec: $0, imageSize: size, seed: seed) }
            description = "the synthetic world's images"
        }
    }

    /// The images of `world` (training: unpaired images 0, 1, …; k-means: from `kmeansStart` on, or in the
    /// training order when nil; held out: its held-out split), processed by `processor` for the codebook.
    public init(world: SyntheticWorld, processor: FlavaImageProcessor, evalCount: Int, kmeansStart: Int? = nil) {
        self.world = world; self.processor = processor; self.evalCount = evalCount; self.kmeansStart = kmeansStart
        size = processor.config.codebookSize
        loader = nil; trainingSource = nil; heldOutSource = nil; heldOutGiven = false
        communicator = LocalCommunicator.shared; window = 16
        description = "the synthetic world's images"
    }

    /// Where the training images stand, for resuming exactly: the loader's position before the batch it handed out
    /// last and how many of that batch's images are used (a source; counted over all ranks), or the next image's
    /// index (the world).
    public struct Position: Codable, Sendable, Equatable {
        public var loader: LoaderPosition?
        public var usedOfLastBatch: Int
        public var next: Int
    }

    public var position: Position {
        Position(loader: lastBatchStart, usedOfLastBatch: lastBatchUsed * communicator.size, next: next)
    }

    /// Continues from `position` (as `position` was when saved, on any number of ranks that divides the batch).
    public func restore(_ p: Position) throws {
        guard p.next >= 0, p.usedOfLastBatch >= 0 else { throw DataError("codebook image position \(p) is negative") }
        next = p.next
        guard let source = trainingSource, let start = p.loader else { return }
        let n = communicator.size
        guard p.usedOfLastBatch % n == 0 else {
            throw DataError("codebook image position \(p): \(p.usedOfLastBatch) images of the last batch are used, which \(n) ranks cannot share evenly")
        }
        loader?.stop()
        loader = try CodebookImages.makeLoader(source, seed: seed, processor: processor, from: start, window: window, communicator: communicator)
        lastBatchStart = start
        lastBatch = nil; lastBatchUsed = 0
        if p.usedOfLastBatch > 0 {
            guard let t = try loader!.next(), t.shape[0] >= p.usedOfLastBatch / n else { throw DataError("\(source.name): fewer images than when the checkpoint was written") }
            lastBatch = t; lastBatchUsed = p.usedOfLastBatch / n
        }
    }

    /// Whether a record is held out (1 in 20, by an FNV-1a hash of its origin).
    public static func isHeldOut(_ r: RawRecord) -> Bool {
        var h: UInt64 = 0xcbf29ce484222325
        for b in r.origin.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return h % 20 == 0
    }

    static func makeLoader(_ source: DataSource, seed: UInt64, processor proc: FlavaImageProcessor,
                           from position: LoaderPosition, window: Int, communicator: Communicator) throws -> DataLoader<Tensor, Tensor> {
        var options = LoaderOptions(batchSize: window, shuffleBuffer: 1000, seed: seed)
        options.epochs = nil
        options.shard = (communicator.rank, communicator.size)
        return try DataLoader(source: source, options: options, resumeFrom: position, transform: { record, _ in
            guard let ref = record.image else { throw DataError("\(record.origin): no image") }
            return proc.codebookPixelValues(try ref.load())
        }, collate: { items, _ in ShapeKernel.stack(items) })
    }

    /// The loader's last batch [k, 3, S, S], the position it was loaded from, and how many of its images are used.
    var lastBatch: Tensor?
    var lastBatchStart: LoaderPosition?
    var lastBatchUsed = 0

    /// The next `n` training images [n, 3, S, S] (codebook pixels).
    public func trainingBatch(_ n: Int) throws -> Tensor {
        if let world {
            let first = next + communicator.rank * n
            let parts = (0..<n).map { i in processor.codebookPixelValues(world.unpairedImage(first + i)) }
            next += n * communicator.size
            return ShapeKernel.stack(parts)
        }
        var parts: [Tensor] = [], count = 0
        while count < n {
            if let b = lastBatch, lastBatchUsed < b.shape[0] {
                let take = min(n - count, b.shape[0] - lastBatchUsed)
                parts.append(ShapeKernel.slice(b, axis: 0, start: lastBatchUsed, end: lastBatchUsed + take))
                lastBatchUsed += take; count += take
                continue
            }
            let start = loader!.position
            guard let t = try loader!.next() else { throw DataError("\(trainingSource!.name): no training images") }
            lastBatch = t; lastBatchStart = start; lastBatchUsed = 0
        }
        return parts.count == 1 ? parts[0] : ShapeKernel.concat(parts, axis: 0)
    }

    /// `n` images for the k-means start, the same on every rank: the world's from `kmeansStart` when set, else
    /// the next training images (of a source: whole batches, n rounded up to a multiple of the batch, in the
    /// stream's order).
    public func kmeansBatch(_ n: Int) throws -> Tensor {
        if let world {
            let k = kmeansStart ?? next
            if kmeansStart == nil { next += n }
            return ShapeKernel.stack((k..<(k + n)).map { processor.codebookPixelValues(world.unpairedImage($0)) })
        }
        let ranks = communicator.size, slice = window / ranks
        let batches = (n + window - 1) / window
        let mine = try trainingBatch(batches * slice)                                   // [batches·slice, 3, S, S]
        guard ranks > 1 else { return mine }
        let all = Tensor(uninitializedShape: [mine.shape[0] * ranks] + mine.shape.dropFirst())
        mine.withBuffer { communicator.allGather($0, into: UnsafeMutableBufferPointer(start: all.storage.pointer, count: all.count)) }
        // Rank-major → the stream's order: batch j, then rank r's slice of it.
        let image = mine.count / mine.shape[0]
        let out = Tensor(uninitializedShape: all.shape)
        for r in 0..<ranks { for j in 0..<batches {
            let from = all.storage.pointer + ((r * batches + j) * slice) * image
            (out.storage.pointer + ((j * ranks + r) * slice) * image).update(from: from, count: slice * image)
        } }
        return out
    }

    /// Up to `evalCount` held-out images [k, 3, S, S].
    public func heldOutPixels() throws -> Tensor {
        var parts = [Tensor]()
        if let source = heldOutSource {
            let stream = try source.stream(epoch: 0, seed: 0)
            while parts.count < evalCount, let r = try stream.next() {
                guard let ref = r.image else { throw DataError("\(r.origin): no image") }
                parts.append(processor.codebookPixelValues(try ref.load()))
            }
            guard !parts.isEmpty else {
                throw DataError("\(source.name): no held-out images" + (heldOutGiven ? "" : " (1 in 20 records is held out by a hash of its name; give --held-out)"))
            }
        } else {
            guard let w = world else { return Tensor.zeros([0, 3, size, size]) }
            for i in 0..<evalCount { parts.append(processor.codebookPixelValues(w.sample(i, split: .heldOut).image)) }
        }
        return ShapeKernel.stack(parts)
    }
}
