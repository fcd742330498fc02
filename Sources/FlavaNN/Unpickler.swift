// A restricted unpickler for PyTorch state dicts. It understands only what torch.save writes for a dict of
// tensors (dicts, OrderedDict, lists, tuples, strings, numbers, persistent storage references and the tensor
// rebuild functions) and refuses every other global with an error. It never runs code.

/// A reference to a tensor inside a torch checkpoint, as rebuilt by `torch._utils._rebuild_tensor_v2`.
struct TorchTensorRef {
    let storageKey: String
    let dtype: DType
    let storageOffset: Int
    let shape: [Int]
    let stride: [Int]
}

/// The pickle values a state dict can contain.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(ListBox)
    case dict(DictBox)
    case global(String, String)
    case storage(key: String, dtype: DType)
    case tensor(TorchTensorRef)
    case mark

    final class ListBox { var items: [PickleValue] = [] }
    final class DictBox { var keys: [String] = []; var values: [String: PickleValue] = [:]
        func set(_ k: PickleValue, _ v: PickleValue) throws {
            guard case .string(let s) = k else { throw PickleError("dictionary key is not a string") }
            if values[s] == nil { keys.append(s) }
            values[s] = v
        }
    }
}

struct PickleError: Error { let message: String; init(_ m: String) { message = m } }

/// Restricted unpickler (protocols 2–5 opcodes used for plain data).
struct Unpickler {
    private let data: UnsafeRawBufferPointer
    private var pos = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    /// Classes allowed in BINPERSID storage references and their element types.
    static let storageTypes: [String: DType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8, "ByteStorage": .u8,
        "BoolStorage": .bool,
    ]

    init(_ data: UnsafeRawBufferPointer) { self.data = data }

