// Parameter initialization as Hugging Face's `_init_weights` does it for FLAVA (and BERT/ViT):
// Linear and Conv2d weights ~ N(0, range) with zero bias, Embedding ~ N(0, range) with the padding row zeroed,
// LayerNorm weight 1 and bias 0.
import FlavaTensor

/// The random source and standard deviation used when modules are built from scratch.
public struct Initializer {
    /// Standard deviation of the normal initializers (HF `initializer_range`, 0.02 for FLAVA).
    public var range: Float
    /// The generator all draws come from, so a model is reproducible from a seed.
    public var generator: SeededGenerator

    /// How weights are filled.
    public enum Mode: Sendable { case random, zeros }
    /// `.zeros` skips sampling: for modules whose every weight is about to be loaded from a checkpoint.
    public var mode: Mode

    public init(range: Float = 0.02, seed: UInt64 = 0, mode: Mode = .random) {
        self.range = range
        self.mode = mode
        generator = SeededGenerator(seed: seed)
    }

    /// N(0, range) values (zeros in `.zeros` mode).
    public mutating func normal(_ shape: [Int]) -> Tensor {
        mode == .zeros ? Tensor.zeros(shape) : Tensor.randomNormal(shape, std: range, using: &generator)
    }
}
