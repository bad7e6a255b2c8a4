import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Adds "close every descriptor from 3 up" to a `posix_spawn` action list, so the child inherits nothing of the test
/// process but its standard streams. Without it a child keeps copies of an in-process gateway's sockets (they are
/// not close-on-exec), and a connection the gateway closes stays open for its client as long as the child lives:
/// a long-lived server (postgres, aiosmtpd) kept such connections open for the whole run.
///
/// glibc (2.34 and later) has `posix_spawn_file_actions_addclosefrom_np`; Swift's Glibc module does not export it,
/// so it is looked up at run time.
public func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
        preconditionFailure("glibc 2.34 or later is needed (posix_spawn_file_actions_addclosefrom_np)")
    }
    let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
    precondition(closeFrom(&actions, 3) == 0, "posix_spawn_file_actions_addclosefrom_np failed")
}

/// Starts a `posix_spawn` child with no signal blocked and SIGTERM, SIGINT, SIGHUP and SIGPIPE at their defaults.
/// A child inherits the signal mask of the thread that spawns it, and the test process's threads (NIO's, the
/// concurrency pool's) may block signals: an aiosmtpd spawned from one could not see SIGTERM, and outlived the
/// test run whenever the run ended before its reaper's SIGKILL.
public func resetSignals(_ attributes: inout posix_spawnattr_t) {
    var unblocked = sigset_t()
    sigemptyset(&unblocked)
    posix_spawnattr_setsigmask(&attributes, &unblocked)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
}
