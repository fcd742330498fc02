// Data-parallel gradient synchronization for the training engine (DISTRIBUTED.md §1–2): the trained parameters
// laid end to end in one fixed flat order, cut into fixed-size buckets that are summed across ranks in a fixed
// order after the step's micro-batches and before clipping, so every rank ends with bit-identical gradients
// and weights. Parameters that no rank used this step keep no gradient (PyTorch's grad=None: AdamW leaves them
// and their moments alone); one used on some ranks only gets zeros from the others.
//
// ZeRO stage 1 (`sharded`): the flat space is split into one contiguous shard per rank; each bucket carries the
// k-th piece of every rank's shard, so a reduce-scatter gives each rank the summed gradient of its piece, AdamW
// updates (and keeps moments for) the shard only, and an all-gather of the same buckets brings every rank the
// updated weights: the all-reduce's communication volume, 1/N of the optimizer's memory.
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaDistributed

final class DataParallelGradients {
    let comm: Communicator
    let parameters: [Variable]
    /// Flat offset of each parameter, and the total.
    let offsets: [Int]
    let total: Int
    let sharded: Bool
    /// Elements of each rank's shard, and of each bucket's piece per rank.
    let shardLength: Int
    let pieceLength: Int
    let bucketCount: Int
    private var send: [Float], receive: [Float]

    /// `bucketBytes`: the size of one bucket (all ranks' pieces together), 25 MB as PyTorch's DDP.
    init(parameters: [Variable], communicator: Communicator, sharded: Bool, bucketBytes: Int = 25 << 20) {
        comm = communicator
        self.parameters = parameters
        self.sharded = sharded
        var o: [Int] = [], t = 0
        for p in parameters { o.append(t); t += p.value.count }
        offsets = o; total = t
        let n = communicator.size
        shardLength = (t + n - 1) / n
        pieceLength = max(1, min(shardLength, bucketBytes / 4 / n))
        bucketCount = shardLength == 0 ? 0 : (shardLength + pieceLength - 1) / pieceLength
        send = [Float](repeating: 0, count: pieceLength * n)
        receive = [Float](repeating: 0, count: sharded ? pieceLength : 0)
    }

    /// Flat range of rank r's shard.
    func shard(of r: Int) -> Range<Int> { min(total, r * shardLength)..<min(total, (r + 1) * shardLength) }

    /// Each parameter's part of this rank's shard (for AdamW.shard).
    func ownedRanges() -> [ObjectIdentifier: Range<Int>] {
        let mine = shard(of: comm.rank)
        var out: [ObjectIdentifier: Range<Int>] = [:]
        for (i, p) in parameters.enumerated() {
            let lo = max(mine.lowerBound, offsets[i]), hi = min(mine.upperBound, offsets[i] + p.value.count)
            if lo < hi { out[ObjectIdentifier(p)] = (lo - offsets[i])..<(hi - offsets[i]) }
        }
        return out
    }

    /// Elements per rank of bucket k: pieceLength, less for the last bucket (the same on every rank, so the
    /// collectives move no padding beyond the last rank's shorter shard).
    func length(_ k: Int) -> Int { min(pieceLength, shardLength - k * pieceLength) }

    /// Flat range of bucket k's piece of rank r's shard.
    func piece(_ k: Int, of r: Int) -> Range<Int> {
        let s = shard(of: r)
        let lo = min(s.upperBound, s.lowerBound + k * pieceLength)
        return lo..<min(s.upperBound, lo + pieceLength)
    }

    /// Calls `body(parameter index, range inside the parameter, range inside the flat space)` for each parameter
    /// overlapping the flat range.
    func segments(_ flat: Range<Int>, _ body: (Int, Range<Int>, Range<Int>) -> Void) {
        guard !flat.isEmpty else { return }
        // The first parameter ending after flat.lowerBound (binary search over the offsets).
        var lo = 0, hi = parameters.count - 1
        while lo < hi { let m = (lo + hi + 1) / 2; if offsets[m] <= flat.lowerBound { lo = m } else { hi = m - 1 } }
        var i = lo
        while i < parameters.count && offsets[i] < flat.upperBound {
            let a = max(flat.lowerBound, offsets[i]), b = min(flat.upperBound, offsets[i] + parameters[i].value.count)
            if a < b { body(i, (a - offsets[i])..<(b - offsets[i]), a..<b) }
            i += 1
        }
    }

