//! This process's dumpable flag, which decides who owns its `/proc/self` files.

/// Runs `f` with this process dumpable, as it was before Unit changed its user.
///
/// A process whose credentials changed is not dumpable, which makes its
/// `/proc/self` files root's: the engine could not open `/proc/self/pagemap`,
/// which lets it reset an instance's memory by touching only the pages the
/// guest wrote. The descriptor, once open, stays usable; the flag is restored
/// right after.
pub fn while_dumpable<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: PR_GET_DUMPABLE reads a flag of this process; no memory is passed.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
    if dumpable == 0 {
        // SAFETY: sets a flag of this process; no memory is passed.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1) };
    }
    let result = f();
    if dumpable == 0 {
        // SAFETY: as above, restoring the flag Unit left.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
    }
    result
}
