//! What the server process sets up: its allocators before any thread starts, and threads of
//! its own for the loops that write SQLite.

/// The environment variable glibc reads, when a process starts, for how many malloc arenas it
/// may create.
pub const ARENA_VAR: &str = "MALLOC_ARENA_MAX";

/// The arenas the server runs with, unless its operator set [`ARENA_VAR`].
pub const ARENAS: &str = "2";

/// The environment variable mimalloc reads, when it starts, for how long memory it freed
/// stays with the process before it is given back to the system (milliseconds; -1: never).
pub const PURGE_VAR: &str = "MIMALLOC_PURGE_DELAY";

/// mimalloc's delay, unless its operator set [`PURGE_VAR`] (see [`tune_allocators`]).
pub const PURGE_DELAY: &str = "10000";

/// What the server sets for its two allocators, each unless its operator set it.
pub const ALLOCATOR_ENV: [(&str, &str); 2] = [(ARENA_VAR, ARENAS), (PURGE_VAR, PURGE_DELAY)];

/// Restarts the process once with [`ALLOCATOR_ENV`] set, unless each variable is already set
/// (an operator's own value is kept). Call first in `main`, before any thread starts.
///
/// - **glibc's malloc keeps [`ARENAS`] arenas.** The Rust side allocates with mimalloc; SQLite
///   allocates with libc's malloc, on the thread of each connection (about fifteen: the pool,
///   the readers, the two writers). glibc gives each such thread an arena of its own, up to
///   eight per core, and every arena keeps what it freed. At a million users, the benchmark's
///   scans, sorts and root searches left the server holding up to 126 MB with glibc's default
///   and 106 MB with two arenas, at the same speed.
/// - **mimalloc keeps what it freed** for [`PURGE_DELAY`] ms (its default: 1 s). The
///   provisioning log's entries are allocated on the request threads and freed on the log's,
///   a batch at a time; with the default the request threads kept faulting in fresh pages
///   (page faults and mimalloc's zeroing of new pages: about 3 µs of a lookup's CPU). At a
///   million users, Entra's lookup with the log on: 15,989/s and 107 µs of CPU a lookup with
///   the default, 16,837/s and 101 µs with 10 s (16,821/s with never); the log-on server held
///   76–83 MB instead of 69–74 MB.
///
/// Both allocators read the variables only as the process starts, so the process executes
/// itself again with them set: the same process (same id, same open files and arguments),
/// whose image is replaced. If that fails, the server runs on with the defaults and says so.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_allocators() {
    use std::os::unix::process::CommandExt;
    let missing: Vec<(&str, &str)> = ALLOCATOR_ENV
        .into_iter()
        .filter(|(var, _)| std::env::var_os(var).is_none())
        .collect();
    if missing.is_empty() {
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
    let err = again.args(args).envs(missing.iter().copied()).exec();
    eprintln!("could not start again with {missing:?} set ({err}); the allocators' defaults apply");
}

/// Elsewhere the process is not started again (glibc's arenas are Linux's; the server's
/// releases are built for it).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocators() {}

/// Runs `run(value, true)` on a thread of its own named `name`, with a single-threaded
/// runtime; if that thread or its runtime cannot start, says so in the log and runs
/// `run(value, false)` as a task of the current runtime instead. For the long-lived loops that
/// write SQLite: a task of the server's runtime waits for a worker that requests keep busy each
/// time its statement comes back, and makes and frees its memory on the threads that answer
/// requests.
pub fn spawn_on_own_thread<T, F, Fut>(name: &'static str, value: T, run: F)
where
    T: Send + 'static,
    F: FnOnce(T, bool) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let as_task = |(value, run): (T, F), e: std::io::Error| {
        tracing::warn!(thread = name, error = %e, "a writer's thread did not start; it runs as a task");
        tokio::spawn(run(value, false));
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return as_task((value, run), e),
    };
    // The loop crosses only once the thread runs, so a failed start leaves it here.
    let (hand_over, receive) = std::sync::mpsc::sync_channel::<(T, F)>(1);
    let started = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Ok((value, run)) = receive.recv() {
                runtime.block_on(run(value, true));
            }
        });
    if let Err(e) = started {
        return as_task((value, run), e);
    }
    if let Err(std::sync::mpsc::SendError(back)) = hand_over.send((value, run)) {
        as_task(back, std::io::Error::other("the thread ended"));
    }
}