    /// Which parameters any rank used this step (has a gradient): one small all-reduce.
    func globallyUsed() -> [Bool] {
        let local = parameters.map { $0.grad == nil ? Float(0) : 1 }
        return comm.allReduce(local, .max).map { $0 > 0 }
    }

    /// Sums the gradients across ranks (times `scale`), bucket by bucket in a fixed order. Sharded, only this
    /// rank's shard of each gradient is summed (the rest of its gradient tensors is left as it was). Returns
    /// which parameters were used.
    @discardableResult
    func reduce(scale: Float) -> [Bool] {
        let used = globallyUsed()
        for (i, p) in parameters.enumerated() where used[i] && p.grad == nil { p.grad = Tensor.zeros(p.shape) }
        let n = comm.size
        for k in 0..<bucketCount {
            // Skip a bucket no used parameter reaches (every rank knows the same `used`).
            var any = false
            for r in 0..<n { segments(piece(k, of: r)) { i, _, _ in any = any || used[i] } }
            if !any { continue }
            pack(k, used: used) { p in p.grad! }
            let l = length(k)
            if sharded {
                let mine = piece(k, of: comm.rank)
                send.withUnsafeBufferPointer { s in
                    receive.withUnsafeMutableBufferPointer {
                        comm.reduceScatter(UnsafeBufferPointer(rebasing: s[0..<(l * n)]), into: UnsafeMutableBufferPointer(rebasing: $0[0..<l]), .sum)
                    }
                }
                receive.withUnsafeBufferPointer { buf in
                    segments(mine) { i, inParam, flat in
                        guard used[i] else { return }
                        let gp = Self.writableGrad(parameters[i])
                        for (j, e) in zip(inParam, (flat.lowerBound - mine.lowerBound)...) { gp[j] = buf[e] * scale }
                    }
                }
            } else {
                send.withUnsafeMutableBufferPointer { comm.allReduce(UnsafeMutableBufferPointer(rebasing: $0[0..<(l * n)]), .sum) }
                unpack(k, used: used) { p in Self.writableGrad(p) } transform: { $0 * scale }
            }
        }
        return used
    }

    /// After a sharded update: every rank's updated piece of each bucket with a used parameter to every rank.
    func gatherParameters(used: [Bool]) {
        let n = comm.size
        for k in 0..<bucketCount {
            var any = false
            for r in 0..<n { segments(piece(k, of: r)) { i, _, _ in any = any || used[i] } }
            if !any { continue }
            let mine = piece(k, of: comm.rank), l = length(k)
            var local = [Float](repeating: 0, count: l)
            segments(mine) { i, inParam, flat in
                let pp = parameters[i].value.storage.pointer
                for (j, e) in zip(inParam, (flat.lowerBound - mine.lowerBound)...) { local[e] = pp[j] }
            }
            local.withUnsafeBufferPointer { s in
                send.withUnsafeMutableBufferPointer { comm.allGather(s, into: UnsafeMutableBufferPointer(rebasing: $0[0..<(l * n)])) }
            }
            unpack(k, used: nil) { p in Self.writablePointer(p) } transform: { $0 }
        }
    }

