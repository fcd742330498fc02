// The on-disk embedding index of flava retrieve and the service's /v1/search: the L2-normalized embeddings of a
// folder's images or a file's texts (INDEX/embeddings.safetensors) and what they were made from
// (INDEX/items.json: each file's name, size and modification time, or each text, and the model's weights'
// time). It is rebuilt when any of that changes; a search is the contrastive top-k by cosine similarity.
import Foundation
import FlavaTensor
import FlavaNN
import FlavaData

public struct EmbeddingIndex: Sendable {
    public enum Kind: String, Sendable { case images, texts }
    public let kind: Kind
    /// Image file paths (images) or the texts themselves (texts), in the order of the rows.
    public let items: [String]
    /// [items, P], L2-normalized.
    public let embeddings: Tensor
    /// The index folder.
    public let directory: String
    /// Whether the index was (re)built by `open` rather than read back.
    public let built: Bool

    /// The default index folder of a folder of images or a file of texts.
    public static func defaultDirectory(folder: String?, texts: String?) -> String {
        folder.map { $0 + "/.flava-index" } ?? (texts ?? "") + ".flava-index"
    }

    /// Opens the index of the JPEG and PNG files of `folder` (kind images) or of the non-empty lines of `texts`
    /// (kind texts) made with `embedder`'s model, building and saving it when it is missing or stale.
    /// `embedImages` embeds image files in order (the caller's progress bar and batch size; nil: batches of 16).
    public static func open(folder: String? = nil, texts: String? = nil, directory: String? = nil, embedder: FlavaEmbedder,
                            embedImages: (([String]) throws -> Tensor)? = nil) throws -> EmbeddingIndex {
        guard (folder == nil) != (texts == nil) else { throw DataError("an index is of a folder of images or of a file of texts") }
        var items: [String], signature: [String]
        if let folder {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else { throw DataError("\(folder): no such folder") }
            let names = try FileManager.default.contentsOfDirectory(atPath: folder)
                .filter { ["jpg", "jpeg", "png"].contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }.sorted()
            signature = try names.map { f in
                let a = try FileManager.default.attributesOfItem(atPath: folder + "/" + f)
                return "\(f)|\((a[.size] as? Int) ?? 0)|\(((a[.modificationDate] as? Date) ?? Date.distantPast).timeIntervalSince1970)"
            }
            items = names.map { folder + "/" + $0 }
        } else {
            guard let d = FileManager.default.contents(atPath: texts!), let s = String(data: d, encoding: .utf8) else { throw DataError("\(texts!): cannot read UTF-8 text") }
            items = s.codePointLines.filter { !$0.isEmpty }
            signature = items
        }
        guard !items.isEmpty else { throw DataError("\(folder ?? texts!): nothing to index (no JPEG or PNG files, or no lines)") }
        let weights = embedder.directory + "/model.safetensors"
        signature.append("model:" + ((try? FileManager.default.attributesOfItem(atPath: weights)[.modificationDate] as? Date)
            .map { "\($0.timeIntervalSince1970)" } ?? embedder.directory))
        let dir = directory ?? defaultDirectory(folder: folder, texts: texts)
        let embFile = dir + "/embeddings.safetensors", itemsFile = dir + "/items.json"
        let kind: Kind = folder != nil ? .images : .texts
        if let d = FileManager.default.contents(atPath: itemsFile), let saved = try? JSONDecoder().decode([String].self, from: d),
           saved == signature, let t = try? SafeTensorsFile(path: embFile).floatTensor("embeddings"),
           t.shape == [items.count, embedder.model.config.projectionDim] {
            return EmbeddingIndex(kind: kind, items: items, embeddings: t, directory: dir, built: false)
        }
        let embeddings: Tensor
        if kind == .images {
            embeddings = try embedImages?(items) ?? {
                var parts: [Tensor] = []
                for start in stride(from: 0, to: items.count, by: 64) {
                    let chunk = items[start..<min(items.count, start + 64)]
                    parts.append(embedder.imageEmbeddings(embedder.pixelValues(try chunk.map { try RGBImage.load($0) }), batchSize: 16))
                }
                return ShapeKernel.concat(parts, axis: 0)
            }()
        } else {
            embeddings = embedder.textEmbeddings(try embedder.tokenize(items), batchSize: 64)
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try SafeTensors.write([("embeddings", .float(embeddings))], to: embFile)
        try JSONEncoder().encode(signature).write(to: URL(fileURLWithPath: itemsFile), options: .atomic)
        return EmbeddingIndex(kind: kind, items: items, embeddings: embeddings, directory: dir, built: true)
    }

    /// The `k` items most similar to `query` [1, P] (normalized): (row, cosine similarity), best first.
    public func search(_ query: Tensor, k: Int) -> [(index: Int, similarity: Double)] {
        let sims = ZeroShot.similarity(query, embeddings)[0]
        return sims.indices.sorted { sims[$0] > sims[$1] }.prefix(max(0, k)).map { ($0, sims[$0]) }
    }
}
