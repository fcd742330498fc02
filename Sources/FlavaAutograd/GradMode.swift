// Whether ops record the graph. Thread-local, so a data-loading or serving thread in no-grad mode does not
// affect a training thread.
import Foundation

/// Grad-mode switch (`torch.no_grad` / `torch.enable_grad`).
public enum GradMode {
    private final class Box { var enabled = true }
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { if let p = $0 { Unmanaged<AnyObject>.fromOpaque(p).release() } }
        return k
    }()

    private static var box: Box {
        if let p = pthread_getspecific(key) { return Unmanaged<Box>.fromOpaque(p).takeUnretainedValue() }
        let b = Box()
        pthread_setspecific(key, Unmanaged.passRetained(b).toOpaque())
        return b
    }

    /// True when ops record their backward.
    public static var isEnabled: Bool { box.enabled }

    /// Runs `body` with recording switched to `enabled`, restoring the previous mode afterwards.
    public static func with<R>(enabled: Bool, _ body: () throws -> R) rethrows -> R {
        let b = box
        let saved = b.enabled
        b.enabled = enabled
        defer { b.enabled = saved }
        return try body()
    }
}

/// Runs `body` without recording the graph: no backward closures, no saved activations (inference).
@discardableResult
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R { try GradMode.with(enabled: false, body) }