    /// Gathers a sharded per-parameter quantity (AdamW's moments of the owned ranges) into whole tensors on every
    /// rank. `part(p)` gives this rank's values for its range of p (empty when it owns none).
    func gatherSharded(_ part: (Variable) -> Tensor?) -> [Tensor] {
        let n = comm.size
        let whole = parameters.map { Tensor.zeros($0.shape) }
        let owned = ownedRanges()
        for k in 0..<bucketCount {
            let mine = piece(k, of: comm.rank), l = length(k)
            var local = [Float](repeating: 0, count: l)
            segments(mine) { i, inParam, flat in
                let p = parameters[i]
                guard let t = part(p), let r = owned[ObjectIdentifier(p)] else { return }
                let tp = t.storage.pointer
                for (j, e) in zip(inParam, (flat.lowerBound - mine.lowerBound)...) { local[e] = tp[j - r.lowerBound] }
            }
            local.withUnsafeBufferPointer { s in
                send.withUnsafeMutableBufferPointer { comm.allGather(s, into: UnsafeMutableBufferPointer(rebasing: $0[0..<(l * n)])) }
            }
            for r in 0..<n {
                let piece = self.piece(k, of: r)
                segments(piece) { i, inParam, flat in
                    let wp = whole[i].storage.pointer
                    for (j, e) in zip(inParam, (r * l + flat.lowerBound - piece.lowerBound)...) { wp[j] = send[e] }
                }
            }
        }
        return whole
    }

    /// Rank 0's weights to every rank (so all replicas start equal whatever each loaded or initialized).
    func broadcastParameters() {
        guard comm.size > 1 else { return }
        for p in parameters {
            let ptr = Self.writablePointer(p)
            comm.broadcast(UnsafeMutableBufferPointer(start: ptr, count: p.value.count), root: 0)
        }
    }

    /// Global L2 norm of the summed gradients: each rank adds the squares of its shard and the ranks add those up
    /// (sharded), or each rank computes it from the whole summed gradient.
    func globalGradientNorm(_ owned: [ObjectIdentifier: Range<Int>]?) -> Float {
        var local: Double = 0
        for p in parameters {
            guard let g = p.grad else { continue }
            let r = owned.map { $0[ObjectIdentifier(p)] ?? 0..<0 } ?? 0..<g.count
            if r.isEmpty { continue }
            local += Double(Reduce.dot(g.storage.pointer + r.lowerBound, g.storage.pointer + r.lowerBound, r.count))
        }
        // Sharded, the shards' squares add up across ranks; otherwise every rank already holds the whole sum.
        return Float((owned == nil ? local : comm.allReduce([local], .sum)[0]).squareRoot())
    }

    // MARK: packing

    /// The bucket's pieces, in rank order, from `source(p)` (zeros where a parameter is unused or past the end).
    private func pack(_ k: Int, used: [Bool], _ source: (Variable) -> Tensor) {
        let n = comm.size, l = length(k)
        send.withUnsafeMutableBufferPointer { buf in
            UnsafeMutableBufferPointer(rebasing: buf[0..<(l * n)]).update(repeating: 0)
            for r in 0..<n {
                let piece = self.piece(k, of: r)
                segments(piece) { i, inParam, flat in
                    guard used[i] else { return }
                    let sp = source(parameters[i]).storage.pointer
                    let base = r * l + flat.lowerBound - piece.lowerBound
                    (buf.baseAddress! + base).update(from: sp + inParam.lowerBound, count: inParam.count)
                }
            }
        }
    }

    private func unpack(_ k: Int, used: [Bool]?, _ target: (Variable) -> UnsafeMutablePointer<Float>, transform: (Float) -> Float) {
        let n = comm.size, l = length(k)
        send.withUnsafeBufferPointer { buf in
            for r in 0..<n {
                let piece = self.piece(k, of: r)
                segments(piece) { i, inParam, flat in
                    if let used, !used[i] { return }
                    let tp = target(parameters[i]) + inParam.lowerBound
                    let base = r * l + flat.lowerBound - piece.lowerBound
                    for j in 0..<inParam.count { tp[j] = transform(buf[base + j]) }
                }
            }
        }
    }

    /// A pointer to write the parameter's own storage (copying it first if it is shared with another tensor).
    static func writablePointer(_ p: Variable) -> UnsafeMutablePointer<Float> {
        p.value.withMutableBuffer { $0.baseAddress! }
    }
    /// The same for the parameter's gradient (leaf gradients may share the backward pass's buffers).
    static func writableGrad(_ p: Variable) -> UnsafeMutablePointer<Float> {
        p.grad!.withMutableBuffer { $0.baseAddress! }
    }
}
