//! The raw readers on one frame payload (no size prefix): every request and
//! response reader, record batches, and the primitive wire reads, as
//! `sprocket_broker::fuzzing::read_payload` explains.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sprocket_broker::fuzzing::read_payload(data);
});
