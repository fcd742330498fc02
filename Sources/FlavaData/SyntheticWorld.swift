// The built-in synthetic world: the project's embedded default data, so the main job runs on a fresh machine
// with no downloads. Images of 1–3 objects (shapes, colours, sizes, textures, positions) on varied
// backgrounds with mild noise, each with captions from varied templates and synonyms; unpaired images and
// text from the same world; class labels; question–answer pairs; and a held-out split whose (colour, shape)
// combinations never occur in training, for honest zero-shot evaluation. Every sample is a pure function of
// (seed, split, index): unlimited, random-access, reproducible, and safe to generate on any thread.
import Foundation
import FlavaTensor

/// An object in a synthetic scene.
public struct WorldObject: Sendable, Equatable, Codable {
    public var shape: Int, color: Int, size: Int, texture: Int
    /// Centre in [0, 1]².
    public var x: Double, y: Double
}

/// One scene with its descriptions.
public struct WorldSample: Sendable {
    public var image: RGBImage
    public var objects: [WorldObject]
    /// Several captions of the scene (different templates and synonyms).
    public var captions: [String]
    /// The class of the scene: "colour shape" of its first object (index into `SyntheticWorld.classNames`).
    public var label: Int
    /// Question–answer pairs about colour, shape, count and position.
    public var questions: [(question: String, answer: String)]
}

/// The synthetic world and its splits.
public struct SyntheticWorld: Sendable {
    public enum Split: String, Sendable, CaseIterable, Codable {
        /// Training scenes: no object has a held-out (colour, shape) combination.
        case train
        /// Held-out scenes: every first object has a held-out combination (others are arbitrary).
        case heldOut = "held_out"
    }

    public static let shapes = ["circle", "square", "triangle", "diamond", "cross", "star"]
    public static let shapeSynonyms: [[String]] = [["circle", "disc", "round shape"], ["square", "box"], ["triangle"],
                                                   ["diamond", "rhombus"], ["cross", "plus sign"], ["star"]]
    public static let shapePlurals = ["circles", "squares", "triangles", "diamonds", "crosses", "stars"]
    public static let colors = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"]
    public static let colorSynonyms: [[String]] = [["red", "crimson"], ["green"], ["blue"], ["yellow", "golden"], ["purple", "violet"],
                                                   ["orange"], ["white"], ["black", "dark"]]
    static let rgb: [(Double, Double, Double)] = [(220, 40, 40), (40, 170, 60), (45, 85, 225), (240, 205, 40), (145, 60, 185),
                                                  (250, 135, 30), (245, 245, 245), (25, 25, 25)]
    public static let sizes = ["small", "large"]
    public static let sizeSynonyms: [[String]] = [["small", "tiny", "little"], ["large", "big"]]
    public static let textures = ["solid", "striped", "dotted"]
    static let backgrounds: [(Double, Double, Double)] = [(128, 128, 128), (70, 75, 85), (225, 215, 190), (185, 205, 225), (150, 175, 140)]
    static let numberWords = ["zero", "one", "two", "three"]

    /// (colour, shape) combinations never shown in training: one colour per shape, spread over the palette.
    public static let heldOutCombinations: Set<[Int]> = [[0, 2], [1, 4], [2, 0], [3, 5], [4, 1], [5, 3], [6, 2], [7, 0]]

    /// The classes for zero-shot classification: every "colour shape" (48).
    public static var classNames: [String] {
        colors.flatMap { c in shapes.map { "\(c) \($0)" } }
    }

    public var seed: UInt64
    public var imageSize: Int

    public init(seed: UInt64 = 0, imageSize: Int = 64) {
        precondition(imageSize >= 16, "synthetic images must be at least 16 pixels")
        self.seed = seed
        self.imageSize = imageSize
    }

