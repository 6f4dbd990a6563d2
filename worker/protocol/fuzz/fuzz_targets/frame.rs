//! Decodes arbitrary bytes as a tensor frame; checks the bounds of whatever decodes and
//! that re-encoding a float32 result gives back the same tensor.
#![no_main]

use cascor_protocol::{Dtype, MAX_ELEMENTS, MAX_NDIM, decode_frame, decode_header, encode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(header) = decode_header(bytes) else {
        return;
    };
    assert!(header.shape.len() <= MAX_NDIM);
    assert!(header.element_count as u64 <= MAX_ELEMENTS);

    let tensor = decode_frame(bytes).expect("a valid header implies a valid frame");
    assert_eq!(tensor.data.len(), header.element_count);

    if header.dtype == Dtype::Float32 {
        let encoded = encode_frame(&tensor.shape, &tensor.data).expect("decoded tensors re-encode");
        let again = decode_frame(&encoded).expect("encoded frames decode");
        assert_eq!(again.shape, tensor.shape);
        assert_eq!(
            again.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            tensor.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
});
