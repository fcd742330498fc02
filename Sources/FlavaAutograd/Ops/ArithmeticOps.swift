// Elementwise add, subtract, multiply (with broadcasting) and scaling.
import FlavaTensor

extension Variable {
    /// a + b with broadcasting.
    public static func + (a: Variable, b: Variable) -> Variable {
        let (sa, sb) = (a.shape, b.shape)
        return record("add", a.value + b.value, inputs: [a, b]) { g in
            [a.requiresGrad ? g.sumToShape(sa) : nil, b.requiresGrad ? g.sumToShape(sb) : nil]
        }
    }

    /// a − b with broadcasting.
    public static func - (a: Variable, b: Variable) -> Variable {
        let (sa, sb) = (a.shape, b.shape)
        return record("sub", a.value - b.value, inputs: [a, b]) { g in
            [a.requiresGrad ? g.sumToShape(sa) : nil, b.requiresGrad ? (g * Float(-1)).sumToShape(sb) : nil]
        }
    }

    /// a ⊙ b with broadcasting.
    public static func * (a: Variable, b: Variable) -> Variable {
        let (av, bv) = (a.value, b.value)
        return record("mul", av * bv, inputs: [a, b]) { g in
            [a.requiresGrad ? (g * bv).sumToShape(av.shape) : nil,
             b.requiresGrad ? (g * av).sumToShape(bv.shape) : nil]
        }
    }

    /// s·a.
    public static func * (a: Variable, s: Float) -> Variable {
        record("scale", a.value * s, inputs: [a]) { g in [g * s] }
    }

    /// s·a.
    public static func * (s: Float, a: Variable) -> Variable { a * s }

    /// a + s.
    public static func + (a: Variable, s: Float) -> Variable {
        record("addScalar", a.value.map { $0 + s }, inputs: [a]) { g in [g] }
    }

    /// −a.
    public static prefix func - (a: Variable) -> Variable { a * Float(-1) }
}
