// Mirrors FlavaTextEmbeddings (modeling_flava.py): BERT-style word + token-type + position embeddings and
// a LayerNorm (named `LayerNorm` in checkpoints).
import FlavaTensor
import FlavaAutograd
import FlavaNN

/// FlavaTextEmbeddings.
public final class FlavaTextEmbeddings: Module {
    @Child("word_embeddings") public var wordEmbeddings: Embedding
    @Child("position_embeddings") public var positionEmbeddings: Embedding
    @Child("token_type_embeddings") public var tokenTypeEmbeddings: Embedding
    @Child("LayerNorm") public var layerNorm: LayerNorm

    public init(_ c: FlavaTextConfig, init ini: inout Initializer) {
        super.init()
        wordEmbeddings = Embedding(c.vocabSize, c.hiddenSize, paddingIndex: c.padTokenId, init: &ini)
        positionEmbeddings = Embedding(c.maxPositionEmbeddings, c.hiddenSize, init: &ini)
        tokenTypeEmbeddings = Embedding(c.typeVocabSize, c.hiddenSize, init: &ini)
        layerNorm = LayerNorm(c.hiddenSize, eps: Float(c.layerNormEps))
    }

    /// ids [B, L] (token types default to 0, positions to 0..<L) → [B, L, H].
    public func callAsFunction(_ ids: IntTensor, tokenTypeIds: IntTensor? = nil) -> Variable {
        let (b, l) = (ids.shape[0], ids.shape[1])
        let types = tokenTypeIds ?? IntTensor(shape: [b, l], repeating: 0)
        let positions = IntTensor(shape: [1, l], Array(0..<l))
        let sum = (wordEmbeddings(ids) + tokenTypeEmbeddings(types)) + positionEmbeddings(positions)  // [B, L, H]
        return layerNorm(sum)                                                           // [B, L, H]
    }
}
