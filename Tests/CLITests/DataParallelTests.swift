// Data-parallel training under mpirun (skipped with a note where Open MPI is not installed; CI installs it):
// the collectives and the engine's checks of flava-dist-check on 2 and 3 ranks, `mpirun -np 2 flava pretrain`
// against one process on the same global batch (plain and with a sharded optimizer), a 2-rank checkpoint
// resumed by one process, codebook training and fine-tuning on 2 ranks against one process, a killed rank ending
// the whole job, and a batch that does not split evenly.
// One MPI job at a time (.serialized); every job runs under `timeout`, which ends mpirun and its ranks.
import Testing
import Foundation
import FlavaKit
import TestSupport

private let mpirun: String? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// `program args` on `np` ranks over TCP on loopback (the settings a container needs; DISTRIBUTED.md §5), under
/// `timeout` (which ends mpirun and its ranks after `limit` seconds); not started yet.
private func mpiJob(np: Int, _ program: String, _ args: [String], limit: Int, environment: [String: String]) -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    p.arguments = ["-k", "10", String(limit), mpirun!, "-np", String(np), "--oversubscribe", "--mca", "btl", "self,tcp",
                   "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo", "--mca", "mpi_yield_when_idle", "1",
                   TestPaths.packageRoot.appendingPathComponent(".build/release/" + program).path] + args
    var env = ProcessInfo.processInfo.environment
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"; env["FLAVA_NO_PROGRESS"] = "1"
    for (k, v) in environment { env[k] = v }
    p.environment = env
    p.currentDirectoryURL = TestPaths.packageRoot
    return p
}

