// Karpathy's split files for Flickr30K / COCO retrieval (dataset_flickr30k.json, dataset_coco.json):
// {"images": [{"filepath"?: "val2014", "filename": "…jpg", "split": "test", "sentences": [{"raw": "…"}, …]}]}.
import Foundation
import FlavaData

/// Image–captions groups for retrieval evaluation.
public struct RetrievalSet: Sendable {
    public var images: [String]
    public var captions: [String]
    /// Image index of each caption.
    public var captionImage: [Int]

    /// Reads a Karpathy split file, keeping `split` ("test", "val", "train", "restval").
    public static func karpathy(_ path: String, imageRoot: String, split: String) throws -> RetrievalSet {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError("\(path): no such file") }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any], let imgs = obj["images"] as? [[String: Any]] else {
            throw DataError("\(path): not a Karpathy split file (needs an 'images' list)")
        }
        var set = RetrievalSet(images: [], captions: [], captionImage: [])
        for (i, im) in imgs.enumerated() where (im["split"] as? String) == split {
            guard let name = im["filename"] as? String, let sents = im["sentences"] as? [[String: Any]] else {
                throw DataError("\(path): images[\(i)] lacks filename or sentences")
            }
            let dir = (im["filepath"] as? String).map { imageRoot + "/" + $0 } ?? imageRoot
            set.images.append(dir + "/" + name)
            for s in sents {
                guard let raw = (s["raw"] as? String) ?? (s["tokens"] as? [String])?.joined(separator: " ") else {
                    throw DataError("\(path): images[\(i)] has a sentence without text")
                }
                set.captions.append(raw); set.captionImage.append(set.images.count - 1)
            }
        }
        guard !set.images.isEmpty else { throw DataError("\(path): no images in split '\(split)'") }
        return set
    }

    /// Groups a manifest's records by image path (several captions per image allowed).
    public static func manifest(_ source: DataSource) throws -> RetrievalSet {
        let stream = try source.stream(epoch: 0, seed: 0)
        var set = RetrievalSet(images: [], captions: [], captionImage: [])
        var index: [String: Int] = [:]
        while let r = try stream.next() {
            guard case .file(let p)? = r.image, let t = r.text else { throw DataError("\(r.origin): needs an image file and a caption") }
            let i = index[p] ?? { set.images.append(p); index[p] = set.images.count - 1; return set.images.count - 1 }()
            set.captions.append(t); set.captionImage.append(i)
        }
        guard !set.images.isEmpty else { throw DataError("\(source.name): no image-caption pairs") }
        return set
    }
}
