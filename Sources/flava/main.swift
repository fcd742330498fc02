// flava: the command-line tool. One file per subcommand; this file only wires them together and turns every
// error into one line on standard error with a non-zero exit status.
import ArgumentParser
import Foundation
import FlavaKit

struct Flava: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flava",
        abstract: "FLAVA for Swift: one model for vision, language and vision-and-language, on the CPU.",
        discussion: "Run 'flava help <command>' or 'flava <command> --help' for each command's options.",
        subcommands: [Pretrain.self, CodebookCommand.self, Finetune.self, Predict.self, Embed.self, EvalCommand.self, Classify.self, Match.self, Retrieve.self, Serve.self, Bench.self, Inspect.self, Convert.self, TokenizerCommand.self, DataCommand.self])
}

BLASRuntime.ensureFastKernels()
do {
    var command = try Flava.parseAsRoot()
    try command.run()
    DataParallel.finish()   // under mpirun: every rank ends MPI cleanly
} catch {
    let code = Flava.exitCode(for: error)
    if code == .success { Flava.exit(withError: error) }   // --help, --version
    let message = Flava.message(for: error).codePointLines.first ?? "\(error)"
    // Under mpirun: the line names the rank, and the whole job ends (the other ranks may be waiting on this one).
    DataParallel.abort(message, code: code.rawValue == 0 ? 1 : code.rawValue)
    FileHandle.standardError.write("error: \(message)\n".data(using: .utf8)!)
    exit(code.rawValue == 0 ? 1 : code.rawValue)
}

extension InferencePrecision: ExpressibleByArgument {}
