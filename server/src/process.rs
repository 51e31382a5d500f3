//! What the server process sets up before any thread starts.

/// The environment variable glibc reads, when a process starts, for how many malloc arenas it
/// may create.
pub const ARENA_VAR: &str = "MALLOC_ARENA_MAX";

/// The arenas the server runs with, unless its operator set [`ARENA_VAR`].
pub const ARENAS: &str = "2";

/// Restarts the process once with glibc's malloc limited to [`ARENAS`] arenas, unless
/// [`ARENA_VAR`] is already set (an operator's own value is kept). Call first in `main`,
/// before any thread starts.
///
/// The Rust side allocates with mimalloc; SQLite allocates with libc's malloc, on the thread
/// of each connection (about fifteen: the pool, the readers, the two writers). glibc gives
/// each such thread an arena of its own, up to eight per core, and every arena keeps what it
/// freed. At a million users, the benchmark's scans, sorts and root searches left the server
/// holding up to 126 MB with glibc's default and 106 MB with two arenas, at the same speed.
///
/// glibc reads the variable only as the process starts, so the process executes itself
/// again with it set: the same process (same id, same open files and arguments), whose image
/// is replaced. If that fails, the server runs on with glibc's default and says so.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn cap_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(ARENA_VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut again = std::process::Command::new(exe);
    if let Some(name) = args.next() {
        again.arg0(name);
    }
    // `exec` returns only when it failed.
    let err = again.args(args).env(ARENA_VAR, ARENAS).exec();
    eprintln!("could not start again with {ARENA_VAR}={ARENAS} ({err}); glibc's default applies");
}

/// Other platforms' allocators have no such setting.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn cap_malloc_arenas() {}
