//! Decodes arbitrary bytes as a server text message, and a decoded task's manifest
//! against frames cut from the rest of the input.
#![no_main]

use cascor_protocol::{ServerMessage, decode_server_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let split = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let Ok(text) = std::str::from_utf8(&bytes[..split]) else {
        return;
    };
    let Ok(ServerMessage::TaskAssign(task)) = decode_server_message(text) else {
        return;
    };
    let Ok(manifest) = &task.manifest else {
        return;
    };
    assert_eq!(manifest.entries().len(), task.frame_count);

    let rest = bytes.get(split + 1..).unwrap_or_default();
    let frames: Vec<&[u8]> = rest.split(|b| *b == 0xff).collect();
    let _ = manifest.decode_task_tensors(&frames);
});
