// The images a codebook trains and is evaluated on: the synthetic world's, or any image source with a held-out
// part (given, or 1 in 20 records by a hash of their origin), decoded and resized by a background loader.
import Foundation
import FlavaTensor
import FlavaData

/// Training and held-out images for the codebook: the synthetic world, or any image source.
public final class CodebookImages {
    let size: Int
    let processor: FlavaImageProcessor
    let world: SyntheticWorld?
    let loader: DataLoader<Tensor, Tensor>?
    let heldOutSource: DataSource?
    let trainingSource: DataSource?
    let evalCount: Int
    var next = 0
    public let description: String
    let heldOutGiven: Bool

    /// Images from the source spec `images` (nil or "synthetic…": the synthetic world's), at `size` pixels for the
    /// codebook; held out: `heldOut`'s, or 1 in 20 records of `images` chosen by a hash of their origin.
    public init(images: String?, heldOut: String?, size: Int, seed: UInt64, evalCount: Int, processor: FlavaImageProcessor) throws {
        self.size = size; self.processor = processor; self.evalCount = evalCount
        heldOutGiven = heldOut != nil
        if let images, !images.hasPrefix("synthetic") {
            let source = try dataSource(spec: images, imageSize: size, seed: seed)
            let proc = processor
            // Without --held-out, 1 in 20 records (by a hash of where they come from) is held out.
            let train: DataSource = heldOut == nil ? FilteredSource(source, keep: { !CodebookImages.isHeldOut($0) }) : source
            var options = LoaderOptions(batchSize: 16, shuffleBuffer: 1000, seed: seed)
            options.epochs = nil
            loader = try DataLoader(source: train, options: options, transform: { record, _ in
                guard let ref = record.image else { throw DataError("\(record.origin): no image") }
                return proc.codebookPixelValues(try ref.load())
            }, collate: { items, _ in ShapeKernel.stack(items) })
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

    /// Whether a record is held out (1 in 20, by an FNV-1a hash of its origin).
    public static func isHeldOut(_ r: RawRecord) -> Bool {
        var h: UInt64 = 0xcbf29ce484222325
        for b in r.origin.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return h % 20 == 0
    }

    /// Loaded images not yet handed out, [k, 3, S, S].
    var pending: Tensor?

    /// The next `n` training images [n, 3, S, S] (codebook pixels).
    public func trainingBatch(_ n: Int) throws -> Tensor {
        if let world {
            let parts = (0..<n).map { i in processor.codebookPixelValues(world.unpairedImage(next + i)) }
            next += n
            return ShapeKernel.stack(parts)
        }
        var have = pending.map { [$0] } ?? [], count = pending?.shape[0] ?? 0
        while count < n {
            guard let t = try loader!.next() else { throw DataError("\(trainingSource!.name): no training images") }
            have.append(t); count += t.shape[0]
        }
        let all = ShapeKernel.concat(have, axis: 0)
        pending = count > n ? ShapeKernel.slice(all, axis: 0, start: n, end: count) : nil
        return ShapeKernel.slice(all, axis: 0, start: 0, end: n)
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
            let w = world!
            for i in 0..<evalCount { parts.append(processor.codebookPixelValues(w.sample(i, split: .heldOut).image)) }
        }
        return ShapeKernel.stack(parts)
    }
}
