import Testing
import HeraldSupport

@Suite("OneShot")
struct OneShotTests {
    @Test func theAnswerIsTakenOnce() async throws {
        let shot = OneShot<Int>()
        let value = try await shot.wait { #expect(shot.resume(returning: 7)) }
        #expect(value == 7)
        #expect(!shot.resume(returning: 8))
        #expect(!shot.resume(throwing: CancellationError()))
    }

    /// The answering side may see the request (a pool's waiter list) before the waiter
    /// suspends: an answer given then is kept for the wait, not lost.
    @Test func anAnswerGivenBeforeTheWaitIsKept() async throws {
        let shot = OneShot<Int>()
        #expect(shot.resume(returning: 5))
        #expect(!shot.resume(returning: 6))
        #expect(try await shot.wait {} == 5)
    }

    @Test func cancellationEndsTheWaitAndTheLateAnswerIsRefused() async throws {
        let shot = OneShot<Int>()
        let started = OneShot<Void>()
        let waiting = Task { try await shot.wait { started.resume(returning: ()) } }
        try await started.wait {}
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        // The answering side learns that nobody took it, and can hand it to someone else.
        #expect(!shot.resume(returning: 1))
    }

    @Test func aTaskCancelledBeforeWaitingNeverStartsItsRequest() async throws {
        let shot = OneShot<Int>()
        let gate = OneShot<Void>()
        let waiting = Task {
            try? await gate.wait {}
            var started = false
            do {
                _ = try await shot.wait { started = true }
            } catch {
                #expect(error is CancellationError)
            }
            return started
        }
        waiting.cancel()
        gate.resume(returning: ())
        #expect(await waiting.value == false)
    }
}
