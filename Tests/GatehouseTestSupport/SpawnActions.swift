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
