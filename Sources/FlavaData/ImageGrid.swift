// Pictures for people: a grid of images with word-wrapped captions underneath (data previews,
// reconstructions), drawn with a small built-in bitmap font so no font files are needed.

/// Draws text and composes image grids on RGBImage.
public enum ImageGrid {
    public static let glyphWidth = 6, glyphHeight = 10

    /// Draws `text` (printable ASCII; anything else as '?') at (x, y) in `color`.
    public static func draw(_ text: String, into image: inout RGBImage, x: Int, y: Int, color: (UInt8, UInt8, UInt8) = (20, 20, 20)) {
        var cx = x
        for u in text.unicodeScalars {
            let code = (32...126).contains(u.value) ? Int(u.value) : 63
            let glyph = bitmapFontGlyphs[code - 32]
            for (row, bits) in glyph.enumerated() {
                for col in 0..<glyphWidth where bits & (1 << (5 - col)) != 0 {
                    let px = cx + col, py = y + row
                    guard px >= 0 && px < image.width && py >= 0 && py < image.height else { continue }
                    let i = (py * image.width + px) * 3
                    image.pixels[i] = color.0; image.pixels[i + 1] = color.1; image.pixels[i + 2] = color.2
                }
            }
            cx += glyphWidth
        }
    }

    /// Greedy word wrap to at most `columns` characters a line, `maxLines` lines (the last ends in "…" as "...").
    public static func wrap(_ text: String, columns: Int, maxLines: Int) -> [String] {
        var lines: [String] = [], current = ""
        for word in text.split(separator: " ") {
            let w = String(word.prefix(columns))
            if current.isEmpty { current = w } else if current.count + 1 + w.count <= columns { current += " " + w } else {
                lines.append(current); current = w
            }
        }
        if !current.isEmpty { lines.append(current) }
        if lines.count > maxLines {
            lines = Array(lines.prefix(maxLines))
            lines[maxLines - 1] = String(lines[maxLines - 1].prefix(max(0, columns - 3))) + "..."
        }
        return lines
    }

    /// A grid of tiles: each image scaled (bilinear) to `tile` pixels wide with its caption below.
    public static func compose(_ items: [(image: RGBImage, caption: String)], columns: Int = 4, tile: Int = 160,
                               captionLines: Int = 3) -> RGBImage {
        let rows = max(1, (items.count + columns - 1) / columns)
        let pad = 8, textH = captionLines * (glyphHeight + 2)
        let cellW = tile + pad, cellH = tile + textH + pad
        var canvas = RGBImage(width: columns * cellW + pad, height: rows * cellH + pad, fill: (250, 250, 250))
        for (i, item) in items.enumerated() {
            let (r, c) = (i / columns, i % columns)
            let x0 = pad + c * cellW, y0 = pad + r * cellH
            let scaled = item.image.width == tile && item.image.height == tile ? item.image
                : item.image.resized(width: tile, height: tile, filter: item.image.width < tile ? .bilinear : .bicubic)
            for y in 0..<tile { for x in 0..<tile { for k in 0..<3 {
                canvas.pixels[((y0 + y) * canvas.width + x0 + x) * 3 + k] = scaled.pixels[(y * tile + x) * 3 + k]
            } } }
            for (l, line) in wrap(item.caption, columns: tile / glyphWidth, maxLines: captionLines).enumerated() {
                draw(line, into: &canvas, x: x0, y: y0 + tile + 2 + l * (glyphHeight + 2))
            }
        }
        return canvas
    }
}
