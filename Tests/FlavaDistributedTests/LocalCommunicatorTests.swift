import Testing
import FlavaTensor
import FlavaAutograd
import FlavaDistributed

@Suite struct LocalCommunicatorTests {
    @Test func oneProcessCollectivesAreTheIdentity() {
        let c = LocalCommunicator()
        #expect(c.rank == 0 && c.size == 1 && c.isRoot)
        #expect(c.allReduce([1.5, -2] as [Float]) == [1.5, -2])
        #expect(c.allGather([3, 4] as [Int32]) == [3, 4])
        #expect(c.broadcast([7.0] as [Double]) == [7])
        #expect(c.agree(42))
        var out = [Float](repeating: 0, count: 3)
        [1, 2, 3].withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { c.reduceScatter(s, into: $0, .sum) } }
        #expect(out == [1, 2, 3])
    }

    @Test func theGatherIsTheIdentityAloneWithItsGradient() {
        let x = Variable(Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6]), requiresGrad: true)
        let y = allGatherRows(x, LocalCommunicator())
        (y * y).sum().backward()
        #expect(y.value.array == x.value.array)
        #expect(x.grad!.array == [2, 4, 6, 8, 10, 12])
    }

    @Test func withoutMPIEnvironmentTheWorldIsOneProcess() throws {
        guard !DataParallel.launchedByMPI else { return }
        let w = try DataParallel.world()
        #expect(w.size == 1 && w.rank == 0)
    }
}
