//! A consumed message's payload: framed (bare JSON or the 5-byte wire
//! header) and parsed as an envelope, as every reader does. Besides not
//! panicking: an envelope that parses writes JSON that parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sprocket_core::event::Fill;
use sprocket_core::wire::{frame, Frame};
use sprocket_core::Envelope;

fn fill() -> Fill {
    Fill {
        event_id: "00000000-0000-7000-8000-000000000000".into(),
        occurred_at: chrono::DateTime::UNIX_EPOCH,
        producer: "fuzz".into(),
    }
}

fuzz_target!(|payload: &[u8]| {
    let json = match frame(payload) {
        Ok(Frame::Bare(json)) | Ok(Frame::Registered { json, .. }) => json,
        Err(_) => return,
    };
    if let Ok(env) = Envelope::from_json(json, fill) {
        let again = Envelope::from_json(&env.to_json(), || unreachable!("complete"))
            .expect("a written envelope parses");
        assert_eq!(again, env);
    }
});
