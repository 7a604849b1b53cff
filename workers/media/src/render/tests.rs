//! Render parameters and the highlight and poster choices.

use crate::render::*;

fn shot(index: u32, start_s: f64, end_s: f64, score: f64) -> Shot {
    Shot {
        index,
        start_frame: (start_s * 25.0) as u64,
        end_frame: (end_s * 25.0) as u64,
        start_s,
        end_s,
        brightness: 100.0,
        sharpness: 10.0,
        motion: 5.0,
        keyframe: None,
        faces: 0,
        largest_face: None,
        score,
        thumbnail: None,
        thumbnail_error: None,
        face_track: Vec::new(),
    }
}

fn params(json: serde_json::Value) -> Result<RenderParams, MediaError> {
    RenderParams::from_params(json.as_object().unwrap())
}

#[test]
fn params_default_and_validate() {
    let p = params(serde_json::json!({})).unwrap();
    assert_eq!(p, RenderParams::default());
    assert!(p.wants("highlight") && p.wants("poster"));
    let p = params(serde_json::json!({"outputs": ["poster"], "target_duration_s": 12.5})).unwrap();
    assert!(!p.wants("highlight") && p.wants("poster"));
    assert_eq!(p.target_duration_s, 12.5);
    for bad in [
        serde_json::json!({"outputs": ["gif"]}),
        serde_json::json!({"outputs": []}),
        serde_json::json!({"outputs": ["poster", "poster"]}),
        serde_json::json!({"target_duration_s": 0}),
        serde_json::json!({"target_duration_s": -3}),
        serde_json::json!({"target_duration_s": "30"}),
        serde_json::json!({"colour": "red"}),
        serde_json::json!({"outputs": [{"height": 3}]}),
        serde_json::json!({"outputs": [{"output": "gif"}]}),
        serde_json::json!({"outputs": [{"output": "highlight", "colour": "red"}]}),
        serde_json::json!({"outputs": [{"output": "highlight", "target_duration_s": 0}]}),
        serde_json::json!({"outputs": ["hls", {"output": "hls"}]}),
        serde_json::json!({"loudness": {"target_lufs": 3}}),
    ] {
        let err = params(bad.clone()).unwrap_err();
        assert!(
            matches!(err, MediaError::InvalidParams(_)),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn outputs_by_name_or_with_their_parameters() {
    let p = params(serde_json::json!({
        "outputs": ["poster", {"output": "highlight", "target_duration_s": 8}, "thumbnails"],
        "target_duration_s": 20,
    }))
    .unwrap();
    let names: Vec<_> = p.outputs.iter().map(Output::name).collect();
    assert_eq!(names, ["poster", "highlight", "thumbnails"]);
    assert_eq!(p.highlight_target_s(), Some(8.0));
    let p = params(serde_json::json!({"outputs": ["highlight"], "target_duration_s": 20})).unwrap();
    assert_eq!(p.highlight_target_s(), Some(20.0));
    let p = params(serde_json::json!({"outputs": ["vertical", "square", "hls"]})).unwrap();
    assert_eq!(p.highlight_target_s(), None);
    let err = params(serde_json::json!({"outputs": ["gif"]})).unwrap_err();
    assert!(
        err.to_string().contains("known: highlight, poster"),
        "{err}"
    );
}

#[test]
fn best_shots_in_time_order_within_target() {
    let shots = [
        shot(0, 0.0, 4.0, 0.2),
        shot(1, 4.0, 7.0, 0.9),
        shot(2, 7.0, 9.0, 0.5),
        shot(3, 9.0, 15.0, 0.7),
    ];
    // 0.9 (3 s) + 0.7 (6 s) = 9 s; 0.5 (2 s) is cut to the 1 s left.
    assert_eq!(
        select_highlights(&shots, 10.0),
        vec![(4.0, 7.0), (7.0, 8.0), (9.0, 15.0)]
    );
    assert_eq!(select_highlights(&shots, 3.0), vec![(4.0, 7.0)]);
    // All of it fits.
    let all = select_highlights(&shots, 100.0);
    assert_eq!(all.len(), 4);
    assert_eq!(all.iter().map(|(a, b)| b - a).sum::<f64>(), 15.0);
}

#[test]
fn short_shots_and_slivers_are_skipped() {
    let shots = [
        shot(0, 0.0, 0.2, 1.0),
        shot(1, 0.2, 3.0, 0.4),
        shot(2, 3.0, 5.0, 0.3),
    ];
    // The 0.2 s shot is skipped; a 0.2 s sliver of shot 2 is not added.
    assert_eq!(select_highlights(&shots, 3.0), vec![(0.2, 3.0)]);
    // Only short shots: they are used.
    let tiny = [shot(0, 0.0, 0.2, 0.1), shot(1, 0.2, 0.4, 0.8)];
    assert_eq!(select_highlights(&tiny, 1.0), vec![(0.0, 0.2), (0.2, 0.4)]);
    // A target below the minimum still gets one trimmed piece.
    assert_eq!(select_highlights(&shots[1..], 0.3), vec![(0.2, 0.5)]);
    assert!(select_highlights(&shots, 0.0).is_empty());
    assert!(select_highlights(&[], 10.0).is_empty());
}

#[test]
fn ties_are_deterministic() {
    let shots = [
        shot(0, 0.0, 2.0, 0.5),
        shot(1, 2.0, 5.0, 0.5),
        shot(2, 5.0, 7.0, 0.5),
    ];
    // Longer first, then earlier.
    assert_eq!(select_highlights(&shots, 5.0), vec![(0.0, 2.0), (2.0, 5.0)]);
    let mut reversed = shots.to_vec();
    reversed.reverse();
    assert_eq!(
        select_highlights(&reversed, 5.0),
        select_highlights(&shots, 5.0)
    );
}

#[test]
fn poster_is_middle_of_best_shot() {
    let mut analysis = Analysis {
        fps: 25.0,
        frames: 250,
        width: 320,
        height: 240,
        duration_s: 10.0,
        detector: serde_json::json!({}),
        models: Vec::new(),
        thumbnails: None,
        shots: vec![
            shot(0, 0.0, 4.0, 0.3),
            shot(1, 4.0, 6.0, 0.8),
            shot(2, 6.0, 10.0, 0.8),
        ],
    };
    assert_eq!(poster_time(&analysis), 5.0);
    analysis.shots[1].keyframe = Some(crate::analysis::Keyframe {
        frame: 110,
        time_s: 4.4,
        sharpness: 12.0,
    });
    assert_eq!(poster_time(&analysis), 4.4, "the best shot's keyframe");
    analysis.shots.clear();
    assert_eq!(poster_time(&analysis), 5.0);
}
