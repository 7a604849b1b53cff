//! What the numbers were measured on: the machine, its load, the build.

use std::process::Command;

/// The 1, 5 and 15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The first line `cmd -version`-like prints, or `?`.
fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into())
}

/// Rows of the report's machine table.
pub fn describe(load_before: &str, load_after: &str, threads: usize) -> Vec<(String, String)> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "optimised (bench profile)"
    };
    vec![
        ("nproc".into(), cpus.to_string()),
        ("CPU".into(), model),
        (
            "load average before / after".into(),
            format!("{load_before} / {load_after}"),
        ),
        ("build".into(), profile.into()),
        ("tokio worker threads".into(), threads.to_string()),
        ("librdkafka".into(), rdkafka::util::get_rdkafka_version().1),
        ("Java (Kafka)".into(), first_line("java", &["-version"])),
        ("ffmpeg".into(), first_line("ffmpeg", &["-version"])),
        (
            "date (UTC)".into(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M").to_string(),
        ),
    ]
}

/// Prints a bench's report, writes it to `target/<file>`, and prints its last
/// line after it.
#[allow(dead_code)]
pub fn publish(file: &str, report: &str, last_line: &str) {
    println!("{report}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(file);
    if let Err(e) = std::fs::write(&out, report) {
        eprintln!("could not write {}: {e}", out.display());
    }
    println!("{last_line}");
}