    /// A generator for one (stream, split, index), independent of every other.
    func generator(_ stream: UInt64, _ split: Split, _ index: Int) -> SeededGenerator {
        var h = seed &* 0x9E37_79B9_7F4A_7C15 ^ stream &* 0xC2B2_AE3D_27D4_EB4F
        h ^= (split == .train ? 0x1234_5678 : 0x8765_4321) &+ UInt64(truncatingIfNeeded: index) &* 0x1656_67B1_9E37_79F9
        return SeededGenerator(seed: h)
    }

    static func isHeldOut(color: Int, shape: Int) -> Bool { heldOutCombinations.contains([color, shape]) }

    /// Draws a (colour, shape) pair allowed in `split` (held-out split: a held-out pair when `first`).
    func combination(_ split: Split, first: Bool, _ g: inout SeededGenerator) -> (Int, Int) {
        if split == .heldOut && first {
            let pairs = SyntheticWorld.heldOutCombinations.sorted { $0.lexicographicallyPrecedes($1) }
            let p = pairs[Int(g.next() % UInt64(pairs.count))]
            return (p[0], p[1])
        }
        while true {
            let c = Int(g.next() % UInt64(SyntheticWorld.colors.count)), s = Int(g.next() % UInt64(SyntheticWorld.shapes.count))
            if split == .heldOut || !SyntheticWorld.isHeldOut(color: c, shape: s) { return (c, s) }
        }
    }

    /// The scene at `index` of `split` (paired image and captions).
    public func sample(_ index: Int, split: Split = .train) -> WorldSample {
        var g = generator(1, split, index)
        let count = 1 + Int(g.next() % 3)
        var objects: [WorldObject] = []
        // Two or three objects may be copies of one kind ("two green triangles").
        let copies = count > 1 && g.nextUniform() < 0.3
        for i in 0..<count {
            var o: WorldObject
            if copies && i > 0 { o = objects[0] } else {
                let (c, s) = combination(split, first: i == 0, &g)
                o = WorldObject(shape: s, color: c, size: Int(g.next() % 2), texture: g.nextUniform() < 0.7 ? 0 : 1 + Int(g.next() % 2), x: 0, y: 0)
            }
            // Place without heavy overlap: a few tries on a jittered grid.
            var best = (x: 0.5, y: 0.5), bestGap = -1.0
            for _ in 0..<12 {
                let x = 0.2 + 0.6 * Double(g.nextUniform()), y = 0.2 + 0.6 * Double(g.nextUniform())
                let gap = objects.map { hypot($0.x - x, $0.y - y) }.min() ?? 1
                if gap > bestGap { best = (x, y); bestGap = gap }
                if gap > 0.4 { break }
            }
            o.x = best.x; o.y = best.y
            objects.append(o)
        }
        let background = Int(g.next() % UInt64(SyntheticWorld.backgrounds.count))
        let backgroundTexture = Int(g.next() % 3)
        let image = render(objects, background: background, backgroundTexture: backgroundTexture, noiseSeed: g.next())
        let captions = (0..<4).map { _ in caption(objects, &g) }
        return WorldSample(image: image, objects: objects, captions: captions,
                           label: objects[0].color * SyntheticWorld.shapes.count + objects[0].shape,
                           questions: questions(objects, &g))
    }

    /// An image alone (for MIM): the image of an independent scene.
    public func unpairedImage(_ index: Int, split: Split = .train) -> RGBImage {
        sample(1_000_000_000 + index, split: split).image
    }

    /// A text alone (for MLM): a caption of an independent scene, sometimes two sentences.
    public func unpairedText(_ index: Int, split: Split = .train) -> String {
        let s = sample(2_000_000_000 + index, split: split)
        var g = generator(3, split, index)
        return g.nextUniform() < 0.3 ? s.captions[0] + ". " + s.captions[1].prefix(1).uppercased() + s.captions[1].dropFirst() + "." : s.captions[0]
    }

    // MARK: language

    static func pick<T>(_ a: [T], _ g: inout SeededGenerator) -> T { a[Int(g.next() % UInt64(a.count))] }