    private mutating func byte() throws -> UInt8 {
        guard pos < data.count else { throw PickleError("pickle ends early") }
        defer { pos += 1 }
        return data[pos]
    }
    private mutating func bytes(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, pos + n <= data.count else { throw PickleError("pickle ends early") }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: data[pos..<(pos + n)])
    }
    private mutating func uint(_ n: Int) throws -> Int {
        let b = try bytes(n)
        var v: UInt64 = 0
        for i in (0..<n).reversed() { v = v << 8 | UInt64(b[i]) }
        return Int(truncatingIfNeeded: v)
    }
    private mutating func line() throws -> String {
        var s: [UInt8] = []
        while true { let c = try byte(); if c == 0x0a { break }; s.append(c) }
        return String(decoding: s, as: UTF8.self)
    }
    private mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw PickleError("pickle stack underflow") }
        return v
    }
    private mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast(), m <= stack.count else { throw PickleError("pickle mark missing") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    mutating func load() throws -> PickleValue {
        while true {
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                   // PROTO
            case 0x95: _ = try bytes(8)                                 // FRAME
            case 0x2e: return try pop()                                 // STOP
            case 0x28: marks.append(stack.count)                        // MARK
            case 0x7d: stack.append(.dict(.init()))                     // EMPTY_DICT
            case 0x5d: stack.append(.list(.init()))                     // EMPTY_LIST
            case 0x29: stack.append(.tuple([]))                         // EMPTY_TUPLE
            case 0x4e: stack.append(.none)                              // NONE
            case 0x88: stack.append(.bool(true))                        // NEWTRUE
            case 0x89: stack.append(.bool(false))                       // NEWFALSE
            case 0x4b: stack.append(.int(try uint(1)))                  // BININT1
            case 0x4d: stack.append(.int(try uint(2)))                  // BININT2
            case 0x4a: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))   // BININT
            case 0x8a, 0x8b:                                            // LONG1, LONG4
                let n = op == 0x8a ? Int(try byte()) : try uint(4)
                guard n <= 8 else { throw PickleError("integer too large") }
                let b = try bytes(n)
                var v: Int64 = 0
                for i in (0..<n).reversed() { v = v << 8 | Int64(b[i]) }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 { v -= Int64(1) << (8 * n) }
                stack.append(.int(Int(v)))
            case 0x47:                                                  // BINFLOAT (big-endian)
                let b = try bytes(8)
                var v: UInt64 = 0
                for i in 0..<8 { v = v << 8 | UInt64(b[i]) }
                stack.append(.float(Double(bitPattern: v)))
            case 0x58, 0x8c, 0x8d, 0x54, 0x55:                          // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINSTRING, SHORT_BINSTRING
                let n = (op == 0x8c || op == 0x55) ? Int(try byte()) : (op == 0x8d ? try uint(8) : try uint(4))
                stack.append(.string(String(decoding: try bytes(n), as: UTF8.self)))
            case 0x43, 0x42:                                            // SHORT_BINBYTES, BINBYTES
                let n = op == 0x43 ? Int(try byte()) : try uint(4)
                stack.append(.bytes(Array(try bytes(n))))
            case 0x71: memo[Int(try byte())] = stack.last               // BINPUT
            case 0x72: memo[try uint(4)] = stack.last                   // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                    // MEMOIZE
            case 0x68, 0x6a:                                            // BINGET, LONG_BINGET
                let k = op == 0x68 ? Int(try byte()) : try uint(4)
                guard let v = memo[k] else { throw PickleError("pickle memo entry \(k) missing") }
                stack.append(v)
            case 0x74: stack.append(.tuple(try popMark()))              // TUPLE
            case 0x85: stack.append(.tuple([try pop()]))                // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c]))
            case 0x63:                                                  // GLOBAL
                let module = try line(), name = try line()
                stack.append(try Unpickler.allowGlobal(module, name))
            case 0x93:                                                  // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                    throw PickleError("STACK_GLOBAL needs two strings")
                }
                stack.append(try Unpickler.allowGlobal(module, name))
            case 0x51:                                                  // BINPERSID
                stack.append(try Unpickler.persistentLoad(try pop()))
            case 0x52:                                                  // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try Unpickler.reduce(callable, args))
            case 0x62:                                                  // BUILD: state of dicts/tensors is not needed
                _ = try pop()
            case 0x73:                                                  // SETITEM
                let v = try pop(), k = try pop()
                guard case .dict(let d) = stack.last else { throw PickleError("SETITEM on a non-dict") }
                try d.set(k, v)
            case 0x75:                                                  // SETITEMS
                let items = try popMark()
                guard case .dict(let d) = stack.last, items.count % 2 == 0 else { throw PickleError("SETITEMS on a non-dict") }
                for i in stride(from: 0, to: items.count, by: 2) { try d.set(items[i], items[i + 1]) }
            case 0x61:                                                  // APPEND
                let v = try pop()
                guard case .list(let l) = stack.last else { throw PickleError("APPEND on a non-list") }
                l.items.append(v)
            case 0x65:                                                  // APPENDS
                let items = try popMark()
                guard case .list(let l) = stack.last else { throw PickleError("APPENDS on a non-list") }
                l.items += items
            default:
                throw PickleError(String(format: "unsupported pickle opcode 0x%02x (not a plain state dict)", op))
            }
        }
    }

    static func allowGlobal(_ module: String, _ name: String) throws -> PickleValue {
        switch (module, name) {
        case ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
             ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"),
             ("torch", _) where storageTypes[name] != nil:
            return .global(module, name)
        default:
            throw PickleError("refusing to load global \(module).\(name): only tensors and dictionaries are allowed")
        }
    }

    static func persistentLoad(_ pid: PickleValue) throws -> PickleValue {
        guard case .tuple(let t) = pid, t.count >= 5, case .string("storage") = t[0],
              case .global(_, let typeName) = t[1], case .string(let key) = t[2],
              let dtype = storageTypes[typeName] else {
            throw PickleError("unsupported persistent id (expected a torch storage reference)")
        }
        return .storage(key: key, dtype: dtype)
    }

    static func ints(_ v: PickleValue) throws -> [Int] {
        guard case .tuple(let t) = v else { throw PickleError("expected a tuple of integers") }
        return try t.map { guard case .int(let i) = $0 else { throw PickleError("expected an integer") }; return i }
    }

    static func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
        guard case .global(let module, let name) = callable, case .tuple(let a) = args else {
            throw PickleError("REDUCE of something that is not an allowed function")
        }
        switch (module, name) {
        case ("collections", "OrderedDict"):
            return .dict(.init())
        case ("torch._utils", "_rebuild_tensor_v2"):
            guard a.count >= 4, case .storage(let key, let dtype) = a[0], case .int(let offset) = a[1] else {
                throw PickleError("malformed _rebuild_tensor_v2 arguments")
            }
            let shape = try ints(a[2]), stride = try ints(a[3])
            guard shape.count == stride.count, shape.allSatisfy({ $0 >= 0 }), offset >= 0 else {
                throw PickleError("malformed tensor size/stride")
            }
            return .tensor(TorchTensorRef(storageKey: key, dtype: dtype, storageOffset: offset, shape: shape, stride: stride))
        case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
            guard let first = a.first, case .tensor = first else { throw PickleError("malformed _rebuild_parameter") }
            return first
        default:
            throw PickleError("refusing to call \(module).\(name)")
        }
    }
}
