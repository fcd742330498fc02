// reshape, permute, concat, slice.
import FlavaTensor

extension Variable {
    /// The same values under a new shape (one size may be −1).
    public func reshaped(_ shape: [Int]) -> Variable {
        let old = self.shape
        return Variable.record("reshape", value.reshaped(shape), inputs: [self]) { g in [g.reshaped(old)] }
    }

    /// Axes reordered: output axis i is input axis perm[i] (copied to contiguous).
    public func permuted(_ perm: [Int]) -> Variable {
        var inverse = [Int](repeating: 0, count: perm.count)
        for (i, p) in perm.enumerated() { inverse[p] = i }
        return Variable.record("permute", ShapeKernel.permute(value, perm), inputs: [self]) { g in
            [ShapeKernel.permute(g, inverse)]
        }
    }

    /// self[..., start..<end, ...] along `axis`.
    public func sliced(axis: Int, _ range: Range<Int>) -> Variable {
        let shape = self.shape
        let y = ShapeKernel.slice(value, axis: axis, start: range.lowerBound, end: range.upperBound)
        return Variable.record("slice", y, inputs: [self]) { g in
            [ShapeKernel.sliceBackward(g, shape: shape, axis: axis, start: range.lowerBound)]
        }
    }
}

/// Concatenation along `axis`.
public func concat(_ xs: [Variable], axis: Int) -> Variable {
    let sizes = xs.map { $0.shape[axis] }
    let y = ShapeKernel.concat(xs.map(\.value), axis: axis)
    return Variable.record("concat", y, inputs: xs) { g in
        var start = 0
        return sizes.map { n in
            defer { start += n }
            return ShapeKernel.slice(g, axis: axis, start: start, end: start + n)
        }
    }
}
