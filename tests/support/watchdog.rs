//! A deadline for each test that starts a stack: a test still running after
//! it (hung in its body, or in the runtime's drop waiting on blocking work)
//! gets every thread's backtrace printed and the test binary aborted, so a
//! hang fails with its place named instead of running into CI's time limit.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seconds a test may run after its first stack starts
/// (`SPROCKET_TEST_DEADLINE_S`; the longest test takes a few minutes).
const DEFAULT_DEADLINE_S: u64 = 900;

/// Marks its test finished when the test's thread ends (after the runtime
/// of `#[tokio::test]` was dropped) or when another test takes the thread.
struct Finished(Arc<AtomicBool>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<(String, Finished)>> = const { RefCell::new(None) };
}

/// Starts the deadline for the test running on this thread (once per test).
pub fn arm() {
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned();
    let armed = CURRENT.with(|c| matches!(&*c.borrow(), Some((t, _)) if *t == test));
    if armed {
        return;
    }
    let deadline = std::env::var("SPROCKET_TEST_DEADLINE_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_DEADLINE_S);
    let done = Arc::new(AtomicBool::new(false));
    // Replacing the previous test's marker (same thread, test-threads=1)
    // marks that one finished.
    CURRENT.with(|c| *c.borrow_mut() = Some((test.clone(), Finished(done.clone()))));
    let started = Instant::now();
    std::thread::Builder::new()
        .name(format!("watchdog {test}"))
        .spawn(move || {
            let until = started + Duration::from_secs(deadline);
            while Instant::now() < until {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            if !done.load(Ordering::SeqCst) {
                fire(&test, deadline);
            }
        })
        .expect("watchdog thread");
}

/// Prints where every thread is (gdb, when installed) and aborts: nothing
/// else can end a test that is blocked.
fn fire(test: &str, deadline: u64) -> ! {
    // Straight to the process's stderr: the test harness captures only
    // print macros, and what it captured is lost on abort.
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "\nWATCHDOG: test {test} still running after {deadline} s; thread backtraces follow, \
         then the test binary aborts"
    );
    let _ = err.flush();
    let pid = std::process::id().to_string();
    // gdb writes straight to this process's stderr: not through a pipe this
    // process reads, as every thread here (the reader too) is stopped while
    // gdb is attached, and a full pipe would stop gdb as well.
    let gdb = std::process::Command::new("gdb")
        .args(["-p", &pid, "-batch", "-nx", "-ex", "thread apply all bt 30"])
        .stdin(std::process::Stdio::null())
        .stdout(std::io::stderr())
        .stderr(std::io::stderr())
        .status();
    if let Err(e) = gdb {
        let _ = writeln!(err, "WATCHDOG: no backtraces (gdb: {e})");
    }
    let _ = writeln!(err, "WATCHDOG: aborting after test {test} hung");
    std::process::abort()
}
