// GLUE TSV layouts of all eight tasks on small fixtures made here, malformed lines named by file and line,
// and each task's metric choice.
import Testing
import Foundation
import FlavaKit
import TestSupport

private func write(_ text: String, _ name: String) throws -> String {
    let path = TestPaths.temporaryDirectory().appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Test func everyGLUELayoutReads() throws {
    let files: [String: String] = [
        "cola": "gj04\t1\t\tOur friends won't buy this analysis.\ngj04\t0\t*\tThey drank the pub.\n",
        "sst2": "sentence\tlabel\nit 's a charming journey \t1\nunflinchingly bleak \t0\n",
        "mrpc": "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHe said hi .\tHe greeted .\n0\t3\t4\tA cat .\tA dog .\n",
        "qqp": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t1\t2\tHow old?\tWhat age?\t1\n2\t3\t4\tWhy?\tWhere?\t0\n",
        "stsb": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n0\tmain\tx\t2012\t1\tnone\tnone\tA plane takes off.\tAn air plane is taking off.\t5.000\n1\tmain\tx\t2012\t4\tnone\tnone\tA man plays.\tA dog runs.\t0.500\n",
        "mnli": "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n0\t1\t1\tgov\t-\t-\t-\t-\tA cat sleeps.\tAn animal rests.\tentailment\tentailment\n1\t2\t2\tgov\t-\t-\t-\t-\tA cat sleeps.\tA dog barks.\tneutral\tneutral\n",
        "qnli": "index\tquestion\tsentence\tlabel\n0\tWho?\tHim.\tentailment\n1\tWhen?\tBlue.\tnot_entailment\n",
        "rte": "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tnot_entailment\n1\tC.\tC.\tentailment\n",
    ]
    for (name, text) in files {
        let task = GLUETask.all[name]!
        let ex = try task.read(try write(text, "\(name).tsv"))
        #expect(ex.count == 2, "\(name)")
        if task.isRegression { #expect(ex.map(\.score) == [5.0, 0.5]) } else { #expect(ex.allSatisfy { $0.label != nil }, "\(name)") }
        if name != "cola" && name != "sst2" { #expect(ex[0].textB != nil, "\(name)") }
    }
    #expect(GLUETask.all["cola"]!.metrics(predictions: [1, 0], gold: try GLUETask.all["cola"]!.read(try write(files["cola"]!, "c.tsv")))["mcc"] == 1)
    #expect(GLUETask.all["mrpc"]!.metrics(predictions: [1, 1], gold: try GLUETask.all["mrpc"]!.read(try write(files["mrpc"]!, "m.tsv"))).keys.sorted() == ["accuracy", "f1"])
}

@Test func malformedGLUELinesNameFileAndLine() throws {
    let p = try write("sentence\tlabel\nfine\t1\nbroken line without label\n", "bad.tsv")
    #expect { _ = try GLUETask.all["sst2"]!.read(p) } throws: { "\($0)".contains("bad.tsv:3") }
    let q = try write("sentence\tlabel\nfine\t7\n", "badlabel.tsv")
    #expect { _ = try GLUETask.all["sst2"]!.read(q) } throws: { "\($0)".contains("badlabel.tsv:2: unknown label '7'") }
    let r = try write("index\tsentence1\tsentence2\tscore\n0\ta\tb\tfive\n", "sts.tsv")
    #expect { _ = try GLUETask.all["stsb"]!.read(r) } throws: { "\($0)".contains("sts.tsv:2: score 'five'") }
}
