// Reverse-mode autograd: a Variable holds a value, an optional gradient, and the node that produced it.
// Each op (Ops/*.swift) computes its forward with a FlavaTensor kernel and records its backward right there.
import Synchronization
import FlavaTensor
import Dispatch

/// The record an op leaves in the graph: its inputs and how to turn the output's gradient into theirs.
public final class Node {
    /// Op name, for error messages and debugging.
    public let name: String
    /// Inputs whose gradient this node produces (in the order `backward` returns them).
    public let inputs: [Variable]
    /// Given the output gradient, the gradient of each input (nil where the input needs none).
    public let backward: (Tensor) -> [Tensor?]

    init(name: String, inputs: [Variable], backward: @escaping (Tensor) -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }
}

/// A value in the computation graph. Leaves with `requiresGrad` are parameters (or inputs being checked);
/// results of ops on them carry a `node` and receive gradients during `backward()`.
public final class Variable: CustomStringConvertible {
    /// The value.
    public var value: Tensor
    /// Accumulated gradient (leaves keep it across `backward` calls, for gradient accumulation).
    public var grad: Tensor?
    /// Whether gradients flow to (or through) this variable.
    public private(set) var requiresGrad: Bool
    /// The op that produced this variable, nil for leaves and for values made without recording.
    public private(set) var node: Node?

    /// A leaf. Parameters are leaves with `requiresGrad: true`.
    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.requiresGrad = requiresGrad
    }

    init(_ value: Tensor, node: Node) {
        self.value = value
        self.requiresGrad = true
        self.node = node
    }

    /// Shape of the value.
    public var shape: [Int] { value.shape }

    /// Drops the gradient.
    public func zeroGrad() { grad = nil }

    /// Stops gradients at this leaf (a frozen parameter, like HF's requires_grad = False).
    public func freeze() {
        precondition(node == nil, "only leaves can be frozen")
        requiresGrad = false
        grad = nil
    }

    /// Lets gradients reach this leaf again.
    public func unfreeze() {
        precondition(node == nil, "only leaves can be unfrozen")
        requiresGrad = true
    }

    /// Builds the result of an op: recorded (with `backward`) when grad mode is on and any input needs a
    /// gradient; a plain constant otherwise, so inference keeps no activations.
    public static func record(_ name: String, _ value: Tensor, inputs: [Variable],
                              backward: @escaping (Tensor) -> [Tensor?]) -> Variable {
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            return Variable(value, node: Node(name: name, inputs: inputs, backward: backward))
        }
        return Variable(value)
    }

    /// Back-propagates from this variable. A scalar output gets seed 1; otherwise pass `seed`.
    /// Gradients accumulate into leaves' `grad`; interior nodes are released as soon as they are used, so the
    /// graph's saved activations are freed during the pass.
    public func backward(seed: Tensor? = nil) {
        let seed = seed ?? {
            precondition(value.count == 1, "backward() without a seed needs a scalar, got \(value.shape)")
            return Tensor(shape: value.shape, repeating: 1)
        }()
        precondition(seed.shape == value.shape, "backward seed \(seed.shape) vs value \(value.shape)")
        guard requiresGrad else { return }
        // Topological order by iterative depth-first search.
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Variable, Bool)] = [(self, false)]
        while let (v, expanded) = stack.popLast() {
            if expanded { order.append(v); continue }
            if !visited.insert(ObjectIdentifier(v)).inserted { continue }
            stack.append((v, true))
            if let node = v.node { for i in node.inputs where i.requiresGrad { stack.append((i, false)) } }
        }
        var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        for v in order.reversed() {
            guard let g = pending.removeValue(forKey: ObjectIdentifier(v)) else { continue }
            guard let node = v.node else {
                // Shared, not copied: Tensor is copy-on-write, so a later in-place update (accumulation,
                // clipping) copies only if another tensor still holds the buffer. Copying every weight gradient
                // cost a full pass over the parameters each step (1.2 GB at full size).
                if v.grad == nil { v.grad = g } else { v.grad!.addScaled(g) }
                continue
            }
            let t0 = BackwardProfiler.isEnabled ? DispatchTime.now().uptimeNanoseconds : 0
            let grads = node.backward(g)
            if BackwardProfiler.isEnabled { BackwardProfiler.add(node.name, DispatchTime.now().uptimeNanoseconds - t0) }
            precondition(grads.count == node.inputs.count, "\(node.name): backward returned \(grads.count) gradients")
            for (input, gi) in zip(node.inputs, grads) {
                guard input.requiresGrad, let gi else { continue }
                precondition(gi.shape == input.value.shape,
                             "\(node.name): gradient \(gi.shape) for input of shape \(input.value.shape)")
                let key = ObjectIdentifier(input)
                if var acc = pending.removeValue(forKey: key) { acc.addScaled(gi); pending[key] = acc }
                else { pending[key] = gi }
            }
            v.node = nil  // free saved activations as we go
        }
    }

    public var description: String { "Variable(\(value)\(requiresGrad ? ", requiresGrad" : ""))" }
}

/// Time spent in each op's backward, by op name (enable, run backward passes, read `report()`).
/// Safe to use from several threads: the switch is atomic and the totals are behind a mutex.
public enum BackwardProfiler {
    public static var isEnabled: Bool {
        get { enabled.load(ordering: .relaxed) }
        set { enabled.store(newValue, ordering: .relaxed) }
    }
    private static let enabled = Atomic<Bool>(false)
    private static let totals = Mutex<[String: (ns: UInt64, calls: Int)]>([:])

    static func add(_ name: String, _ ns: UInt64) {
        totals.withLock { t in
            t[name, default: (0, 0)].ns += ns
            t[name, default: (0, 0)].calls += 1
        }
    }

    /// (op, milliseconds, calls), slowest first; resets the totals.
    public static func report() -> [(op: String, ms: Double, calls: Int)] {
        let taken = totals.withLock { t in defer { t = [:] }; return t }
        return taken.map { ($0.key, Double($0.value.ns) / 1e6, $0.value.calls) }.sorted { $0.ms > $1.ms }
    }
}
