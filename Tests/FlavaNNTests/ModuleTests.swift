// Modules: keys written once at their declaration, strict and non-strict loading, HF initializers.
import Testing
import Foundation
import FlavaKit
import TestSupport

private final class Block: Module {
    @Child("attention.output.dense") var dense: Linear
    @Child("layernorm_before") var norm: LayerNorm
    init(_ ini: inout Initializer) {
        super.init()
        dense = Linear(4, 4, init: &ini)
        norm = LayerNorm(4, eps: 1e-12)
    }
}

private final class Toy: Module {
    @Child("embeddings") var embed: Embedding
    @ChildList("encoder.layer") var layers: [Block]
    @Param("logit_scale") var logitScale: Variable
    @Param("bias", aliases: ["decoder.bias"]) var bias: Variable
    @OptionalChild("id_path") var idPath: Linear?
    init(layers n: Int) {
        var ini = Initializer(seed: 1)
        super.init()
        embed = Embedding(10, 4, paddingIndex: 0, init: &ini)
        layers = (0..<n).map { _ in Block(&ini) }
        logitScale = Variable(Tensor(scalar: 2.6592), requiresGrad: true)
        bias = Variable(Tensor.zeros([3]), requiresGrad: true)
    }
}

@Test func parameterKeysMirrorTheDeclarations() {
    let keys = Toy(layers: 2).namedParameters().map(\.key)
    #expect(keys == [
        "embeddings.weight",
        "encoder.layer.0.attention.output.dense.weight", "encoder.layer.0.attention.output.dense.bias",
        "encoder.layer.0.layernorm_before.weight", "encoder.layer.0.layernorm_before.bias",
        "encoder.layer.1.attention.output.dense.weight", "encoder.layer.1.attention.output.dense.bias",
        "encoder.layer.1.layernorm_before.weight", "encoder.layer.1.layernorm_before.bias",
        "logit_scale", "bias",
    ])
}

@Test func initializersFollowHuggingFace() {
    let m = Toy(layers: 1)
    let w = m.embed.weight.value
    #expect(w.array[0..<4].allSatisfy { $0 == 0 })       // padding row
    let rest = Array(w.array[4...])
    let mean = rest.reduce(0, +) / Float(rest.count)
    let std = (rest.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(rest.count)).squareRoot()
    #expect(abs(std - 0.02) < 0.01)
    #expect(m.layers[0].norm.weight.value.array == [1, 1, 1, 1])
    #expect(m.layers[0].dense.bias!.value.array == [0, 0, 0, 0])
}

@Test func strictLoadReportsEveryProblemAtOnceAndChangesNothing() throws {
    let src = Toy(layers: 2)
    let path = TestPaths.temporaryDirectory().appendingPathComponent("toy.safetensors").path
    // Save under a prefix, drop one key, add one, and give one a wrong shape.
    var entries = src.stateDict(prefix: "flava").map { ($0.key, StoredTensor.float($0.value)) }
    entries.removeAll { $0.0 == "flava.logit_scale" }
    entries.append(("flava.extra.weight", .float(Tensor.zeros([2]))))
    entries = entries.map { $0.0 == "flava.bias" ? ($0.0, .float(Tensor.zeros([5]))) : $0 }
    try SafeTensors.write(entries, to: path)
    let dst = Toy(layers: 2)
    let before = dst.embed.weight.value.array
    let source = try SafeTensorsFile(path: path)
    do {
        try dst.load(from: source, keyPrefix: "flava.")
        Issue.record("strict load accepted a mismatched checkpoint")
    } catch {
        let m = "\(error)"
        #expect(m.contains("1 missing (logit_scale)"), "\(m)")
        #expect(m.contains("1 unexpected (flava.extra.weight)"), "\(m)")
        #expect(m.contains("bias: checkpoint [5] vs model [3]"), "\(m)")
    }
    #expect(dst.embed.weight.value.array == before)
    let report = try dst.load(from: source, keyPrefix: "flava.", strict: false)
    #expect(report.loaded == 9)
    #expect(report.missing == ["logit_scale"])
    #expect(dst.embed.weight.value.array == src.embed.weight.value.array)
}

@Test func tiedAliasesLoadAndAreNotUnexpected() throws {
    let src = Toy(layers: 1)
    src.bias.value = Tensor(shape: [3], [1, 2, 3])
    let path = TestPaths.temporaryDirectory().appendingPathComponent("tied.safetensors").path
    var entries = src.stateDict().map { ($0.key, StoredTensor.float($0.value)) }
    entries = entries.map { $0.0 == "bias" ? ("decoder.bias", $0.1) : $0 }   // only the alias is stored
    try SafeTensors.write(entries, to: path)
    let dst = Toy(layers: 1)
    let report = try dst.load(from: try SafeTensorsFile(path: path))
    #expect(report.isExact)
    #expect(dst.bias.value.array == [1, 2, 3])
}

@Test func savedModulesLoadBackExactly() throws {
    let a = Toy(layers: 3)
    let path = TestPaths.temporaryDirectory().appendingPathComponent("m.safetensors").path
    try a.saveSafeTensors(to: path)
    let b = Toy(layers: 3)
    b.layers[2].dense.weight.value = Tensor.zeros([4, 4])
    try b.load(from: try SafeTensorsFile(path: path))
    for (x, y) in zip(a.stateDict(), b.stateDict()) { #expect(x.key == y.key && x.value.array == y.value.array) }
}

@Test func closenessReportCatchesDifferences() {
    let a = Tensor(shape: [3], [1, 2, 3])
    #expect(closenessReport(a, a, atol: 0, rtol: 0) == nil)
    #expect(closenessReport(a, Tensor(shape: [3], [1, 2, 3.01]), atol: 1e-4, rtol: 1e-4) != nil)
    #expect(closenessReport(a, Tensor(shape: [3], [1, 2, .nan]), atol: 1, rtol: 1) != nil)
    #expect(closenessReport(a, Tensor(shape: [1, 3], [1, 2, 3]), atol: 1, rtol: 1) != nil)
}
