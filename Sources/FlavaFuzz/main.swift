// flava-fuzz: coverage-guided fuzzing of every parser of untrusted input (scripts/fuzz.sh builds it with
// libFuzzer and AddressSanitizer), and replay of inputs through the same harnesses in an ordinary build, which is
// how the committed corpora and every crash ever found run as regression tests.
//
//   flava-fuzz list
//   flava-fuzz run HARNESS [libFuzzer options] [CORPUS_DIR…]     (fuzzing build only)
//   flava-fuzz replay [-v] HARNESS|all PATH…                     (files, or folders of files; "all": PATH/HARNESS/;
//                                                                -v prints whether each input was accepted)
import Foundation
import CFuzzDriver

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("flava-fuzz: \(message)\n".utf8))
    exit(2)
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else { fail("usage: flava-fuzz list | run HARNESS [libFuzzer options] | replay HARNESS|all PATH…") }

/// The files under `path` (itself if a file), sorted.
func files(under path: String) -> [String] {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return [] }
    guard isDir.boolValue else { return [path] }
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    return names.sorted().filter { !$0.hasPrefix(".") }.map { path + "/" + $0 }
}

switch arguments[1] {
case "list":
    for h in Harness.all { print(h.name.padding(toLength: 18, withPad: " ", startingAt: 0), h.summary) }
case "replay":
    let verbose = arguments.count > 2 && arguments[2] == "-v"
    let arguments = verbose ? [arguments[0], arguments[1]] + arguments[3...] : arguments
    guard arguments.count >= 4 else { fail("usage: flava-fuzz replay [-v] HARNESS|all PATH…") }
    let chosen: [Harness]
    if arguments[2] == "all" { chosen = Harness.all }
    else if let h = Harness.named(arguments[2]) { chosen = [h] }
    else { fail("unknown harness '\(arguments[2])'") }
    var count = 0
    for h in chosen {
        for root in arguments[3...] {
            for file in files(under: arguments[2] == "all" ? root + "/" + h.name : root) {
                guard let data = FileManager.default.contents(atPath: file) else { fail("\(file): cannot read") }
                if verbose { print("\(h.name) \(file)") }
                h.run(data, verbose: verbose)
                count += 1
            }
        }
    }
    print("replayed \(count) inputs through \(chosen.count) harness\(chosen.count == 1 ? "" : "es"): no crash")
case "run":
    guard arguments.count >= 3, let h = Harness.named(arguments[2]) else { fail("usage: flava-fuzz run HARNESS [libFuzzer options]; see 'flava-fuzz list'") }
    #if FUZZING
    Harness.selected = h
    let args = [arguments[0]] + arguments[3...]
    var argc = Int32(args.count)
    var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
    let status = cargs.withUnsafeMutableBufferPointer { buf -> Int32 in
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buf.baseAddress
        return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            Harness.selected!.run(Data(bytes: data!, count: size))
            return 0
        }
    }
    exit(status)
    #else
    fail("this build has no libFuzzer: build with scripts/fuzz.sh (or replay inputs with 'flava-fuzz replay \(h.name) PATH')")
    #endif
default:
    fail("unknown command '\(arguments[1])' (list, run, replay)")
}
