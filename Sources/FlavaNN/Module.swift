// Modules whose parameter paths are exactly Hugging Face state-dict keys. Each key is written once, where the
// parameter or child is declared:
//
//     @Param("weight") var weight: Variable
//     @Child("intermediate.dense") var intermediate: Linear
//     @ChildList("layer") var layers: [FlavaLayer]          // keys layer.0…, layer.1…
//
// The tree is walked (by reflection, only when parameters are listed, never in forward passes) to build the
// state dict, so the Swift tree and the checkpoint tree are one and the same.
import FlavaTensor
import FlavaAutograd

/// Something a module declares under a key: a parameter, a child module, or a list of children.
public protocol ModuleSlot: AnyObject {
    /// Appends (full key, parameter) pairs below `prefix`.
    func collectParameters(prefix: String, into out: inout [(key: String, variable: Variable)])
    /// Appends (full key, module) pairs below `prefix`.
    func collectModules(prefix: String, into out: inout [(key: String, module: Module)])
    /// Extra keys that name the same tensor (tied weights), relative to the slot's own parent.
    func collectAliases(prefix: String, into out: inout [String: String])
}

/// Base class of every layer and model. Not Sendable: parameters, gradients and the training flag are mutable
/// state shared by reference; one task trains or loads a module at a time (see `FlavaEmbedder` for sharing a
/// model read-only across tasks).
open class Module {
    /// Training mode (affects the logit-scale clamp and any dropout); set for the whole tree by `train(_:)`.
    public private(set) var isTraining = false

    public init() {}

    private func slots() -> [ModuleSlot] {
        var result: [ModuleSlot] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        var chain: [Mirror] = []
        while let m = mirror { chain.append(m); mirror = m.superclassMirror }
        for m in chain.reversed() {
            for child in m.children { if let slot = child.value as? ModuleSlot { result.append(slot) } }
        }
        return result
    }

    /// Every parameter with its full key, in declaration order.
    public func namedParameters(prefix: String = "") -> [(key: String, variable: Variable)] {
        var out: [(key: String, variable: Variable)] = []
        for slot in slots() { slot.collectParameters(prefix: prefix, into: &out) }
        return out
    }

    /// Every parameter, in declaration order.
    public var parameters: [Variable] { namedParameters().map(\.variable) }

    /// This module and every descendant with its key prefix ("" for self).
    public func namedModules(prefix: String = "") -> [(key: String, module: Module)] {
        var out: [(key: String, module: Module)] = [(prefix, self)]
        for slot in slots() { slot.collectModules(prefix: prefix, into: &out) }
        return out
    }

    /// Tied-weight aliases: alias key → canonical key.
    public func parameterAliases(prefix: String = "") -> [String: String] {
        var out: [String: String] = [:]
        for slot in slots() { slot.collectAliases(prefix: prefix, into: &out) }
        return out
    }

    /// Total number of parameter elements.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Sets training mode on the whole tree.
    public func train(_ on: Bool = true) {
        for (_, m) in namedModules() { m.isTraining = on }
    }

    /// Clears every parameter's gradient.
    public func zeroGrad() { for p in parameters { p.grad = nil } }
}

@inline(__always) func join(_ prefix: String, _ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }

/// A parameter declared under its Hugging Face key. Assign it once in the module's initializer.
@propertyWrapper
public final class Param: ModuleSlot {
    public let key: String
    public let aliases: [String]
    private var variable: Variable?

    /// `aliases` name other keys under which checkpoints store the same tensor (tied weights).
    public init(_ key: String, aliases: [String] = []) { self.key = key; self.aliases = aliases }

    public var wrappedValue: Variable {
        get {
            guard let v = variable else { preconditionFailure("parameter '\(key)' used before it was assigned") }
            return v
        }
        set { variable = newValue }
    }

    public func collectParameters(prefix: String, into out: inout [(key: String, variable: Variable)]) {
        out.append((join(prefix, key), wrappedValue))
    }
    public func collectModules(prefix: String, into out: inout [(key: String, module: Module)]) {}
    public func collectAliases(prefix: String, into out: inout [String: String]) {
        for a in aliases { out[join(prefix, a)] = join(prefix, key) }
    }
}

/// A child module declared under its key (dotted keys such as "attention.output" are allowed).
@propertyWrapper
public final class Child<M: Module>: ModuleSlot {
    public let key: String
    private var module: M?

    public init(_ key: String) { self.key = key }

    public var wrappedValue: M {
        get {
            guard let m = module else { preconditionFailure("child '\(key)' used before it was assigned") }
            return m
        }
        set { module = newValue }
    }

    public func collectParameters(prefix: String, into out: inout [(key: String, variable: Variable)]) {
        out += wrappedValue.namedParameters(prefix: join(prefix, key))
    }
    public func collectModules(prefix: String, into out: inout [(key: String, module: Module)]) {
        out += wrappedValue.namedModules(prefix: join(prefix, key))
    }
    public func collectAliases(prefix: String, into out: inout [String: String]) {
        wrappedValue.parameterAliases(prefix: join(prefix, key)).forEach { out[$0.key] = $0.value }
    }
}

/// A child module that may be absent (for example an identity path that has no weights).
@propertyWrapper
public final class OptionalChild<M: Module>: ModuleSlot {
    public let key: String
    public var wrappedValue: M?

    public init(_ key: String) { self.key = key }

    public func collectParameters(prefix: String, into out: inout [(key: String, variable: Variable)]) {
        if let m = wrappedValue { out += m.namedParameters(prefix: join(prefix, key)) }
    }
    public func collectModules(prefix: String, into out: inout [(key: String, module: Module)]) {
        if let m = wrappedValue { out += m.namedModules(prefix: join(prefix, key)) }
    }
    public func collectAliases(prefix: String, into out: inout [String: String]) {
        wrappedValue?.parameterAliases(prefix: join(prefix, key)).forEach { out[$0.key] = $0.value }
    }
}

/// A list of child modules stored as key.0, key.1, … (nn.ModuleList), or with a custom numbering such as
/// `@ChildList("group.block_", first: 1, dotted: false)` for key group.block_1, group.block_2, … (the named
/// entries of an nn.Sequential).
@propertyWrapper
public final class ChildList<M: Module>: ModuleSlot {
    public let key: String
    public let first: Int
    public let dotted: Bool
    /// Index step between entries: 2 for an nn.Sequential whose modules with parameters alternate with
    /// activations (Linear, GELU, Linear, … → key.0, key.2, …).
    public let stride: Int
    public var wrappedValue: [M] = []

    public init(_ key: String, first: Int = 0, dotted: Bool = true, stride: Int = 1) {
        self.key = key; self.first = first; self.dotted = dotted; self.stride = stride
    }

    func entryKey(_ i: Int) -> String { dotted ? "\(key).\(i * stride + first)" : "\(key)\(i * stride + first)" }

    public func collectParameters(prefix: String, into out: inout [(key: String, variable: Variable)]) {
        for (i, m) in wrappedValue.enumerated() { out += m.namedParameters(prefix: join(prefix, entryKey(i))) }
    }
    public func collectModules(prefix: String, into out: inout [(key: String, module: Module)]) {
        for (i, m) in wrappedValue.enumerated() { out += m.namedModules(prefix: join(prefix, entryKey(i))) }
    }
    public func collectAliases(prefix: String, into out: inout [String: String]) {
        for (i, m) in wrappedValue.enumerated() {
            m.parameterAliases(prefix: join(prefix, entryKey(i))).forEach { out[$0.key] = $0.value }
        }
    }
}