    func phrase(_ o: WorldObject, _ g: inout SeededGenerator, article: Bool = true, size: Bool? = nil) -> String {
        var words: [String] = []
        if size ?? (g.nextUniform() < 0.6) { words.append(SyntheticWorld.pick(SyntheticWorld.sizeSynonyms[o.size], &g)) }
        if o.texture > 0 && g.nextUniform() < 0.5 { words.append(SyntheticWorld.textures[o.texture]) }
        words.append(SyntheticWorld.pick(SyntheticWorld.colorSynonyms[o.color], &g))
        words.append(SyntheticWorld.pick(SyntheticWorld.shapeSynonyms[o.shape], &g))
        let p = words.joined(separator: " ")
        guard article else { return p }
        return ("aeiou".contains(p.first ?? "x") ? "an " : "a ") + p
    }

    static func relation(_ a: WorldObject, _ b: WorldObject) -> String {
        let dx = b.x - a.x, dy = b.y - a.y
        if abs(dx) >= abs(dy) { return dx > 0 ? "to the left of" : "to the right of" }
        return dy > 0 ? "above" : "below"
    }

    static func position(_ o: WorldObject) -> String {
        if abs(o.x - 0.5) >= abs(o.y - 0.5) { return o.x < 0.5 ? "on the left" : "on the right" }
        return o.y < 0.5 ? "at the top" : "at the bottom"
    }

    func caption(_ objects: [WorldObject], _ g: inout SeededGenerator) -> String {
        let first = objects[0]
        let same = objects.filter { $0.shape == first.shape && $0.color == first.color }.count
        if objects.count > 1 && same == objects.count {
            let n = SyntheticWorld.numberWords[objects.count]
            let color = SyntheticWorld.pick(SyntheticWorld.colorSynonyms[first.color], &g)
            let templates = ["\(n) \(color) \(SyntheticWorld.shapePlurals[first.shape])",
                             "there are \(n) \(color) \(SyntheticWorld.shapePlurals[first.shape])",
                             "a picture of \(n) \(color) \(SyntheticWorld.shapePlurals[first.shape])"]
            return SyntheticWorld.pick(templates, &g)
        }
        switch objects.count {
        case 1:
            let templates = ["\(phrase(first, &g))", "a picture of \(phrase(first, &g))", "\(phrase(first, &g)) \(SyntheticWorld.position(first))",
                             "there is \(phrase(first, &g)) in the image", "an image showing \(phrase(first, &g))"]
            return SyntheticWorld.pick(templates, &g)
        case 2:
            let r = SyntheticWorld.relation(first, objects[1])
            let templates = ["\(phrase(first, &g)) \(r) \(phrase(objects[1], &g))", "\(phrase(first, &g)) and \(phrase(objects[1], &g))",
                             "a picture of \(phrase(first, &g)) \(r) \(phrase(objects[1], &g))"]
            return SyntheticWorld.pick(templates, &g)
        default:
            let parts = objects.map { phrase($0, &g, size: false) }
            return SyntheticWorld.pick(["\(parts[0]), \(parts[1]) and \(parts[2])", "three shapes: \(parts[0]), \(parts[1]) and \(parts[2])"], &g)
        }
    }

    func questions(_ objects: [WorldObject], _ g: inout SeededGenerator) -> [(question: String, answer: String)] {
        let first = objects[0]
        var qa: [(String, String)] = []
        qa.append(("what color is the \(SyntheticWorld.shapes[first.shape])?", SyntheticWorld.colors[first.color]))
        qa.append(("what shape is the \(SyntheticWorld.colors[first.color]) object?", SyntheticWorld.shapes[first.shape]))
        let n = objects.filter { $0.shape == first.shape }.count
        qa.append(("how many \(SyntheticWorld.shapePlurals[first.shape]) are there?", SyntheticWorld.numberWords[n]))
        qa.append(("how many objects are there?", SyntheticWorld.numberWords[objects.count]))
        if objects.count == 1 {
            qa.append(("is the \(SyntheticWorld.shapes[first.shape]) on the left or on the right?", first.x < 0.5 ? "left" : "right"))
        }
        return qa
    }

    // MARK: rendering

