import Glibc

/// Starts a thread of its own whose name the system shows (`/proc/PID/task/*/comm`, `top -H`,
/// gdb): Foundation's `Thread.name` does not reach the kernel on Linux, so every
/// thread would otherwise carry the name of whichever thread started it.
package func startNamedThread(_ name: String, _ body: @escaping @Sendable () -> Void) {
    var thread = pthread_t()
    let box = Unmanaged.passRetained(ThreadBody(name: String(name.utf8.prefix(15)) ?? "herald", body: body)).toOpaque()
    let status = pthread_create(&thread, nil, { argument in
        let body = Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue()
        nameCurrentThread(body.name)
        body.body()
        return nil
    }, box)
    precondition(status == 0, "pthread_create failed (\(status)): the process is out of threads")
    pthread_detach(thread)
}

private final class ThreadBody: Sendable {
    let name: String
    let body: @Sendable () -> Void

    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

/// The kernel's name of the calling thread, through `/proc/thread-self/comm` (what
/// `pthread_setname_np` does, which Swift's Glibc module does not export).
private func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8)
    _ = write(fd, bytes, bytes.count)
    close(fd)
}