/// Runs `program args` on `np` ranks to the end (see mpiJob).
private func runMPI(np: Int, _ program: String, _ args: [String], limit: Int = 600,
                    environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    let p = mpiJob(np: np, program, args, limit: limit, environment: environment)
    let out = Pipe(), err = Pipe()
    p.standardOutput = out; p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// The largest relative difference of the losses of `steps`.
private func worst(_ a: [Int: [String: Double]], _ b: [Int: [String: Double]], _ steps: ClosedRange<Int>) -> Double {
    var w = 0.0
    for s in steps {
        guard let x = a[s], let y = b[s], !x.isEmpty, Set(x.keys) == Set(y.keys) else { return .infinity }
        for (k, v) in x { w = max(w, abs(v - y[k]!) / max(abs(v), 1e-12)) }
    }
    return w
}

@Suite(.serialized, .enabled(if: mpirun != nil, "Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev)"))
struct DataParallelTests {
    static let pretrain = ["pretrain", "--size", "tiny", "--steps", "8", "--batch-size", "8", "--codebook-steps", "2",
                           "--eval-every", "100", "--checkpoint-every", "4", "--warmup", "1", "--learning-rate", "2e-4"]

    @Test(arguments: [2, 3]) func collectivesAndTheEngineOnRanks(_ np: Int) throws {
        let r = try runMPI(np: np, "flava-dist-check", [], limit: 300)
        #expect(r.status == 0, "\(r.out)\n\(r.err.suffix(2000))")
        #expect(r.out.contains("32 passed, 0 failed"), "\(r.out)")
    }

    @Test func twoRanksTrainAsOneProcessOnTheGlobalBatch() throws {
        let dir = TestPaths.temporaryDirectory().path
        let one = try runFlava(Self.pretrain + ["--output", dir + "/one"])
        #expect(one.status == 0, "\(one.err)")
        let a = try metricsLosses(dir + "/one/metrics.jsonl")
        for sharded in [false, true] {
            let out = dir + (sharded ? "/two-sharded" : "/two")
            let r = try runMPI(np: 2, "flava", Self.pretrain + ["--output", out] + (sharded ? ["--shard-optimizer"] : []))
            #expect(r.status == 0, "\(r.err.suffix(2000))")
            #expect(r.out.contains("data-parallel: 2 ranks, 4 samples each per batch of 8"), "\(r.out)")
            #expect(r.out.contains("weights bit-identical on all 2 ranks"), "\(r.out)")
            let b = try metricsLosses(out + "/metrics.jsonl")
            #expect(worst(a, b, 1...1) <= 1e-4, "first step, sharded \(sharded): \(a[1] ?? [:]) vs \(b[1] ?? [:])")
            #expect(worst(a, b, 1...8) <= 1e-3, "eight steps, sharded \(sharded)")
        }
        // The 2-rank (sharded) checkpoint of step 4, resumed by one process, repeats steps 5–8.
        let resumed = dir + "/resumed"
        try FileManager.default.copyItem(atPath: dir + "/two-sharded", toPath: resumed)
        try FileManager.default.removeItem(atPath: resumed + "/metrics.jsonl")
        let r = try runFlava(Self.pretrain + ["--output", resumed, "--resume", resumed + "/checkpoint-4"])
        #expect(r.status == 0, "\(r.err)")
        let c = try metricsLosses(resumed + "/metrics.jsonl")
        #expect(Set(c.keys) == Set(5...8))
        #expect(worst(a, c, 5...8) <= 1e-3)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Codebook training on the synthetic world (with dead-code restarts) and on an image folder with a corrupt
    /// file (the loader's global batches, the k-means images gathered), 2 ranks against one process; the 2-rank
    /// checkpoint resumed by one process.
    @Test func codebookTrainingOnTwoRanksMatchesOneProcess() throws {
        let dir = TestPaths.temporaryDirectory().path
        let cfg = #"{"codebook": {"vocab_size": 64, "hidden_size": 4}, "image_size": 32, "batch_size": 8, "kmeans_images": 16, "eval_images": 8, "warmup_steps": 2, "restart_every": 2, "steps": 6}"#
        try Data(cfg.utf8).write(to: URL(fileURLWithPath: dir + "/cb.json"))
        let export = try runFlava(["data", "export", "--split", "train", "--count", "40", "--image-size", "32", "--output", dir + "/images"])
        #expect(export.status == 0, "\(export.err)")
        let held = try runFlava(["data", "export", "--count", "8", "--image-size", "32", "--output", dir + "/held-out"])
        #expect(held.status == 0, "\(held.err)")
        let classes = try FileManager.default.contentsOfDirectory(atPath: dir + "/images").filter { !$0.hasSuffix(".jsonl") }.sorted()
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: dir + "/images/" + classes[0] + "/00000-corrupt.png"))
        for (name, extra) in [("world", [String]()), ("folder", ["--images", "folder:" + dir + "/images", "--held-out", "folder:" + dir + "/held-out"])] {
            let args = ["codebook", "train", "--config", dir + "/cb.json", "--eval-every", "3", "--checkpoint-every", "3"] + extra
            let one = try runFlava(args + ["--output", dir + "/\(name)-one"])
            #expect(one.status == 0, "\(name): \(one.err)")
            let two = try runMPI(np: 2, "flava", args + ["--output", dir + "/\(name)-two"])
            #expect(two.status == 0, "\(name): \(two.err.suffix(2000))")
            #expect(two.out.contains("data-parallel: 2 ranks, 4 images each per batch of 8"), "\(two.out)")
            #expect(two.out.contains("weights bit-identical on all 2 ranks"), "\(two.out)")
            let a = try metricsLosses(dir + "/\(name)-one/metrics.jsonl"), b = try metricsLosses(dir + "/\(name)-two/metrics.jsonl")
            #expect(worst(a, b, 1...1) <= 1e-4, "\(name), first step: \(a[1] ?? [:]) vs \(b[1] ?? [:])")
            #expect(worst(a, b, 1...6) <= 1e-2, "\(name), six steps")
            #expect(FileManager.default.fileExists(atPath: dir + "/\(name)-two/model.safetensors"))
            // Rank 0's checkpoint of step 3, resumed by one process.
            let resumed = try runFlava(args + ["--output", dir + "/\(name)-resumed", "--resume", dir + "/\(name)-two/checkpoint-3"])
            #expect(resumed.status == 0, "\(name): \(resumed.err)")
            let c = try metricsLosses(dir + "/\(name)-resumed/metrics.jsonl")
            #expect(Set(c.keys) == Set(4...6))
            #expect(worst(b, c, 4...4) <= 1e-4, "\(name), resumed: \(b[4] ?? [:]) vs \(c[4] ?? [:])")
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Fine-tuning (synthetic VQA) on 2 ranks against one process: the same losses and the same held-out table.
    @Test func fineTuningOnTwoRanksMatchesOneProcess() throws {
        let dir = TestPaths.temporaryDirectory().path
        let pre = try runFlava(["pretrain", "--size", "tiny", "--steps", "1", "--batch-size", "4", "--codebook-steps", "2",
                                "--eval-every", "100", "--checkpoint-every", "1", "--output", dir + "/pre"])
        #expect(pre.status == 0, "\(pre.err)")
        let args = ["finetune", "--model", dir + "/pre/checkpoint-1", "--steps", "4", "--batch-size", "6", "--checkpoint-every", "2"]
        let one = try runFlava(args + ["--output", dir + "/one"])
        #expect(one.status == 0, "\(one.err)")
        let two = try runMPI(np: 2, "flava", args + ["--output", dir + "/two"])
        #expect(two.status == 0, "\(two.err.suffix(2000))")
        #expect(two.out.contains("data-parallel: 2 ranks sharing each batch of 6"), "\(two.out)")
        let a = try metricsLosses(dir + "/one/checkpoints/metrics.jsonl"), b = try metricsLosses(dir + "/two/checkpoints/metrics.jsonl")
        #expect(worst(a, b, 1...4) <= 1e-4)
        func table(_ s: String) -> [Substring] { s.split(separator: "\n").filter { $0.contains("scenes") } }
        #expect(!table(one.out).isEmpty && table(one.out) == table(two.out), "\(one.out)\n\(two.out)")
        #expect(FileManager.default.fileExists(atPath: dir + "/two/model.safetensors"))
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// DINO on 2 ranks against one process: the centre is the mean over every rank's teacher outputs, each rank's
    /// loss the mean over its slice, the teacher the same EMA everywhere.
    @Test func dinoOnTwoRanksMatchesOneProcess() throws {
        let dir = TestPaths.temporaryDirectory().path
        let args = ["pretrain", "--objectives", "dino", "--size", "tiny", "--steps", "4", "--batch-size", "8",
                    "--eval-every", "100", "--checkpoint-every", "4"]
        let one = try runFlava(args + ["--output", dir + "/one"])
        #expect(one.status == 0, "\(one.err)")
        let two = try runMPI(np: 2, "flava", args + ["--output", dir + "/two"])
        #expect(two.status == 0, "\(two.err.suffix(2000))")
        #expect(two.out.contains("weights bit-identical on all 2 ranks"), "\(two.out)")
        let a = try metricsLosses(dir + "/one/metrics.jsonl"), b = try metricsLosses(dir + "/two/metrics.jsonl")
        #expect(worst(a, b, 1...1) <= 1e-4, "first step: \(a[1] ?? [:]) vs \(b[1] ?? [:])")
        #expect(worst(a, b, 1...4) <= 1e-2, "four steps")
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func aBatchThatDoesNotSplitEvenlyIsRefused() throws {
        let dir = TestPaths.temporaryDirectory().path
        let r = try runMPI(np: 2, "flava", ["pretrain", "--size", "tiny", "--steps", "2", "--batch-size", "7", "--output", dir], limit: 120)
        #expect(r.status != 0)
        #expect(r.err.contains("--batch-size 7 (the global batch) does not divide evenly among 2 ranks"), "\(r.err)")
        let c = try runMPI(np: 2, "flava", ["codebook", "train", "--steps", "2", "--batch-size", "7", "--output", dir], limit: 120)
        #expect(c.status != 0)
        #expect(c.err.contains("batch_size = 7 does not split evenly across 2 ranks"), "\(c.err)")
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Starts a long 2-rank pretraining run in `dir` and waits until it trains (metrics.jsonl has a line).
    private func startLongRun(_ dir: String, environment: [String: String] = [:]) throws -> (Process, Pipe) {
        let p = mpiJob(np: 2, "flava", ["pretrain", "--size", "tiny", "--steps", "100000", "--batch-size", "8", "--codebook-steps", "2",
                                        "--checkpoint-every", "100000", "--eval-every", "100000", "--output", dir],
                       limit: 300, environment: environment)
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice; p.standardError = err
        try p.run()
        let metrics = dir + "/metrics.jsonl"
        let until = Date().addingTimeInterval(240)
        while Date() < until, p.isRunning, ((try? String(contentsOfFile: metrics, encoding: .utf8)) ?? "").isEmpty { usleep(100_000) }
        return (p, err)
    }

    @Test func killingOneRankEndsTheJob() throws {
        let dir = TestPaths.temporaryDirectory().path
        let (p, err) = try startLongRun(dir)
        let ranks = try pids(of: dir)
        #expect(ranks.count == 2, "ranks found: \(ranks)")
        let started = Date()
        if let victim = ranks.last { kill(victim, SIGKILL) }
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let took = Date().timeIntervalSince(started)
        #expect(p.terminationStatus != 0)
        #expect(took < 90, "the job took \(took) s to end")
        #expect(String(decoding: e, as: UTF8.self).contains("exited on signal 9"), "\(String(decoding: e, as: UTF8.self).suffix(1500))")
        usleep(500_000)
        #expect(try pids(of: dir).isEmpty, "ranks left running")
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A rank that hangs (SIGSTOP: alive, silent) ends the job once the other's collective passes its deadline
    /// (30 s: longer than rank 0's vocabulary and codebook preparation takes on a loaded machine, which the other
    /// rank waits out in a barrier).
    @Test func aHungRankEndsTheJobAtTheCollectiveDeadline() throws {
        let dir = TestPaths.temporaryDirectory().path
        let (p, err) = try startLongRun(dir, environment: ["FLAVA_COLLECTIVE_TIMEOUT": "30"])
        let ranks = try pids(of: dir)
        #expect(ranks.count == 2, "ranks found: \(ranks)")
        let started = Date()
        if let victim = ranks.last { kill(victim, SIGSTOP) }
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let took = Date().timeIntervalSince(started)
        #expect(p.terminationStatus != 0)
        #expect(took < 90, "the job took \(took) s to end")
        #expect(e.contains(" of 2): ") && e.contains("did not complete within 30 s"), "\(e.suffix(1500))")
        for pid in try pids(of: dir) { kill(pid, SIGKILL) }   // were any left (a failure above), not to leak them
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Two "machines": network namespaces joined by a veth pair, ranks over TCP between them, the second rank
    /// started through mpirun's rsh agent (scripts/mpi/netns_two_hosts.sh). Needs root and `ip netns`.
    @Test(.enabled(if: getuid() == 0 && (FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/usr/bin/ip")),
                   "needs root and iproute2 for network namespaces"))
    func acrossTwoNetworkNamespaces() throws {
        func script(_ args: [String]) throws -> (status: Int32, out: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = [TestPaths.packageRoot.appendingPathComponent("scripts/mpi/netns_two_hosts.sh").path] + args
            var env = ProcessInfo.processInfo.environment
            env["FLAVA_NETNS_TIMEOUT"] = "300"; env["FLAVA_NO_PROGRESS"] = "1"
            p.environment = env
            p.currentDirectoryURL = TestPaths.packageRoot
            let out = Pipe()
            p.standardOutput = out; p.standardError = out
            try p.run()
            let o = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: o, as: UTF8.self))
        }
        let check = try script([])
        if check.out.contains("Operation not permitted") || check.out.contains("Cannot create namespace") {
            print("skipped: this machine does not allow network namespaces"); return
        }
        #expect(check.status == 0 && check.out.contains("32 passed, 0 failed"), "\(check.out.suffix(3000))")
        let dir = TestPaths.temporaryDirectory().path
        let args = ["pretrain", "--size", "tiny", "--steps", "3", "--batch-size", "8", "--codebook-steps", "2",
                    "--eval-every", "100", "--checkpoint-every", "100", "--warmup", "1", "--learning-rate", "2e-4"]
        let one = try runFlava(args + ["--output", dir + "/one"])
        #expect(one.status == 0, "\(one.err)")
        let flava = TestPaths.packageRoot.appendingPathComponent(".build/release/flava").path
        let two = try script([flava] + args + ["--output", dir + "/two"])
        #expect(two.status == 0, "\(two.out.suffix(3000))")
        #expect(two.out.contains("weights bit-identical on all 2 ranks"), "\(two.out.suffix(2000))")
        #expect(worst(try metricsLosses(dir + "/one/metrics.jsonl"), try metricsLosses(dir + "/two/metrics.jsonl"), 1...3) <= 1e-3)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Processes whose command line names `marker` (the run folder), from /proc.
    private func pids(of marker: String) throws -> [Int32] {
        var out: [Int32] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: "/proc") {
            guard let pid = Int32(name), let cmd = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") else { continue }
            let args = cmd.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if args.first?.hasSuffix("/flava") == true && args.contains(marker) { out.append(pid) }
        }
        return out.sorted()
    }
}
