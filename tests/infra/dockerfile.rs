//! The `Dockerfile` builds for linux/amd64 and linux/arm64 with buildx: a
//! builder stage on the build machine's platform that cross-compiles for
//! `$TARGETARCH` (a Rust target for each of amd64 and arm64, `cargo build
//! --target`), a runtime stage left to the target platform, nothing named for
//! one architecture outside the amd64 mapping, and model weights that are
//! the same wheel for every platform.

use crate::root;

/// Docker's architectures and the Rust targets the builder maps them to.
const ARCHES: [(&str, &str); 2] = [
    ("amd64", "x86_64-unknown-linux-gnu"),
    ("arm64", "aarch64-unknown-linux-gnu"),
];
/// Words that name amd64 alone.
const AMD64_ONLY: [&str; 4] = ["amd64", "x86_64", "x86-64", "x64"];

/// One build stage: its `FROM` line and its instructions (continuations
/// joined, comments dropped).
struct Stage {
    from: String,
    body: Vec<String>,
}

fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

fn stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for i in instructions(text) {
        if i.starts_with("FROM ") {
            stages.push(Stage {
                from: i,
                body: Vec::new(),
            });
        } else if let Some(s) = stages.last_mut() {
            s.body.push(i);
        }
    }
    stages
}

/// The arm of a shell `case` for `arch`: from `arch)` to its `;;`.
fn case_arm<'a>(text: &'a str, arch: &str) -> Option<&'a str> {
    let start = text.find(&format!("{arch})"))?;
    let rest = &text[start..];
    Some(&rest[..rest.find(";;").unwrap_or(rest.len())])
}

