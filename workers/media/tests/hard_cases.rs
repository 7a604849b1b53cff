//! Where a fixed content rule errs, on videos made with ffmpeg with known
//! truth: flash frames, a fast camera pan, and cuts between two framings of
//! the same scene. Each is run through Sprocket's default detector, both of
//! Sprocket's plain PySceneDetect rules, and PySceneDetect itself (content
//! at threshold 27 and its default `merge` filter, adaptive at its defaults),
//! and the false and missed cuts (±1 frame) are printed as a table.
//!
//! Asserted: Sprocket's default makes no more errors than either
//! PySceneDetect detector on every case and strictly fewer than both on
//! flashes; and it gets every case right. The PySceneDetect part needs
//! `.venv` (made by `bash .ci/setup`) and fails without it unless
//! `SPROCKET_SKIP_REFERENCE=1`, which leaves the check against the truth.

mod reference;

use reference::{errors, lavfi, make_video, pyscenedetect, reference_python, sprocket};
use serde_json::json;
use std::path::PathBuf;

/// A made video and its true cuts.
struct Case {
    name: &'static str,
    video: PathBuf,
    truth: Vec<u64>,
}

/// Results of one detector on one case.
struct Row {
    detector: &'static str,
    cuts: Vec<u64>,
    false_cuts: usize,
    missed: usize,
}

/// Runs every detector on `case`, prints the table, and returns the rows
/// (Sprocket's default first; PySceneDetect's last when it is installed).
fn measure(case: &Case) -> Vec<Row> {
    let mut runs: Vec<(&'static str, Vec<u64>)> = vec![
        ("sprocket default", sprocket(&case.video, json!({}))),
        (
            "sprocket content",
            sprocket(&case.video, json!({"detector": "content"})),
        ),
        (
            "sprocket adaptive (no flash filter)",
            sprocket(
                &case.video,
                json!({"detector": "adaptive", "flash_frames": 0}),
            ),
        ),
    ];
    if let Some(python) = reference_python(case.name) {
        runs.push((
            "pyscenedetect content",
            pyscenedetect(&python, &case.video, &["content"]),
        ));
        runs.push((
            "pyscenedetect adaptive",
            pyscenedetect(&python, &case.video, &["adaptive"]),
        ));
    }
    let rows: Vec<Row> = runs
        .into_iter()
        .map(|(detector, cuts)| {
            let (false_cuts, missed) = errors(&cuts, &case.truth, 1);
            Row {
                detector,
                cuts,
                false_cuts,
                missed,
            }
        })
        .collect();
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {:?} (truth {:?})",
            case.name, row.detector, row.false_cuts, row.missed, row.cuts, case.truth
        );
    }
    rows
}

/// Sprocket's default gets `case` right, and no PySceneDetect detector makes
/// fewer errors (with `strictly`, each makes more).
fn assert_default_wins(case: &Case, strictly: bool) {
    let rows = measure(case);
    let ours = &rows[0];
    assert!(
        (ours.false_cuts, ours.missed) == (0, 0),
        "{}: Sprocket's default found {:?}, truth {:?}",
        case.name,
        ours.cuts,
        case.truth
    );
    for theirs in rows
        .iter()
        .filter(|r| r.detector.starts_with("pyscenedetect"))
    {
        let (a, b) = (
            ours.false_cuts + ours.missed,
            theirs.false_cuts + theirs.missed,
        );
        assert!(a <= b, "{}: {} beats Sprocket", case.name, theirs.detector);
        if strictly {
            assert!(
                a < b,
                "{}: {} is as good as Sprocket",
                case.name,
                theirs.detector
            );
        }
    }
}

/// A steady shot with flashes: one frame of full white (frame 40), two
/// frames of strong brightening (80–81), one frame of white again (130);
/// then a real cut at 160.
fn flashes(dir: &std::path::Path) -> Case {
    let inputs = [lavfi("testsrc2", "320x180"), lavfi("smptebars", "320x180")];
    let graph = "[0:v]trim=end_frame=160,setpts=PTS-STARTPTS,\
        drawbox=c=white:t=fill:enable='eq(n,40)+eq(n,130)',\
        eq=brightness=0.6:enable='between(n,80,81)',format=yuv420p[a];\
        [1:v]trim=end_frame=40,setpts=PTS-STARTPTS,format=yuv420p[b];\
        [a][b]concat=n=2:v=1:a=0[out]";
    Case {
        name: "flashes",
        video: make_video(dir, "flashes.mp4", &inputs, graph),
        truth: vec![160],
    }
}

