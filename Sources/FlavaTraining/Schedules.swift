// Learning-rate multipliers, as transformers' get_cosine_schedule_with_warmup and
// get_linear_schedule_with_warmup compute them.
import Foundation

/// A learning-rate schedule: the multiplier of the base learning rate at each optimizer step.
public enum LearningRateSchedule: Codable, Sendable, Equatable {
    /// Linear warmup from 0, then half a cosine down to 0 at `total`.
    case cosine(warmup: Int, total: Int)
    /// Linear warmup from 0, then linear decay to 0 at `total`.
    case linear(warmup: Int, total: Int)
    /// Linear warmup, then constant.
    case constant(warmup: Int)

    /// The multiplier at `step` (0-based: step 0 is the first update).
    public func multiplier(at step: Int) -> Double {
        switch self {
        case .cosine(let warmup, let total):
            if step < warmup { return Double(step) / Double(max(1, warmup)) }
            let progress = Double(step - warmup) / Double(max(1, total - warmup))
            return max(0, 0.5 * (1 + cos(Double.pi * 0.5 * 2 * progress)))
        case .linear(let warmup, let total):
            if step < warmup { return Double(step) / Double(max(1, warmup)) }
            return max(0, Double(total - step) / Double(max(1, total - warmup)))
        case .constant(let warmup):
            return step < warmup ? Double(step) / Double(max(1, warmup)) : 1
        }
    }
}