/// Every way `dockerfile` (with `fetch_sh`, the models script it runs) fails
/// to build both platforms.
fn problems(dockerfile: &str, fetch_sh: &str) -> Vec<String> {
    let mut p = Vec::new();
    let stages = stages(dockerfile);
    let Some(builder) = stages.iter().find(|s| s.from.ends_with(" AS builder")) else {
        return vec!["no builder stage (FROM … AS builder)".into()];
    };
    if !(builder.from.contains("--platform=$BUILDPLATFORM")
        || builder.from.contains("--platform=${BUILDPLATFORM}"))
    {
        p.push(
            "builder: not FROM --platform=$BUILDPLATFORM (rustc would run under emulation)".into(),
        );
    }
    let body = builder.body.join("\n");
    if !builder.body.iter().any(|i| i == "ARG TARGETARCH") {
        p.push("builder: no ARG TARGETARCH".into());
    }
    for (arch, triple) in ARCHES {
        if !case_arm(&body, arch).is_some_and(|arm| arm.contains(triple)) {
            p.push(format!("builder: no Rust target {triple} for {arch}"));
        }
    }
    match builder.body.iter().find(|i| i.contains("cargo build")) {
        None => p.push("builder: no cargo build".into()),
        Some(build) => {
            if !build.contains("--target ") {
                p.push(
                    "builder: cargo build without --target (it builds for the build machine)"
                        .into(),
                );
            }
            if build
                .match_indices("target/release/")
                .any(|(i, _)| !build[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
            {
                p.push("builder: installs target/release/, the build machine's binary".into());
            }
        }
    }
    if !body.contains("models/fetch.sh --weights-only") {
        p.push("builder: does not run models/fetch.sh --weights-only".into());
    }
    match stages.last() {
        Some(runtime) if runtime.from.contains("--platform") => p.push(format!(
            "runtime: {:?} pins a platform; it must be the target's",
            runtime.from
        )),
        _ => {}
    }
    for (n, line) in dockerfile.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('#') || t.starts_with("amd64)") {
            continue;
        }
        for word in AMD64_ONLY {
            if t.contains(word) {
                p.push(format!("Dockerfile:{}: names {word} only: {t}", n + 1));
            }
        }
    }
    p.extend(weights_wheel_problems(fetch_sh));
    p
}

/// `models/fetch.sh --weights-only` fetches only wheels for every platform
/// (`-none-any.whl`) and passes no `--platform` to pip.
fn weights_wheel_problems(fetch_sh: &str) -> Vec<String> {
    let mut p = Vec::new();
    let Some(end) = fetch_sh.find("\"--weights-only\" ]") else {
        return vec!["models/fetch.sh: no --weights-only".into()];
    };
    let before = &fetch_sh[..end];
    let value = |var: &str| {
        fetch_sh
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{var}=")))
            .map(|v| v.trim_matches('"').to_owned())
    };
    let mut wheels = 0;
    for call in before.lines().filter(|l| l.contains("$(fetch_wheel ")) {
        wheels += 1;
        // fetch_wheel "SPEC" "$FILE" "$SHA256" …: the second quoted argument.
        let file_var = call
            .split('"')
            .nth(3)
            .filter(|v| v.starts_with('$'))
            .map(|v| {
                v.trim_start_matches('$')
                    .trim_matches(['{', '}'])
                    .to_owned()
            });
        match file_var.and_then(|v| value(&v).map(|f| (v, f))) {
            Some((_, file)) if file.ends_with("-none-any.whl") => {}
            Some((var, file)) => p.push(format!(
                "models/fetch.sh --weights-only fetches {var}={file}, a platform's wheel"
            )),
            None => p.push(format!(
                "models/fetch.sh: cannot tell which wheel {call:?} fetches"
            )),
        }
        if call.contains("--platform") {
            p.push(format!(
                "models/fetch.sh --weights-only asks pip for a platform: {call:?}"
            ));
        }
    }
    if wheels == 0 {
        p.push("models/fetch.sh --weights-only fetches no wheel".into());
    }
    p
}

fn committed() -> (String, String) {
    let read = |f: &str| std::fs::read_to_string(root().join(f)).unwrap();
    (read("Dockerfile"), read("models/fetch.sh"))
}

#[test]
fn the_dockerfile_builds_for_amd64_and_arm64() {
    let (d, f) = committed();
    let p = problems(&d, &f);
    assert!(p.is_empty(), "{}", p.join("\n"));
}

#[test]
fn broken_dockerfiles_are_caught() {
    let (d, f) = committed();
    let caught = |d: &str, f: &str, needle: &str| {
        let p = problems(d, f);
        assert!(p.iter().any(|x| x.contains(needle)), "{needle}: {p:?}");
    };
    caught(
        &d.replace("FROM --platform=$BUILDPLATFORM ", "FROM "),
        &f,
        "builder: not FROM --platform=$BUILDPLATFORM",
    );
    caught(&d.replace("ARG TARGETARCH\n", ""), &f, "no ARG TARGETARCH");
    caught(
        &d.replace("arm64) echo \"aarch64-unknown-linux-gnu", "arm64) echo \"x"),
        &f,
        "no Rust target aarch64-unknown-linux-gnu for arm64",
    );
    caught(
        &d.replace("--target \"$rust_target\" ", ""),
        &f,
        "cargo build without --target",
    );
    caught(
        &d.replace("FROM debian:", "FROM --platform=linux/amd64 debian:"),
        &f,
        "runtime: \"FROM --platform=linux/amd64",
    );
    caught(
        &d.replace(
            "FROM debian:${DEBIAN_RELEASE}-slim AS runtime\n",
            "FROM debian:${DEBIAN_RELEASE}-slim AS runtime\n\
             RUN curl -fsSL https://example.com/ffmpeg-release-amd64-static.tar.xz | tar xJ\n",
        ),
        &f,
        "names amd64 only: RUN curl",
    );
    caught(
        &d.replace(
            "\"target/$rust_target/release/sprocket\"",
            "target/release/sprocket",
        ),
        &f,
        "installs target/release/",
    );
    caught(
        &d.replace("fetch.sh --weights-only", "fetch.sh"),
        &f,
        "does not run models/fetch.sh --weights-only",
    );
    caught(
        &d,
        &f.replace(
            "FACENET_WHEEL=facenet_pytorch-2.6.0-py3-none-any.whl",
            "FACENET_WHEEL=facenet_pytorch-2.6.0-cp311-manylinux_2_28_x86_64.whl",
        ),
        "fetches FACENET_WHEEL=facenet_pytorch-2.6.0-cp311-manylinux_2_28_x86_64.whl",
    );
}
