//! Tensor frame decoding and encoding, including every bound.

use cascor_protocol::{
    Dtype, FrameError, MAX_DTYPE_LEN, MAX_ELEMENTS, MAX_NDIM, decode_frame, decode_header,
    encode_frame,
};

/// Builds a frame from raw parts, without any validation.
fn raw_frame(dims: &[u32], dtype: &str, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    for dim in dims {
        frame.extend_from_slice(&dim.to_le_bytes());
    }
    frame.extend_from_slice(&(dtype.len() as u32).to_le_bytes());
    frame.extend_from_slice(dtype.as_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn f32_payload(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn worked_example_frame_decodes() {
    // candidate_input [[0,1],[1,0],[1,1],[0.5,-0.5]] as the server encodes it, 55 bytes.
    let bytes: Vec<u8> = [
        "02000000040000000200000007000000666c6f6174333200000000",
        "0000803f0000803f000000000000803f0000803f0000003f000000bf",
    ]
    .concat()
    .as_bytes()
    .chunks(2)
    .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
    .collect();
    assert_eq!(bytes.len(), 55);

    let tensor = decode_frame(&bytes).unwrap();

    assert_eq!(tensor.shape, vec![4, 2]);
    assert_eq!(tensor.data, vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.5, -0.5]);
}

#[test]
fn encoded_weights_match_reference_bytes() {
    let frame = encode_frame(&[2], &[0.204_291_05, -0.296_720_1]).unwrap();

    let expected: [u8; 27] = [
        0x01, 0, 0, 0, 0x02, 0, 0, 0, 0x07, 0, 0, 0, b'f', b'l', b'o', b'a', b't', b'3', b'2',
        0xac, 0x31, 0x51, 0x3e, 0xb2, 0xeb, 0x97, 0xbe,
    ];
    assert_eq!(frame, expected);
}

#[test]
fn zero_dimensional_frame_has_one_element() {
    let frame = raw_frame(&[], "float32", &f32_payload(&[2.5]));

    let tensor = decode_frame(&frame).unwrap();

    assert!(tensor.shape.is_empty());
    assert_eq!(tensor.data, vec![2.5]);
}

#[test]
fn zero_sized_frame_decodes_empty() {
    let frame = raw_frame(&[3, 0], "float32", &[]);

    let tensor = decode_frame(&frame).unwrap();

    assert_eq!(tensor.shape, vec![3, 0]);
    assert!(tensor.data.is_empty());
}

#[test]
fn float64_aliases_are_narrowed_to_float32() {
    let payload: Vec<u8> = [1.5f64, -0.25]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    for dtype in ["float64", "<f8", "f8"] {
        let tensor = decode_frame(&raw_frame(&[2], dtype, &payload)).unwrap();
        assert_eq!(tensor.data, vec![1.5, -0.25], "dtype {dtype}");
    }
}

#[test]
fn float32_aliases_are_accepted() {
    for dtype in ["float32", "<f4", "f4"] {
        let header = decode_header(&raw_frame(&[1], dtype, &f32_payload(&[1.0]))).unwrap();
        assert_eq!(header.dtype, Dtype::Float32, "dtype {dtype}");
    }
}

#[test]
fn big_endian_dtype_is_rejected() {
    for dtype in [">f4", ">f8"] {
        let error = decode_frame(&raw_frame(&[1], dtype, &[0; 8])).unwrap_err();
        assert_eq!(
            error,
            FrameError::BigEndianDtype {
                dtype: dtype.to_owned()
            }
        );
    }
}

#[test]
fn other_dtypes_are_rejected() {
    for dtype in ["int64", "float16", "object", "", "<i4"] {
        let error = decode_frame(&raw_frame(&[1], dtype, &[0; 8])).unwrap_err();
        assert_eq!(
            error,
            FrameError::UnsupportedDtype {
                dtype: dtype.to_owned()
            }
        );
    }
}

#[test]
fn too_many_dimensions_are_rejected() {
    let dims = vec![1u32; MAX_NDIM + 1];

    let error = decode_frame(&raw_frame(&dims, "float32", &f32_payload(&[1.0]))).unwrap_err();

    assert_eq!(
        error,
        FrameError::TooManyDimensions {
            ndim: MAX_NDIM as u32 + 1
        }
    );
}

#[test]
fn maximum_dimensions_are_accepted() {
    let dims = vec![1u32; MAX_NDIM];

    let tensor = decode_frame(&raw_frame(&dims, "float32", &f32_payload(&[1.0]))).unwrap();

    assert_eq!(tensor.shape.len(), MAX_NDIM);
}

#[test]
fn element_count_is_checked_per_dimension() {
    // 10 000 × 10 001 exceeds the limit at axis 1; the third dimension is never read,
    // so the frame may end right after the second.
    let mut frame = Vec::new();
    frame.extend_from_slice(&3u32.to_le_bytes());
    frame.extend_from_slice(&10_000u32.to_le_bytes());
    frame.extend_from_slice(&10_001u32.to_le_bytes());

    let error = decode_header(&frame).unwrap_err();

    assert_eq!(
        error,
        FrameError::TooManyElements {
            shape: vec![10_000, 10_001],
            axis: 1
        }
    );
}

#[test]
fn element_limit_itself_is_allowed_in_header() {
    // Exactly MAX_ELEMENTS passes the count check and then fails on the missing payload.
    let frame = raw_frame(&[10_000, (MAX_ELEMENTS / 10_000) as u32], "float32", &[]);

    let error = decode_header(&frame).unwrap_err();

    assert!(
        matches!(error, FrameError::PayloadLength { expected, actual: 0, .. } if expected == MAX_ELEMENTS as usize * 4),
        "{error:?}"
    );
}

#[test]
fn long_dtype_string_is_rejected() {
    let dtype = "f".repeat(MAX_DTYPE_LEN + 1);

    let error = decode_frame(&raw_frame(&[1], &dtype, &[0; 4])).unwrap_err();

    assert_eq!(
        error,
        FrameError::DtypeTooLong {
            len: MAX_DTYPE_LEN as u32 + 1
        }
    );
}

#[test]
fn non_utf8_dtype_is_rejected() {
    let mut frame = raw_frame(&[1], "float32", &[0; 4]);
    frame[12] = 0xff;

    assert_eq!(decode_frame(&frame).unwrap_err(), FrameError::DtypeNotUtf8);
}

#[test]
fn payload_length_must_be_exact() {
    for extra in [-1i32, 1] {
        let mut payload = f32_payload(&[1.0, 2.0]);
        if extra < 0 {
            payload.pop();
        } else {
            payload.push(0);
        }

        let error = decode_frame(&raw_frame(&[2], "float32", &payload)).unwrap_err();

        assert_eq!(
            error,
            FrameError::PayloadLength {
                shape: vec![2],
                dtype: Dtype::Float32,
                expected: 8,
                actual: payload.len(),
            }
        );
    }
}

#[test]
fn truncated_headers_name_the_field() {
    let full = raw_frame(&[2], "float32", &f32_payload(&[1.0, 2.0]));
    let cases = [
        (0, "ndim"),
        (3, "ndim"),
        (6, "dimension"),
        (9, "dtype length"),
        (14, "dtype"),
    ];
    for (len, field) in cases {
        let error = decode_header(&full[..len]).unwrap_err();
        assert!(
            matches!(error, FrameError::Truncated { field: f, .. } if f == field),
            "length {len}: {error:?}"
        );
    }
}

#[test]
fn encode_rejects_mismatched_element_count() {
    let error = encode_frame(&[2, 2], &[1.0, 2.0, 3.0]).unwrap_err();

    assert_eq!(
        error,
        FrameError::ElementCountMismatch {
            shape: vec![2, 2],
            expected: 4,
            actual: 3
        }
    );
}

#[test]
fn encode_rejects_too_many_dimensions() {
    let shape = vec![1usize; MAX_NDIM + 1];

    let error = encode_frame(&shape, &[1.0]).unwrap_err();

    assert!(
        matches!(error, FrameError::TooManyDimensions { .. }),
        "{error:?}"
    );
}

#[test]
fn error_messages_name_the_bound() {
    let message = FrameError::TooManyDimensions { ndim: 11 }.to_string();
    assert!(
        message.contains("11") && message.contains("10"),
        "{message}"
    );

    let message = FrameError::DtypeTooLong { len: 40 }.to_string();
    assert!(
        message.contains("40") && message.contains("32"),
        "{message}"
    );
}
