// The streaming loader: records flow from a source through a seeded shuffle buffer, are decoded, transformed,
// tokenized and masked on a background thread (spread over the cores), and come out as batches in a
// deterministic order. Each sample's randomness comes from (seed, sample index), so the content of batch n
// does not depend on thread timing, and a run resumes exactly from a saved position. Bad samples (unreadable
// image, empty caption, malformed line) are skipped and counted; the run fails with one clear message only
// when they pass a threshold.
import Foundation
import Dispatch
import FlavaTensor

/// Where a loader is in its data: epoch and the number of records consumed from it. Codable for checkpoints.
public struct LoaderPosition: Codable, Sendable, Equatable {
    public var epoch: Int = 0
    public var consumed: Int = 0
    public init(epoch: Int = 0, consumed: Int = 0) { self.epoch = epoch; self.consumed = consumed }
}

/// Loader settings.
public struct LoaderOptions: Sendable {
    public var batchSize: Int
    public var shuffleBuffer: Int = 1000
    public var seed: UInt64 = 0
    /// Parallel transforms within a batch (default: every core).
    public var workers: Int = Parallel.threadCount
    /// Batches prepared ahead of the consumer.
    public var prefetch: Int = 2
    /// Fail once bad samples exceed this fraction (checked after `minimumForBadCheck` records).
    public var maxBadFraction: Double = 0.05
    public var minimumForBadCheck = 200
    /// Stop after this many epochs (nil: cycle forever).
    public var epochs: Int? = nil
    /// Data-parallel: this rank's slice of every batch. `batchSize` is then the global batch (a multiple of
    /// `count`); each batch is the next `batchSize` records of the shared stream, and rank r transforms and
    /// hands out records r·b..<(r+1)·b of it (b = batchSize / count). A record that fails its transform is
    /// replaced by the next good record of the same global batch (wrapping around), so the batch's content
    /// does not depend on the number of ranks. A last partial batch is dropped.
    public var shard: (rank: Int, count: Int)? = nil
    public init(batchSize: Int, shuffleBuffer: Int = 1000, seed: UInt64 = 0) {
        self.batchSize = batchSize; self.shuffleBuffer = shuffleBuffer; self.seed = seed
    }
}

/// Counts of skipped samples, with the first few reasons for the error message.
public struct BadSampleLog: Sendable {
    public var total = 0
    public var bad = 0
    public var examples: [String] = []
    mutating func add(_ reason: String) { bad += 1; if examples.count < 3 { examples.append(reason) } }
}

/// The seeded shuffle buffer over a record stream, with a position that can be replayed.
final class ShuffledStream {
    let source: DataSource
    let options: LoaderOptions
    var position: LoaderPosition
    var stream: RecordStream
    var buffer: [RawRecord] = []
    var rng: SeededGenerator
    var exhausted = false
    var log = BadSampleLog()

    init(source: DataSource, options: LoaderOptions, start: LoaderPosition) throws {
        self.source = source
        self.options = options
        position = LoaderPosition(epoch: start.epoch, consumed: 0)
        stream = try source.stream(epoch: start.epoch, seed: options.seed)
        rng = SeededGenerator(seed: options.seed &+ UInt64(start.epoch) &* 0x9E37_79B9_7F4A_7C15)
        // Replay to the saved position without decoding anything.
        for _ in 0..<start.consumed { _ = try nextRecord(skipping: true) }
    }

    /// Pulls from the underlying stream, counting malformed records as bad samples.
    func pull() throws -> RawRecord? {
        while true {
            do { return try stream.next() } catch let e as DataError {
                log.total += 1; log.add(e.message)
                try checkBad()
            }
        }
    }

    func checkBad() throws {
        let l = log
        if l.bad > 0 && l.total >= options.minimumForBadCheck && Double(l.bad) / Double(l.total) > options.maxBadFraction
            || (l.total >= 20 && l.bad == l.total) {
            throw DataError("\(source.name): \(l.bad) of \(l.total) samples unusable (limit \(Int(options.maxBadFraction * 100))%), e.g. \(l.examples.joined(separator: "; "))")
        }
    }

    /// The next record in shuffled order, moving to the next epoch at the end of one (nil when the configured
    /// number of epochs is done).
    func nextRecord(skipping: Bool = false) throws -> (RawRecord, index: Int)? {
        while true {
            while !exhausted && buffer.count < max(1, options.shuffleBuffer) {
                if let r = try pull() { buffer.append(r) } else { exhausted = true }
            }
            if !buffer.isEmpty {
                let i = Int(rng.next() % UInt64(buffer.count))
                buffer.swapAt(i, buffer.count - 1)
                let r = buffer.removeLast()
                let index = position.epoch &* 1_000_000_007 &+ position.consumed
                position.consumed += 1
                return (r, index)
            }
            // Epoch finished.
            if position.consumed == 0 { throw DataError("\(source.name): the dataset is empty") }
            if let e = options.epochs, position.epoch + 1 >= e { return nil }
            position = LoaderPosition(epoch: position.epoch + 1, consumed: 0)
            stream = try source.stream(epoch: position.epoch, seed: options.seed)
            rng = SeededGenerator(seed: options.seed &+ UInt64(position.epoch) &* 0x9E37_79B9_7F4A_7C15)
            exhausted = false
        }
    }
}


