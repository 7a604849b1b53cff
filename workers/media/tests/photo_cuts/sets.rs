//! The corpus: a tuning set, which the detector was tuned on, and a held-out
//! set of other photo pairings, motions and timings, which the tuning never
//! saw. Frame numbers of flashes are frames of the finished video.

use super::corpus::Motion::Pan;
use super::corpus::{shot, Flash, Join, Spec, Zoom, DRIFT};

const CUT: Join = Join::Cut;

/// A pan of `dx`, `dy` pixels a frame at magnification `zoom`.
fn pan(dx: f64, dy: f64, zoom: f64) -> super::corpus::Motion {
    Pan { dx, dy, zoom }
}

fn zoom(from: f64, to: f64) -> super::corpus::Motion {
    Zoom {
        from,
        to,
        cx: 0.5,
        cy: 0.5,
    }
}

pub fn tuning() -> Vec<Spec> {
    vec![
        Spec {
            name: "flash_white_pair",
            about: "four colour shots (drift, slow pan, zoom); a white pair, an overexposed pair and a white frame inside shots",
            first: shot("astronaut.png", 90, DRIFT),
            rest: vec![
                (CUT, shot("coffee.png", 100, pan(2.0, 0.0, 1.2))),
                (CUT, shot("chelsea.png", 100, zoom(1.0, 1.3))),
                (CUT, shot("rocket.jpg", 80, DRIFT)),
            ],
            flashes: vec![
                Flash::White { at: 140, len: 2 },
                Flash::Over { at: 240, len: 2 },
                Flash::White { at: 320, len: 1 },
            ],
        },
        Spec {
            name: "flash_in_pan",
            about: "flashes (overexposed and white pairs) during pans of 6-8 px a frame, then cuts",
            first: shot("rocket.jpg", 120, pan(6.0, 0.0, 1.0)),
            rest: vec![
                (CUT, shot("motorcycle_left.png", 120, pan(-8.0, 1.0, 1.3))),
                (CUT, shot("ihc.png", 100, DRIFT)),
            ],
            flashes: vec![
                Flash::Over { at: 60, len: 2 },
                Flash::White { at: 180, len: 2 },
                Flash::Over { at: 300, len: 2 },
            ],
        },
        Spec {
            name: "pan_brick_grass",
            about: "fast pans (12-14 px a frame) across brick, gravel and grass, each cut straight to a similar texture",
            first: shot("brick.png", 60, pan(14.0, 0.0, 1.0)),
            rest: vec![
                (CUT, shot("grass.png", 70, DRIFT)),
                (CUT, shot("gravel.png", 60, pan(12.0, 3.0, 1.0))),
                (CUT, shot("brick.png", 70, DRIFT)),
                (CUT, shot("grass.png", 60, pan(-14.0, 0.0, 1.0))),
                (CUT, shot("gravel.png", 60, DRIFT)),
            ],
            flashes: vec![],
        },
        Spec {
            name: "pan_into_pan",
            about: "fast pans (10-16 px a frame) that go on across the cut: grass to gravel, brick to grass",
            first: shot("grass.png", 80, pan(16.0, 0.0, 1.0)),
            rest: vec![
                (CUT, shot("gravel.png", 80, pan(16.0, 0.0, 1.0))),
                (CUT, shot("brick.png", 80, pan(0.0, 10.0, 1.0))),
                (CUT, shot("grass.png", 80, pan(0.0, 10.0, 1.0))),
            ],
            flashes: vec![],
        },
        Spec {
            name: "framings",
            about: "wide shots and 1.7-2x close-ups of one photo cut together (chelsea; the motorcycle stereo pair)",
            first: shot("chelsea.png", 75, DRIFT),
            rest: vec![
                (CUT, shot("chelsea.png", 75, pan(1.0, 0.0, 2.0)).at(0.3, 0.3)),
                (CUT, shot("motorcycle_left.png", 75, DRIFT)),
                (CUT, shot("motorcycle_right.png", 75, pan(-1.0, 0.0, 1.7)).at(0.6, 0.5)),
                (CUT, shot("motorcycle_left.png", 75, pan(2.0, 0.0, 1.0))),
            ],
            flashes: vec![],
        },
        Spec {
            name: "dissolves",
            about: "dissolves of 25, 12 and 37 frames and one cut between colour photos",
            first: shot("astronaut.png", 100, DRIFT),
            rest: vec![
                (Join::Dissolve(25), shot("coffee.png", 100, pan(1.0, 0.0, 1.1))),
                (Join::Dissolve(12), shot("chelsea.png", 100, zoom(1.0, 1.2))),
                (CUT, shot("rocket.jpg", 80, DRIFT)),
                (Join::Dissolve(37), shot("hubble_deep_field.jpg", 100, pan(0.0, 1.0, 1.0))),
            ],
            flashes: vec![],
        },
        Spec {
            name: "grey_zooms",
            about: "zooms in and out on grey photos (camera, moon, coins), cut together",
            first: shot("camera.png", 90, zoom(1.0, 1.5)),
            rest: vec![
                (CUT, shot("moon.png", 90, zoom(1.6, 1.0))),
                (CUT, shot("coins.png", 90, zoom(1.0, 1.4))),
                (CUT, shot("page.png", 90, DRIFT)),
            ],
            flashes: vec![],
        },
        Spec {
            name: "mixed",
            about: "a white pair, a fast pan on brick cut to gravel, a dissolve into a zoom with an overexposed pair",
            first: shot("chelsea.png", 70, DRIFT),
            rest: vec![
                (CUT, shot("brick.png", 60, pan(13.0, 0.0, 1.0))),
                (CUT, shot("gravel.png", 70, DRIFT)),
                (Join::Dissolve(20), shot("coffee.png", 90, zoom(1.0, 1.3))),
                (CUT, shot("retina.jpg", 70, DRIFT)),
            ],
            flashes: vec![Flash::White { at: 30, len: 2 }, Flash::Over { at: 240, len: 2 }],
        },
    ]
}

