// Mirrors DINOHead (facebookresearch/dino, vision_transformer.py): an MLP with GELU (Linear → GELU → Linear →
// GELU → Linear to a bottleneck), the bottleneck L2-normalized, then a weight-normalized Linear without bias
// to K prototypes (nn.utils.weight_norm: W = g · v / ‖v‖ per prototype). With `normLastLayer` (DINO's default)
// g is fixed at 1 and not trained. Parameter names are DINO's: mlp.0, mlp.2, mlp.4, last_layer.weight_g,
// last_layer.weight_v.
import FlavaTensor
import FlavaAutograd
import FlavaNN

/// The sizes of a DINO projection head.
public struct DINOHeadConfig: Codable, Sendable, Equatable {
    /// Prototypes K (DINO's out_dim; 65,536 for ViT-B/16).
    public var outDim = 65_536
    /// Width of the MLP's hidden layers (2,048).
    public var hiddenDim = 2_048
    /// The bottleneck before the prototypes (256).
    public var bottleneckDim = 256
    /// Layers of the MLP (3).
    public var layers = 3
    /// g fixed at 1 (the prototypes are unit vectors); DINO's norm_last_layer.
    public var normLastLayer = true

    public init() {}
    public init(outDim: Int, hiddenDim: Int, bottleneckDim: Int, layers: Int = 3, normLastLayer: Bool = true) {
        self.outDim = outDim; self.hiddenDim = hiddenDim; self.bottleneckDim = bottleneckDim
        self.layers = layers; self.normLastLayer = normLastLayer
    }

    enum CodingKeys: String, CodingKey {
        case outDim = "out_dim", hiddenDim = "hidden_dim", bottleneckDim = "bottleneck_dim", layers = "nlayers"
        case normLastLayer = "norm_last_layer"
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DINOHeadConfig()
        outDim = try c.decodeIfPresent(Int.self, forKey: .outDim) ?? d.outDim
        hiddenDim = try c.decodeIfPresent(Int.self, forKey: .hiddenDim) ?? d.hiddenDim
        bottleneckDim = try c.decodeIfPresent(Int.self, forKey: .bottleneckDim) ?? d.bottleneckDim
        layers = try c.decodeIfPresent(Int.self, forKey: .layers) ?? d.layers
        normLastLayer = try c.decodeIfPresent(Bool.self, forKey: .normLastLayer) ?? d.normLastLayer
    }

    /// Checks every size; the error names `file` and the field.
    public func validate(file: String = "DINO head") throws { try validate(ConfigChecker(file: file)) }

    /// Checks every size with `k` (a section of a larger file).
    public func validate(_ k: ConfigChecker) throws {
        try k.int("out_dim", outDim, in: 2...1_048_576)
        try k.int("hidden_dim", hiddenDim, in: 1...65_536)
        try k.int("bottleneck_dim", bottleneckDim, in: 1...65_536)
        try k.int("nlayers", layers, in: 1...16)
    }
}

/// The DINO projection head: features [N, D] → logits [N, K].
public final class DINOHead: Module {
    @ChildList("mlp", stride: 2) public var mlp: [Linear]
    @Param("last_layer.weight_g") public var lastLayerG: Variable
    @Param("last_layer.weight_v") public var lastLayerV: Variable
    public let config: DINOHeadConfig

    public init(inDim: Int, _ c: DINOHeadConfig, init ini: inout Initializer) {
        config = c
        super.init()
        var dims = [inDim]
        if c.layers > 1 { dims += Array(repeating: c.hiddenDim, count: c.layers - 1) }
        dims.append(c.bottleneckDim)
        mlp = (0..<c.layers).map { Linear(dims[$0], dims[$0 + 1], init: &ini) }
        // weight_norm keeps v as initialized and sets g = ‖v‖ (then fills it with 1 when the last layer is normed).
        let v = ini.normal([c.outDim, c.bottleneckDim])
        lastLayerV = Variable(v, requiresGrad: true)
        let g = Tensor(uninitializedShape: [c.outDim, 1])
        for r in 0..<c.outDim {
            g.storage.pointer[r] = c.normLastLayer ? 1 : v.withBuffer { Reduce.dot($0.baseAddress! + r * c.bottleneckDim, $0.baseAddress! + r * c.bottleneckDim, c.bottleneckDim).squareRoot() }
        }
        lastLayerG = Variable(g, requiresGrad: !c.normLastLayer)
    }

    /// The bottleneck features, L2-normalized [N, bottleneck].
    public func bottleneck(_ x: Variable) -> Variable {
        var h = x
        for (i, l) in mlp.enumerated() { h = i < mlp.count - 1 ? l.gelu(h) : l(h) }
        return l2Normalize(h)
    }

    /// The prototypes W = g · v / ‖v‖ [K, bottleneck].
    public var prototypes: Variable {
        let unit = l2Normalize(lastLayerV)
        return config.normLastLayer ? unit : unit * lastLayerG
    }

    /// features [N, D] → logits [N, K].
    public func callAsFunction(_ x: Variable) -> Variable {
        matmul(bottleneck(x), prototypes, transposeB: true)
    }
}