/// A fast pan (16 px a frame, the frame's width in 20 frames) across a
/// detailed pattern (a cellular automaton in 4-pixel cells, 3200 wide, from
/// the random first row that `seed` makes) for `pan` frames, held still for
/// `hold` frames, then a real cut.
fn pan(dir: &std::path::Path, name: &'static str, pan: u32, hold: u32, seed: u32) -> Case {
    let inputs = [
        lavfi(&format!("cellauto=rule=30:seed={seed}"), "800x45"),
        lavfi("smptebars", "320x180"),
    ];
    let graph = format!(
        "[0:v]trim=end_frame=1,loop=loop={total}:size=1,setpts=N/{fps}/TB,\
        scale=3200:180:flags=neighbor,crop=w=320:h=180:x='min(n,{pan})*16':y=0,\
        trim=end_frame={total},format=yuv420p[a];\
        [1:v]trim=end_frame=40,setpts=PTS-STARTPTS,format=yuv420p[b];\
        [a][b]concat=n=2:v=1:a=0[out]",
        total = pan + hold,
        fps = reference::FPS,
    );
    Case {
        name,
        video: make_video(dir, &format!("{name}-{seed}.mp4"), &inputs, &graph),
        truth: vec![u64::from(pan + hold)],
    }
}

/// One scene (a 640x360 test pattern) shown as a wide shot (scaled to
/// 320x180) and a 2× close-up (the centre 320x180 crop), switching at 40,
/// 80 and 120.
fn framings(dir: &std::path::Path) -> Case {
    let inputs = [lavfi("testsrc2", "640x360")];
    let graph = "[0:v]trim=end_frame=160,setpts=PTS-STARTPTS,split[w][z];\
        [w]scale=320:180:flags=area[wide];[z]crop=320:180:160:90[close];\
        [wide][close]overlay=enable='between(n,40,79)+between(n,120,159)',\
        format=yuv420p[out]";
    Case {
        name: "framings",
        video: make_video(dir, "framings.mp4", &inputs, graph),
        truth: vec![40, 80, 120],
    }
}

#[test]
fn flash_frames_are_not_cuts() {
    let dir = tempfile::tempdir().unwrap();
    assert_default_wins(&flashes(dir.path()), true);
}

#[test]
fn a_fast_pan_is_not_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    assert_default_wins(&pan(dir.path(), "pan", 80, 20, 1), false);
}

/// A cut straight out of a fast pan, with no hold: the cut must stand out
/// against pan frames that all score above the content threshold
/// (PySceneDetect's content rule, whose `merge` filter swallows the whole
/// run of high scores, misses it).
#[test]
fn a_cut_straight_out_of_a_fast_pan() {
    let dir = tempfile::tempdir().unwrap();
    assert_default_wins(&pan(dir.path(), "pan-cut", 100, 0, 1), false);
}

/// The same cut out of a pan over the textures of three seeds (of 440
/// tried) on which Sprocket's default once found a second, false cut in
/// the pan: every other pixel matched their 4-pixel cells a pixel off, and
/// a frame that happened to match exactly stood out from its neighbours.
/// (The fixtures took a random seed then, so CI met one now and then.)
#[test]
fn pans_over_textures_once_cut_in_the_middle_are_not() {
    let dir = tempfile::tempdir().unwrap();
    for seed in [119, 139, 253] {
        let case = pan(dir.path(), "pan-cut", 100, 0, seed);
        let cuts = sprocket(&case.video, json!({}));
        assert_eq!(cuts, case.truth, "seed {seed}");
    }
}

#[test]
fn cuts_between_framings_of_one_scene_are_found() {
    let dir = tempfile::tempdir().unwrap();
    assert_default_wins(&framings(dir.path()), false);
}
