// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "FlavaSwift",
    products: [
        .library(name: "FlavaKit", targets: ["FlavaKit"]),
        .library(name: "FlavaServe", targets: ["FlavaServe"]),
        .executable(name: "flava", targets: ["flava"]),
        .executable(name: "flava-bench", targets: ["FlavaBench"]),
        .executable(name: "flava-fuzz", targets: ["FlavaFuzz"]),
        .executable(name: "flava-dist-check", targets: ["FlavaDistCheck"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // flava serve: the HTTP server, graceful shutdown, Prometheus metrics (see README "flava serve").
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // System-library shims over Debian's -dev packages (see README "System dependencies").
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),

        // Hot row kernels (exp, GELU, tanh, reductions) in C, dispatched to AVX-512/AVX2 at run time.
        .target(name: "CFlavaKernels"),
        // The MPI shim: getters and wrappers over Open MPI, which is opened at run time (builds without MPI).
        .target(name: "CMPI", linkerSettings: [.linkedLibrary("dl")]),
        // Tensor storage and kernels; the only target that talks to BLAS.
        .target(name: "FlavaTensor", dependencies: ["CBLAS", "CFlavaKernels"]),
        // Reverse-mode autograd over the kernels.
        .target(name: "FlavaAutograd", dependencies: ["FlavaTensor"]),
        // Data-parallel collectives (one process, or MPI under mpirun) and the differentiable all-gather.
        .target(name: "FlavaDistributed", dependencies: ["FlavaAutograd", "CMPI"]),
        // Modules with Hugging Face keys, state dicts, safetensors and torch .bin IO.
        .target(name: "FlavaNN", dependencies: ["FlavaAutograd"]),
        // JPEG/PNG decoding wrappers that keep libjpeg/libpng's longjmp error handling inside C.
        .target(name: "CImageCodecs", dependencies: ["CJPEG", "CPNG"],
                linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),
        // Inputs: tokenizer, image decoding and resampling, masking, datasets.
        .target(name: "FlavaData", dependencies: ["FlavaTensor", "FlavaDistributed", "CImageCodecs"]),
        // The FLAVA model: one Hugging Face class per file.
        .target(name: "FlavaModel", dependencies: ["FlavaNN", "FlavaDistributed"]),
        // Inference pipelines, zero-shot evaluation, metrics, fine-tuning tasks.
        .target(name: "FlavaEval", dependencies: ["FlavaModel", "FlavaData"]),
        // Optimizer, schedules, clipping, gradient accumulation.
        .target(name: "FlavaTraining", dependencies: ["FlavaDistributed", "FlavaNN", "FlavaModel", "FlavaData", "FlavaEval"]),
        // Umbrella library re-exporting everything users need.
        .target(name: "FlavaKit", dependencies: ["FlavaTensor", "FlavaAutograd", "FlavaDistributed", "FlavaNN", "FlavaModel", "FlavaData", "FlavaEval", "FlavaTraining"]),

        // The HTTP service (flava serve): one inference worker behind a bounded queue, routes, limits, metrics.
        .target(name: "FlavaServe", dependencies: [
            "FlavaKit",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .executableTarget(name: "flava", dependencies: [
            "FlavaKit", "FlavaServe", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "FlavaBench", dependencies: [
            "FlavaKit", "FlavaServe", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/FlavaBench"),

        // The multi-process checks of data-parallel training (run under mpirun by the tests).
        .executableTarget(name: "FlavaDistCheck", dependencies: ["FlavaKit"], path: "Sources/FlavaDistCheck"),

        // Fuzzing harnesses for every parser of untrusted input (scripts/fuzz.sh builds them with libFuzzer;
        // an ordinary build replays inputs through them).
        .target(name: "CFuzzDriver"),
        .executableTarget(name: "FlavaFuzz", dependencies: ["FlavaKit", "CFuzzDriver"], path: "Sources/FlavaFuzz"),

        .target(name: "TestSupport", dependencies: ["FlavaKit"], path: "Tests/TestSupport"),
        .testTarget(name: "FlavaTensorTests", dependencies: ["FlavaTensor", "TestSupport"]),
        .testTarget(name: "FlavaAutogradTests", dependencies: ["FlavaAutograd", "TestSupport"]),
        .testTarget(name: "FlavaNNTests", dependencies: ["FlavaNN", "TestSupport"]),
        .testTarget(name: "FlavaDistributedTests", dependencies: ["FlavaDistributed", "TestSupport"]),
        .testTarget(name: "FlavaTrainingTests", dependencies: ["FlavaTraining", "TestSupport"]),
        .testTarget(name: "FlavaModelTests", dependencies: ["FlavaModel", "TestSupport"]),
        .testTarget(name: "FlavaDataTests", dependencies: ["FlavaData", "TestSupport"]),
        .testTarget(name: "FlavaEvalTests", dependencies: ["FlavaEval", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport"]),
        .testTarget(name: "FlavaServeTests", dependencies: [
            "FlavaServe", "TestSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
