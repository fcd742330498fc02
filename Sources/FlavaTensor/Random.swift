// A small, fast, seedable generator so every random choice in the project is reproducible from a seed.

/// xoshiro256** seeded through SplitMix64; `Codable` so a run's RNG state can be checkpointed and resumed.
public struct SeededGenerator: RandomNumberGenerator, Codable, Sendable, Equatable {
    private var s: (UInt64, UInt64, UInt64, UInt64)
    private var spareNormal: Float?

    /// A generator whose whole stream is determined by `seed`.
    public init(seed: UInt64) {
        var z = seed
        func splitmix() -> UInt64 {
            z &+= 0x9E3779B97F4A7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58476D1CE4E5B9
            x = (x ^ (x >> 27)) &* 0x94D049BB133111EB
            return x ^ (x >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
        spareNormal = nil
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextUniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Standard normal (Box–Muller, caching the second value).
    public mutating func nextNormal() -> Float {
        if let v = spareNormal { spareNormal = nil; return v }
        var u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let r = (-2 * _log(u1)).squareRoot()
        spareNormal = Float(r * _sin(2 * Double.pi * u2))
        return Float(r * _cos(2 * Double.pi * u2))
    }

    enum CodingKeys: String, CodingKey { case state, spare }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let st = try c.decode([UInt64].self, forKey: .state)
        guard st.count == 4 else {
            throw DecodingError.dataCorruptedError(forKey: .state, in: c, debugDescription: "RNG state needs 4 words")
        }
        s = (st[0], st[1], st[2], st[3])
        spareNormal = try c.decodeIfPresent(Float.self, forKey: .spare)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([s.0, s.1, s.2, s.3], forKey: .state)
        try c.encodeIfPresent(spareNormal, forKey: .spare)
    }
    public static func == (a: SeededGenerator, b: SeededGenerator) -> Bool {
        a.s == b.s && a.spareNormal == b.spareNormal
    }
}

import Foundation
@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _sin(_ x: Double) -> Double { Foundation.sin(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }

extension Tensor {
    /// Normal(mean, std) samples.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                                    using g: inout SeededGenerator) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        t.withMutableBuffer { b in for i in 0..<b.count { b[i] = mean + std * g.nextNormal() } }
        return t
    }

    /// Uniform samples in [low, high).
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                                     using g: inout SeededGenerator) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        t.withMutableBuffer { b in for i in 0..<b.count { b[i] = low + (high - low) * g.nextUniform() } }
        return t
    }
}
