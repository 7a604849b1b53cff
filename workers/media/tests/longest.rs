//! Every ffmpeg run over a source reads at most `Source::longest_s` of it
//! (`-t` on its input, `ingest.max_duration_s` in a deployment), whatever
//! the container claims: a 4 s source read with a 1.5 s limit gives a
//! highlight and a ladder of 1.5 s, and no poster past it. The reframed
//! outputs, the sprite and the loudness passes take their input options from
//! the same `Source::input`.

mod render_support;

use render_support::{duration, ffprobe, source};
use sprocket_media::hls::{render_hls, HlsParams};
use sprocket_media::loudness::Loudness;
use sprocket_media::render::{render_highlight, render_poster, Source};
use sprocket_media::MediaError;
use std::path::Path;
use tokio_util::sync::CancellationToken;

const LIMIT_S: f64 = 1.5;

/// Within a frame or an audio packet of the limit.
fn about_the_limit(what: &str, got: f64) {
    assert!(
        (got - LIMIT_S).abs() <= 0.15,
        "{what} is {got} s, the limit {LIMIT_S} s (the source: 4 s)"
    );
}

fn limited(path: &Path) -> Source {
    Source {
        path: path.to_path_buf(),
        stream: None,
        has_audio: true,
        longest_s: LIMIT_S,
    }
}

#[test]
fn no_run_reads_past_the_longest_a_source_may_be() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), "src.mp4", 4, true);
    let cancel = CancellationToken::new();

    let reel = dir.path().join("reel.mp4");
    render_highlight(
        &limited(&src),
        &[(0.0, 4.0)],
        &Loudness::default(),
        &reel,
        &mut |_| {},
        &cancel,
    )
    .unwrap();
    about_the_limit("the highlight", duration(&ffprobe(&reel)));

    let poster = dir.path().join("poster.jpg");
    render_poster(&limited(&src), 1.0, &poster, &cancel).unwrap();
    let late = dir.path().join("late.jpg");
    let err = render_poster(&limited(&src), 2.5, &late, &cancel).unwrap_err();
    assert!(matches!(err, MediaError::InvalidParams(_)), "{err:?}");

    let out = dir.path().join("hls");
    render_hls(
        &limited(&src),
        (320, 240),
        4.0,
        &HlsParams::default(),
        &Loudness::default(),
        &out,
        &mut |_| {},
        &cancel,
    )
    .unwrap();
    let mut playlists = 0;
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.contains("#EXTINF") {
            continue;
        }
        playlists += 1;
        let total: f64 = text
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|l| {
                l.trim_end_matches(',')
                    .split(',')
                    .next()
                    .unwrap()
                    .parse::<f64>()
                    .unwrap()
            })
            .sum();
        about_the_limit(&format!("rendition {}", path.display()), total);
    }
    assert!(playlists > 0, "no media playlist in {}", out.display());
}
