//! Everything the relay does to what clients send: the input is a client byte
//! stream (size-prefixed Kafka frames), decided on frame by frame against one
//! transaction state, as `sprocket_broker::fuzzing::intercept_stream` explains.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sprocket_broker::fuzzing::intercept_stream(data);
});
