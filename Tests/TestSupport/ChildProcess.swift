import Dispatch
public import Foundation

extension Process {
    /// Runs the process to its end and returns its status and its output (standard output
    /// and error together). The waiting happens on a Dispatch thread, never on one of the
    /// few cooperative threads: a test blocking them would starve an in-process server
    /// the child talks to.
    public func runToCompletion() async throws -> (status: Int32, output: String) {
        let pipe = Pipe()
        standardOutput = pipe
        standardError = pipe
        try run()
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                self.waitUntilExit()
                continuation.resume(returning: (self.terminationStatus, String(decoding: data, as: UTF8.self)))
            }
        }
    }
}
