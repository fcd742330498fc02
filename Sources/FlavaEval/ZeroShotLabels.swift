// Zero-shot labels for images (flava classify, the service's /v1/classify): each candidate label becomes a class
// embedding from prompt templates (ZeroShot.classEmbeddings), each image is given a softmax over its cosine
// similarities to the labels, scaled by the model's learned logit scale (FLAVA_REFERENCE.md §6).
import Foundation
import FlavaTensor
import FlavaData

/// Prompt templates: CLIP's, the label alone, or the caller's (each must contain "{}").
public enum PromptTemplates {
    /// "clip", "plain", or a JSON file holding a list of strings that contain {}.
    public static func load(_ spec: String) throws -> [String] {
        if spec == "clip" { return clipTemplates }
        if spec == "plain" { return ["{}"] }
        guard let d = FileManager.default.contents(atPath: spec), let t = try? JSONDecoder().decode([String].self, from: d) else {
            throw DataError("\(spec): templates must be 'clip', 'plain' or a JSON list of strings containing {}")
        }
        try validate(t, source: spec)
        return t
    }

    /// Throws unless `templates` is a non-empty list of strings that each contain {}.
    public static func validate(_ templates: [String], source: String = "templates") throws {
        guard !templates.isEmpty, templates.allSatisfy({ $0.contains("{}") }) else {
            throw DataError("\(source): templates must be a non-empty list of strings containing {}")
        }
    }
}

extension FlavaEmbedder {
    /// Class embeddings [C, P] of `classes`, each the re-normalized mean of its prompts' text embeddings.
    public func classEmbeddings(classes: [String], templates: [String]) throws -> Tensor {
        let prompts = classes.flatMap { c in templates.map { $0.replacingOccurrences(of: "{}", with: c) } }
        return ZeroShot.classEmbeddings(promptEmbeddings: textEmbeddings(try tokenize(prompts), batchSize: 64),
                                        templatesPerClass: templates.count)
    }

    /// exp(logit scale): the factor of cosine similarities before a softmax over labels or texts.
    public var similarityScale: Double { exp(Double(model.logitScale.value.scalarValue)) }

    /// Per image (rows of `images` [N, P], normalized), the probability of each class (rows of `classes`).
    public func labelProbabilities(images: Tensor, classes: Tensor) -> [[Double]] {
        let scale = similarityScale
        return ZeroShot.similarity(images, classes).map { row in
            let logits = row.map { $0 * scale }, m = logits.max() ?? 0
            let e = logits.map { exp($0 - m) }, s = e.reduce(0, +)
            return e.map { $0 / s }
        }
    }
}