/// A background loader producing batches of transformed items. `Transform` runs on several threads at once
/// (hence `@Sendable`); `Collate` runs on the loader's thread only.
/// Sendable: the loader's only state is its producer, whose mutable fields are all guarded by its lock.
public final class DataLoader<Item, Batch>: @unchecked Sendable {
    public typealias Transform = @Sendable (RawRecord, inout SeededGenerator) throws -> Item
    public typealias Collate = ([Item], inout SeededGenerator) -> Batch
    let producer: DataLoaderProducer<Item, Batch>

    /// Starts loading at `resumeFrom` (default: the beginning).
    public init(source: DataSource, options: LoaderOptions, resumeFrom: LoaderPosition = LoaderPosition(),
                transform: @escaping Transform, collate: @escaping Collate) throws {
        producer = try DataLoaderProducer(source: source, options: options, resumeFrom: resumeFrom, transform: transform, collate: collate)
    }

    deinit { producer.stop() }

    /// Stops the background thread.
    public func stop() { producer.stop() }

    /// Skipped samples so far.
    public var badSamples: BadSampleLog { producer.badSamples }

    /// The position after the last batch handed out (save it to resume from the next one).
    public var position: LoaderPosition { producer.lock.lock(); defer { producer.lock.unlock() }; return producer.position }

    /// The next batch (blocks while it is being prepared); nil when the configured epochs are done.
    public func next() throws -> Batch? { try producer.next() }
}

/// The loader's background state: the producing thread holds this object strongly, so it stays alive while the
/// thread runs even if the `DataLoader` that owns it is released (which stops it).
/// Sendable: `ready`, `failure`, `finished`, `stopped`, `position` and `publishedLog` are read and written under
/// `lock`; the stream (with its own bad-sample log), `batchCounter` and the closures are touched only by the
/// producing thread after `init` returns, which copies the log to `publishedLog` after each batch.
final class DataLoaderProducer<Item, Batch>: @unchecked Sendable {
    typealias Transform = @Sendable (RawRecord, inout SeededGenerator) throws -> Item
    typealias Collate = ([Item], inout SeededGenerator) -> Batch

    let stream: ShuffledStream
    let transform: Transform
    let collate: Collate
    let options: LoaderOptions
    let lock = NSCondition()
    var ready: [(batch: Batch, position: LoaderPosition)] = []
    var failure: Error?
    var finished = false
    var stopped = false
    /// The position after the last batch handed out (save it to resume from the next one).
    private(set) var position: LoaderPosition
    var batchCounter = 0

    /// Starts loading at `resumeFrom` (default: the beginning).
    init(source: DataSource, options: LoaderOptions, resumeFrom: LoaderPosition = LoaderPosition(),
                transform: @escaping Transform, collate: @escaping Collate) throws {
        precondition(options.batchSize >= 1, "batch size must be at least 1")
        if let s = options.shard {
            precondition(s.count >= 1 && s.rank >= 0 && s.rank < s.count && options.batchSize % s.count == 0,
                         "a shard \(s) of batches of \(options.batchSize)")
        }
        self.options = options
        self.transform = transform
        self.collate = collate
        stream = try ShuffledStream(source: source, options: options, start: resumeFrom)
        position = resumeFrom
        let t = Thread { self.produce() }
        t.name = "flava-data-loader"
        t.stackSize = 8 << 20
        t.start()
    }

    deinit { stop() }

    /// Stops the background thread.
    func stop() {
        lock.lock(); stopped = true; lock.broadcast(); lock.unlock()
    }

    /// Skipped samples so far.
    var badSamples: BadSampleLog { lock.lock(); defer { lock.unlock() }; return publishedLog }
    /// The stream's bad-sample log as of the last batch made.
    private var publishedLog = BadSampleLog()

    func produce() {
        while true {
            lock.lock()
            while ready.count >= options.prefetch && !stopped { lock.wait() }
            if stopped { lock.unlock(); return }
            lock.unlock()
            do {
                guard let (batch, pos) = try makeBatch() else {
                    lock.lock(); finished = true; lock.broadcast(); lock.unlock(); return
                }
                lock.lock(); ready.append((batch, pos)); lock.broadcast(); lock.unlock()
            } catch {
                lock.lock(); failure = error; lock.broadcast(); lock.unlock(); return
            }
        }
    }

