// flava convert: re-save a FLAVA checkpoint (any layout, safetensors / shards / pytorch_model.bin) as a
// Hugging Face FlavaForPreTraining folder: config.json + model.safetensors (+ tokenizer and processor files).
import ArgumentParser
import Foundation
import FlavaKit

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-save a FLAVA checkpoint as a Hugging Face FlavaForPreTraining folder (safetensors).",
        discussion: """
        Reads FlavaForPreTraining, FlavaModel or FlavaImageCodebook checkpoints in safetensors, sharded or \
        pytorch_model.bin form. Parts the input lacks (the heads of a FlavaModel checkpoint) are freshly \
        initialized and listed. The result loads with FlavaForPreTraining.from_pretrained.
        """)

    @Option(help: "Input model folder.") var model: String
    @Option(help: "Output folder (created if needed).") var output: String
    @Option(help: "Seed for parts that must be initialized.") var seed: UInt64 = 0

    func run() throws {
        let (m, report) = try FlavaCheckpoint.loadPreTraining(model, seed: seed)
        try FlavaCheckpoint.save(m, to: output, assetsFrom: model)
        print("wrote \(output) (\(grouped(m.parameterCount)) parameters)")
        if !report.missing.isEmpty {
            print("initialized (not in the input): \(report.missing.count) tensors, e.g. \(report.missing.prefix(4).joined(separator: ", "))")
        }
    }
}
