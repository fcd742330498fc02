// Fine-tuning FLAVA for multimodal classification over the multimodal encoder's [CLS_M] state with the paper's
// two-layer head (hidden 1536): VQA-style answer classification with soft scores and binary cross-entropy
// (VQAv2's recipe), or single-label classification with cross-entropy (SNLI-VE, Hateful Memes).
import Foundation
import FlavaTensor
import FlavaAutograd
import FlavaNN
import FlavaModel
import FlavaData

/// The classification head: Linear(H, 1536) → GELU → LayerNorm → Linear(1536, classes).
public final class FlavaClassificationHead: Module {
    @Child("dense") public var dense: Linear
    @Child("layer_norm") public var norm: LayerNorm
    @Child("classifier") public var classifier: Linear

    public init(hidden: Int, classes: Int, headHidden: Int = 1536, init ini: inout Initializer) {
        super.init()
        dense = Linear(hidden, headHidden, init: &ini)
        norm = LayerNorm(headHidden, eps: 1e-12)
        classifier = Linear(headHidden, classes, init: &ini)
    }

    public func callAsFunction(_ x: Variable) -> Variable { classifier(norm(gelu(dense(x)))) }
}

/// A FLAVA with a multimodal classification head.
public final class FlavaForMultimodalClassification: Module {
    @Child("flava") public var flava: FlavaModel
    @Child("classifier_head") public var head: FlavaClassificationHead

    public init(flava: FlavaModel, classes: Int, init ini: inout Initializer) {
        super.init()
        self.flava = flava
        head = FlavaClassificationHead(hidden: flava.config.multimodalConfig.hiddenSize, classes: classes, init: &ini)
    }

    /// logits [B, classes] from pixels [B, 3, S, S] and text ids/mask [B, L].
    public func callAsFunction(pixels: Tensor, ids: IntTensor, mask: IntTensor) -> Variable {
        let out = flava(pixelValues: Variable(pixels), inputIds: ids, attentionMask: mask)
        return head(firstToken(out.multimodalEmbeddings!))
    }
}

/// The synthetic world's question answering as a VQA task: answer vocabulary from the training answers,
/// soft scores (here one annotator: score 1 for the answer), BCE, and VQA accuracy.
public struct SyntheticVQA {
    public let answers: [String]
    public let world: SyntheticWorld

    public init(world: SyntheticWorld, trainScenes: Int = 2000) {
        self.world = world
        var set = Set<String>()
        for i in 0..<trainScenes { for qa in world.sample(i).questions { set.insert(qa.answer) } }
        answers = set.sorted()
    }

    /// (image, question, answer index) triples of a split.
    public func examples(_ range: Range<Int>, split: SyntheticWorld.Split) -> [(RGBImage, String, Int)] {
        range.flatMap { i -> [(RGBImage, String, Int)] in
            let s = world.sample(i, split: split)
            return s.questions.compactMap { qa in answers.firstIndex(of: qa.answer).map { (s.image, qa.question, $0) } }
        }
    }
}

/// A FLAVA text encoder with a classification (or regression, classes = 1) head over its [CLS] state.
public final class FlavaForTextClassification: Module {
    @Child("flava.text_model") public var text: FlavaTextModel
    @Child("classifier_head") public var head: FlavaClassificationHead

    public init(text: FlavaTextModel, classes: Int, init ini: inout Initializer) {
        super.init()
        self.text = text
        head = FlavaClassificationHead(hidden: text.config.hiddenSize, classes: classes, init: &ini)
    }

    public func callAsFunction(ids: IntTensor, mask: IntTensor, types: IntTensor) -> Variable {
        head(firstToken(text(ids, attentionMask: mask, tokenTypeIds: types).lastHiddenState))
    }
}
