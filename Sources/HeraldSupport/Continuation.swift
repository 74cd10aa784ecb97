/// The continuation of the waits on a delivery's path (`OneShot`, `Batcher`, a transfer, a
/// held copy, a slot): checked in debug builds, which the tests run, where a second resume
/// traps and a lost one is reported; unchecked in release builds, where each checked one
/// cost an allocation and two lookups of its generic type in the runtime, about 5,000
/// instructions per delivery (docs/PERFORMANCE.md). Each use resumes from a state machine
/// that hands the continuation out once.
#if DEBUG
@usableFromInline package typealias Continuation<T, E: Error> = CheckedContinuation<T, E>
#else
@usableFromInline package typealias Continuation<T, E: Error> = UnsafeContinuation<T, E>
#endif

/// Suspends until `body`'s continuation is resumed, as `withCheckedThrowingContinuation`;
/// a debug build's report of a misused continuation names `function`.
@inlinable
package func withThrowingContinuation<T>(
    function: String = #function, _ body: (Continuation<T, any Error>) -> Void
) async throws -> T {
    #if DEBUG
    try await withCheckedThrowingContinuation(function: function, body)
    #else
    try await withUnsafeThrowingContinuation(body)
    #endif
}

/// Suspends until `body`'s continuation is resumed, as `withCheckedContinuation`; a debug
/// build's report of a misused continuation names `function`.
@inlinable
package func withContinuation<T>(function: String = #function, _ body: (Continuation<T, Never>) -> Void) async -> T {
    #if DEBUG
    await withCheckedContinuation(function: function, body)
    #else
    await withUnsafeContinuation(body)
    #endif
}
