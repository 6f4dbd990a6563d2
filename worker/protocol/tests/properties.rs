//! Property tests over frames and messages, including arbitrary bytes. These are the
//! bounded, always-run counterpart of the cargo-fuzz target in `worker/protocol/fuzz`.

use cascor_protocol::{
    MAX_ELEMENTS, MAX_NDIM, TensorManifest, decode_frame, decode_header, decode_server_message,
    encode_frame,
};
use proptest::prelude::*;
use serde_json::json;

fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..6, 0..=4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trips(shape in shape_strategy(), seed in any::<u32>()) {
        let count: usize = shape.iter().product();
        let data: Vec<f32> = (0..count).map(|i| (seed as f32) * 0.001 - i as f32).collect();

        let frame = encode_frame(&shape, &data).unwrap();
        let tensor = decode_frame(&frame).unwrap();

        prop_assert_eq!(tensor.shape, shape);
        prop_assert_eq!(tensor.data, data);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(tensor) = decode_frame(&bytes) {
            prop_assert!(tensor.shape.len() <= MAX_NDIM);
            prop_assert_eq!(tensor.data.len(), tensor.shape.iter().product::<usize>());
        }
    }

    #[test]
    fn arbitrary_header_words_respect_bounds(
        ndim in 0u32..16,
        dims in prop::collection::vec(any::<u32>(), 0..16),
        dtype_len in 0u32..64,
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut frame = ndim.to_le_bytes().to_vec();
        for dim in &dims {
            frame.extend_from_slice(&dim.to_le_bytes());
        }
        frame.extend_from_slice(&dtype_len.to_le_bytes());
        frame.extend_from_slice(&tail);

        if let Ok(header) = decode_header(&frame) {
            prop_assert!(header.shape.len() <= MAX_NDIM);
            prop_assert!(header.element_count as u64 <= MAX_ELEMENTS);
            prop_assert_eq!(frame.len() - header.data_offset, header.element_count * header.dtype.item_size());
        }
    }

    #[test]
    fn corrupted_frames_never_panic(
        shape in shape_strategy(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let count: usize = shape.iter().product();
        let mut frame = encode_frame(&shape, &vec![1.0; count]).unwrap();
        let index = position.index(frame.len());
        frame[index] = byte;

        let _ = decode_frame(&frame);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = decode_server_message(&text);
    }

    #[test]
    fn task_assign_frame_count_follows_manifest(names in prop::collection::vec("[a-z]{1,8}", 0..6)) {
        let mut manifest = serde_json::Map::new();
        for name in &names {
            manifest.insert(name.clone(), json!({"shape": [1], "dtype": "float32"}));
        }
        let entries = manifest.len();
        let text = json!({"type": "task_assign", "task_id": "t", "tensor_manifest": manifest}).to_string();

        let message = decode_server_message(&text).unwrap();

        let cascor_protocol::ServerMessage::TaskAssign(task) = message else {
            panic!("decoded as another message");
        };
        prop_assert_eq!(task.frame_count, entries);
    }

    #[test]
    fn manifest_pairing_detects_every_count_mismatch(received in 0usize..6) {
        let manifest = TensorManifest::from_value(&json!({
            "candidate_input": {"shape": [1, 1], "dtype": "float32"},
            "y": {"shape": [1, 1], "dtype": "float32"},
            "residual_error": {"shape": [1, 1], "dtype": "float32"},
        })).unwrap();
        let frames: Vec<Vec<u8>> = (0..received).map(|_| encode_frame(&[1, 1], &[0.5]).unwrap()).collect();

        let decoded = manifest.decode_task_tensors(&frames);

        prop_assert_eq!(decoded.is_ok(), received == 3);
    }
}
