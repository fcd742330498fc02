// flava: the command-line tool. One file per subcommand; this file only wires them together.
import ArgumentParser
import FlavaKit

struct Flava: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flava",
        abstract: "FLAVA for Swift: one model for vision, language and vision-and-language, on the CPU.",
        discussion: "Run 'flava help <command>' for each command's options.",
        subcommands: [Inspect.self])
}

BLASRuntime.ensureFastKernels()
Flava.main()