pub fn held_out() -> Vec<Spec> {
    vec![
        Spec {
            name: "ho_flash_zoom",
            about: "a white pair in a zoom, an overexposed pair in a 5 px pan, a white pair in a drift",
            first: shot("ihc.png", 110, zoom(1.0, 1.4)),
            rest: vec![
                (CUT, shot("astronaut.png", 110, pan(5.0, 0.0, 1.2))),
                (CUT, shot("hubble_deep_field.jpg", 110, DRIFT)),
            ],
            flashes: vec![
                Flash::White { at: 50, len: 2 },
                Flash::Over { at: 170, len: 2 },
                Flash::White { at: 260, len: 2 },
            ],
        },
        Spec {
            name: "ho_pan_textures",
            about: "fast pans leftwards, downwards and diagonally (12-15 px) on gravel, grass and brick, each cut to another texture",
            first: shot("gravel.png", 70, pan(-12.0, 0.0, 1.0)),
            rest: vec![
                (CUT, shot("brick.png", 60, DRIFT)),
                (CUT, shot("grass.png", 70, pan(0.0, 12.0, 1.0))),
                (CUT, shot("gravel.png", 80, DRIFT)),
                (CUT, shot("brick.png", 60, pan(-15.0, 2.0, 1.0))),
                (CUT, shot("grass.png", 60, DRIFT)),
            ],
            flashes: vec![],
        },
        Spec {
            name: "ho_dissolves",
            about: "dissolves of 30, 15 and 20 frames and a cut, into pans, drifts and a zoom",
            first: shot("rocket.jpg", 90, pan(1.0, 0.0, 1.1)),
            rest: vec![
                (Join::Dissolve(30), shot("motorcycle_left.png", 100, DRIFT)),
                (Join::Dissolve(15), shot("retina.jpg", 100, zoom(1.0, 1.25))),
                (CUT, shot("coffee.png", 80, DRIFT)),
                (Join::Dissolve(20), shot("chelsea.png", 90, pan(-1.0, 0.0, 1.2))),
            ],
            flashes: vec![],
        },
        Spec {
            name: "ho_framings",
            about: "the astronaut wide and in a 2.2x close-up, the coffee wide and 1.8x",
            first: shot("astronaut.png", 80, pan(2.0, 0.0, 1.0)),
            rest: vec![
                (CUT, shot("astronaut.png", 80, pan(0.0, 1.0, 2.2)).at(0.45, 0.2)),
                (CUT, shot("coffee.png", 80, DRIFT)),
                (CUT, shot("coffee.png", 80, pan(1.0, 0.0, 1.8)).at(0.6, 0.6)),
                (CUT, shot("astronaut.png", 70, DRIFT)),
            ],
            flashes: vec![],
        },
        Spec {
            name: "ho_mixed",
            about: "a fast pan on the moon cut to coins, flashes in a drift and a zoom-out, a dissolve, a fast vertical pan on brick",
            first: shot("moon.png", 70, pan(10.0, 0.0, 1.0)),
            rest: vec![
                (CUT, shot("coins.png", 70, DRIFT)),
                (CUT, shot("camera.png", 80, zoom(1.4, 1.0))),
                (Join::Dissolve(25), shot("page.png", 80, DRIFT)),
                (CUT, shot("brick.png", 60, pan(0.0, -11.0, 1.0))),
            ],
            flashes: vec![Flash::White { at: 100, len: 2 }, Flash::Over { at: 170, len: 2 }],
        },
    ]
}