    /// Whether (u, v), relative to an object's centre in units of its radius, lies inside the shape.
    static func inside(_ shape: Int, _ u: Double, _ v: Double) -> Bool {
        switch shape {
        case 0: return u * u + v * v <= 1
        case 1: return abs(u) <= 0.85 && abs(v) <= 0.85
        case 2: return v <= 0.8 && v >= 1.7 * abs(u) - 0.9   // apex up (image y grows downward)
        case 3: return abs(u) + abs(v) <= 1
        case 4: return (abs(u) <= 0.3 && abs(v) <= 0.95) || (abs(v) <= 0.3 && abs(u) <= 0.95)
        default:
            // Five-pointed star: inside if within the radius profile r(θ) alternating 1 and 0.45.
            let r = (u * u + v * v).squareRoot()
            if r > 1 { return false }
            var theta = atan2(u, -v)
            if theta < 0 { theta += 2 * Double.pi }
            let sector = 2 * Double.pi / 5
            let t = abs(theta.truncatingRemainder(dividingBy: sector) - sector / 2) / (sector / 2)   // 0 at a point, 1 between
            return r <= 1 - 0.55 * t
        }
    }

    func render(_ objects: [WorldObject], background: Int, backgroundTexture: Int, noiseSeed: UInt64) -> RGBImage {
        let n = imageSize
        var img = [Double](repeating: 0, count: n * n * 3)
        let bg = SyntheticWorld.backgrounds[background]
        for y in 0..<n { for x in 0..<n {
            var shade = 1.0
            switch backgroundTexture {
            case 1: shade = ((x + y) / max(2, n / 16)) % 2 == 0 ? 1.0 : 0.9          // diagonal stripes
            case 2: shade = 0.92 + 0.08 * Double(y) / Double(n)                       // gradient
            default: break
            }
            img[(y * n + x) * 3] = bg.0 * shade; img[(y * n + x) * 3 + 1] = bg.1 * shade; img[(y * n + x) * 3 + 2] = bg.2 * shade
        } }
        for o in objects {
            let radius = (o.size == 0 ? 0.11 : 0.19) * Double(n)
            let (cx, cy) = (o.x * Double(n), o.y * Double(n))
            let col = SyntheticWorld.rgb[o.color]
            let x0 = max(0, Int(cx - radius - 1)), x1 = min(n - 1, Int(cx + radius + 1))
            let y0 = max(0, Int(cy - radius - 1)), y1 = min(n - 1, Int(cy + radius + 1))
            guard x0 <= x1, y0 <= y1 else { continue }
            for y in y0...y1 { for x in x0...x1 {
                // 3×3 supersampling for anti-aliased edges.
                var cover = 0
                for sy in 0..<3 { for sx in 0..<3 {
                    let u = (Double(x) + (Double(sx) + 0.5) / 3 - cx) / radius, v = (Double(y) + (Double(sy) + 0.5) / 3 - cy) / radius
                    if SyntheticWorld.inside(o.shape, u, v) { cover += 1 }
                } }
                guard cover > 0 else { continue }
                var shade = 1.0
                if o.texture == 1 && ((y - y0) / max(2, n / 24)) % 2 == 1 { shade = 0.6 }                 // stripes
                if o.texture == 2 && (x % max(3, n / 12) == 0 && y % max(3, n / 12) == 0) { shade = 0.4 }  // dots
                let a = Double(cover) / 9, i = (y * n + x) * 3
                img[i] = img[i] * (1 - a) + col.0 * shade * a
                img[i + 1] = img[i + 1] * (1 - a) + col.1 * shade * a
                img[i + 2] = img[i + 2] * (1 - a) + col.2 * shade * a
            } }
        }
        var g = SeededGenerator(seed: noiseSeed)
        var px = [UInt8](repeating: 0, count: n * n * 3)
        for i in 0..<(n * n * 3) {
            let v = img[i] + 6 * Double(g.nextNormal())
            px[i] = UInt8(max(0, min(255, v.rounded())))
        }
        return RGBImage(width: n, height: n, pixels: px)
    }
}