    /// Transforms record `i` of `records` with its own generator.
    func transformed(_ records: [(RawRecord, Int)], _ i: Int) -> Result<Item, Error> {
        var g = SeededGenerator(seed: options.seed ^ (UInt64(truncatingIfNeeded: records[i].1) &* 0xD6E8_FEB8_6659_FD93))
        return Result { try transform(records[i].0, &g) }
    }

    /// A data-parallel batch: this rank's slice of the next global batch (see LoaderOptions.shard).
    func makeShardBatch(rank: Int, count: Int) throws -> (Batch, LoaderPosition)? {
        let total = options.batchSize, b = total / count
        var records: [(RawRecord, Int)] = []
        while records.count < total, let r = try stream.nextRecord() { records.append(r) }
        if records.count < total { return nil }
        let mine = Array((rank * b)..<((rank + 1) * b))
        var results = [Result<Item, Error>?](repeating: nil, count: b)
        let workers = max(1, min(options.workers, b))
        results.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            Parallel.concurrentPerform(iterations: workers) { w in
                for i in stride(from: w, to: b, by: workers) { (base + i).pointee = self.transformed(records, mine[i]) }
            }
        }
        var items: [Item] = []
        var cache: [Int: Result<Item, Error>] = [:]
        for (k, r) in results.enumerated() {
            stream.log.total += 1
            if case .success(let item) = r! { items.append(item); continue }
            if case .failure(let e) = r! { stream.log.add("\(records[mine[k]].0.origin): \(e)") }
            // The next good record of the global batch after this one (wrapping), decoded here if it is another
            // rank's: the same choice whatever the number of ranks.
            var found: Item? = nil
            for step in 1..<max(total, 2) {
                let j = (mine[k] + step) % total
                if j == mine[k] { break }
                let res: Result<Item, Error>
                if j >= mine[0] && j <= mine[b - 1] { res = results[j - mine[0]]! }
                else if let c = cache[j] { res = c } else { res = transformed(records, j); cache[j] = res }
                if case .success(let item) = res { found = item; break }
            }
            guard let found else { throw DataError("\(stream.source.name): every sample of a batch of \(total) is unusable, e.g. \(stream.log.examples.joined(separator: "; "))") }
            items.append(found)
        }
        lock.lock(); publishedLog = stream.log; lock.unlock()
        try stream.checkBad()
        batchCounter += 1
        var g = SeededGenerator(seed: options.seed ^ UInt64(stream.position.epoch &* 1_000_003 &+ stream.position.consumed))
        return (collate(items, &g), stream.position)
    }

    func makeBatch() throws -> (Batch, LoaderPosition)? {
        if let shard = options.shard { return try makeShardBatch(rank: shard.rank, count: shard.count) }
        var items: [Item] = []
        while items.count < options.batchSize {
            // Pull a batch worth of records, transform them in parallel, keep the good ones in order.
            var pulled: [(RawRecord, Int)] = []
            while pulled.count < options.batchSize - items.count, let r = try stream.nextRecord() { pulled.append(r) }
            let records = pulled
            if records.isEmpty { break }
            var results = [Result<Item, Error>?](repeating: nil, count: records.count)
            let seed = options.seed
            let transform = self.transform
            results.withUnsafeMutableBufferPointer { out in
                let base = out.baseAddress!
                let workers = max(1, min(options.workers, records.count))
                // Each worker writes only the slots i ≡ w (mod workers).
                Parallel.concurrentPerform(iterations: workers) { w in
                    for i in stride(from: w, to: records.count, by: workers) {
                        var g = SeededGenerator(seed: seed ^ (UInt64(truncatingIfNeeded: records[i].1) &* 0xD6E8_FEB8_6659_FD93))
                        (base + i).pointee = Result { try transform(records[i].0, &g) }
                    }
                }
            }
            for (i, r) in results.enumerated() {
                stream.log.total += 1
                switch r! {
                case .success(let item): items.append(item)
                case .failure(let e): stream.log.add("\(records[i].0.origin): \(e)")
                }
            }
            lock.lock(); publishedLog = stream.log; lock.unlock()
            try stream.checkBad()
        }
        if items.isEmpty { return nil }
        batchCounter += 1
        var g = SeededGenerator(seed: options.seed ^ UInt64(stream.position.epoch &* 1_000_003 &+ stream.position.consumed))
        return (collate(items, &g), stream.position)
    }

    /// The next batch (blocks while it is being prepared); nil when the configured epochs are done.
    func next() throws -> Batch? {
        lock.lock()
        defer { lock.unlock() }
        while ready.isEmpty && failure == nil && !finished { lock.wait() }
        if !ready.isEmpty {
            let (b, pos) = ready.removeFirst()
            position = pos
            lock.broadcast()
            return b
        }
        if let failure { throw failure }
        return nil
    }
}
