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
    // gdb writes to a file, not through a pipe this process reads: every
    // thread here (the reader too) is stopped while gdb is attached, and a
    // full pipe would stop gdb as well.
    let dump = std::env::temp_dir().join(format!("sprocket-watchdog-{pid}.txt"));
    let gdb = std::fs::File::create(&dump).and_then(|out| {
        std::process::Command::new("gdb")
            .args(["-p", &pid, "-batch", "-nx", "-ex", "thread apply all bt 40"])
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .status()
    });
    match gdb.and_then(|_| std::fs::read_to_string(&dump)) {
        Ok(text) => {
            // Everything first, then (where a cut log's tail is read) only
            // the threads that stand in the project's own code.
            let _ = err.write_all(text.as_bytes());
            let _ = writeln!(
                err,
                "\nWATCHDOG: the threads in Sprocket's code:\n{}",
                in_our_code(&text)
            );
        }
        Err(e) => {
            let _ = writeln!(err, "WATCHDOG: no backtraces (gdb: {e})");
        }
    }
    let _ = writeln!(err, "WATCHDOG: aborting after test {test} hung");
    let _ = err.flush();
    std::process::abort()
}

/// The threads of a gdb dump with a frame in the project's code, each with
/// only those frames: where each of them is waiting, in a few lines.
fn in_our_code(dump: &str) -> String {
    let ours = |frame: &str| {
        ["sprocket", "/engine/", "/workers/", "/tests/"]
            .iter()
            .any(|m| frame.contains(m))
    };
    let mut out = String::new();
    for thread in dump.split("\nThread ").skip(1) {
        let mut lines = thread.lines();
        let head = lines.next().unwrap_or_default();
        let frames: Vec<&str> = lines.filter(|l| l.starts_with('#') && ours(l)).collect();
        if frames.is_empty() {
            continue;
        }
        out.push_str(&format!("Thread {head}\n"));
        for f in frames.iter().take(12) {
            // The frame number and function, without the long argument lists.
            let short: String = f.chars().take(220).collect();
            out.push_str(&format!("  {short}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_threads_in_our_code_are_kept() {
        let dump = "\nThread 2 (LWP 7) \"tokio\"):\n#0  syscall ()\n#1  sprocket_server::dev::Dev::stop () at engine/server/src/dev.rs:260\n\nThread 1 (LWP 6) \"main\"):\n#0  syscall ()\n#1  test::run_tests ()\n";
        let kept = super::in_our_code(dump);
        assert!(kept.contains("Dev::stop"), "{kept}");
        assert!(kept.contains("Thread 2"), "{kept}");
        assert!(!kept.contains("Thread 1"), "{kept}");
    }
}
