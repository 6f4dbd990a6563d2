//! Binary tensor frames.
//!
//! Layout, every integer an unsigned 32-bit little-endian word:
//!
//! | offset        | size   | content                                         |
//! |---------------|--------|-------------------------------------------------|
//! | 0             | 4      | `ndim`                                          |
//! | 4             | 4·ndim | dimensions, outermost first                     |
//! | 4 + 4·ndim    | 4      | `L`, byte length of the dtype string            |
//! | 8 + 4·ndim    | L      | dtype string (UTF-8, numpy spelling)            |
//! | 8 + 4·ndim + L| rest   | elements in row-major order, little-endian      |
//!
//! A 0-d tensor has `ndim = 0` and one element.

use std::fmt;

use thiserror::Error;

/// Maximum number of dimensions a frame may declare.
pub const MAX_NDIM: usize = 10;
/// Maximum element count of one frame, checked as a running product of the dimensions
/// before anything is allocated.
pub const MAX_ELEMENTS: u64 = 100_000_000;
/// Maximum byte length of the dtype string.
pub const MAX_DTYPE_LEN: usize = 32;

/// Element type of a frame. Only little-endian IEEE floats are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    Float32,
    Float64,
}

impl Dtype {
    /// Parses a numpy dtype spelling: `float32`, `<f4`, `f4`, `float64`, `<f8` or `f8`.
    pub fn parse(name: &str) -> Result<Self, FrameError> {
        match name {
            "float32" | "<f4" | "f4" => Ok(Self::Float32),
            "float64" | "<f8" | "f8" => Ok(Self::Float64),
            _ if name.starts_with('>') => Err(FrameError::BigEndianDtype {
                dtype: name.to_owned(),
            }),
            _ => Err(FrameError::UnsupportedDtype {
                dtype: name.to_owned(),
            }),
        }
    }

    /// Returns numpy's canonical name, the string written into frames and manifests.
    pub fn canonical_name(self) -> &'static str {
        match self {
            Self::Float32 => "float32",
            Self::Float64 => "float64",
        }
    }

    /// Returns the size of one element in bytes.
    pub fn item_size(self) -> usize {
        match self {
            Self::Float32 => 4,
            Self::Float64 => 8,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.canonical_name())
    }
}

/// Error decoding or encoding a frame. Each variant names the bound it broke.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error(
        "frame truncated: {field} needs {needed} bytes at offset {offset}, but the frame has {len} bytes"
    )]
    Truncated {
        field: &'static str,
        offset: usize,
        needed: usize,
        len: usize,
    },
    #[error("frame declares {ndim} dimensions, more than the maximum of {MAX_NDIM}")]
    TooManyDimensions { ndim: u32 },
    #[error(
        "frame shape {shape:?} has more than {MAX_ELEMENTS} elements (exceeded at dimension {axis})"
    )]
    TooManyElements { shape: Vec<u32>, axis: usize },
    #[error("frame dtype string is {len} bytes long, more than the maximum of {MAX_DTYPE_LEN}")]
    DtypeTooLong { len: u32 },
    #[error("frame dtype string is not valid UTF-8")]
    DtypeNotUtf8,
    #[error("unsupported frame dtype {dtype:?}: expected float32 or float64 (or <f4, f4, <f8, f8)")]
    UnsupportedDtype { dtype: String },
    #[error("big-endian frame dtype {dtype:?} is not supported: data must be little-endian")]
    BigEndianDtype { dtype: String },
    #[error(
        "frame payload is {actual} bytes, but shape {shape:?} of {dtype} needs exactly {expected} bytes"
    )]
    PayloadLength {
        shape: Vec<usize>,
        dtype: Dtype,
        expected: usize,
        actual: usize,
    },
    #[error("cannot encode: shape {shape:?} holds {expected} elements, but {actual} were given")]
    ElementCountMismatch {
        shape: Vec<usize>,
        expected: usize,
        actual: usize,
    },
    #[error("cannot encode: dimension {dim} of shape {shape:?} does not fit in 32 bits")]
    DimensionTooLarge { shape: Vec<usize>, dim: usize },
}

/// Header of a frame: everything before the element data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameHeader {
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    /// Number of elements, the product of `shape` (1 for a 0-d tensor).
    pub element_count: usize,
    /// Byte offset of the element data.
    pub data_offset: usize,
}

/// A decoded tensor with float32 elements in row-major order; float64 frames are
/// narrowed to float32 as the reference worker does.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads one little-endian u32 at `offset`.
fn read_u32(bytes: &[u8], offset: usize, field: &'static str) -> Result<u32, FrameError> {
    let end = offset.checked_add(4);
    match end.and_then(|end| bytes.get(offset..end)) {
        Some(word) => Ok(u32::from_le_bytes([word[0], word[1], word[2], word[3]])),
        None => Err(FrameError::Truncated {
            field,
            offset,
            needed: 4,
            len: bytes.len(),
        }),
    }
}

/// Parses and bounds-checks the header of `frame` without touching the element data.
pub fn decode_header(frame: &[u8]) -> Result<FrameHeader, FrameError> {
    let ndim = read_u32(frame, 0, "ndim")?;
    if ndim as usize > MAX_NDIM {
        return Err(FrameError::TooManyDimensions { ndim });
    }

    let mut dims = Vec::with_capacity(ndim as usize);
    let mut element_count: u64 = 1;
    for axis in 0..ndim as usize {
        let dim = read_u32(frame, 4 + 4 * axis, "dimension")?;
        dims.push(dim);
        element_count = element_count.saturating_mul(u64::from(dim));
        if element_count > MAX_ELEMENTS {
            return Err(FrameError::TooManyElements { shape: dims, axis });
        }
    }

    let dtype_len_offset = 4 + 4 * ndim as usize;
    let dtype_len = read_u32(frame, dtype_len_offset, "dtype length")?;
    if dtype_len as usize > MAX_DTYPE_LEN {
        return Err(FrameError::DtypeTooLong { len: dtype_len });
    }

    let dtype_offset = dtype_len_offset + 4;
    let data_offset = dtype_offset + dtype_len as usize;
    let dtype_bytes = frame
        .get(dtype_offset..data_offset)
        .ok_or(FrameError::Truncated {
            field: "dtype",
            offset: dtype_offset,
            needed: dtype_len as usize,
            len: frame.len(),
        })?;
    let dtype_name = std::str::from_utf8(dtype_bytes).map_err(|_| FrameError::DtypeNotUtf8)?;
    let dtype = Dtype::parse(dtype_name)?;

    // The running product above bounds element_count by MAX_ELEMENTS, so it fits usize.
    let element_count = element_count as usize;
    let shape: Vec<usize> = dims.into_iter().map(|dim| dim as usize).collect();
    let expected = element_count * dtype.item_size();
    let actual = frame.len() - data_offset;
    if actual != expected {
        return Err(FrameError::PayloadLength {
            shape,
            dtype,
            expected,
            actual,
        });
    }

    Ok(FrameHeader {
        shape,
        dtype,
        element_count,
        data_offset,
    })
}

/// Decodes a whole frame into a float32 tensor.
pub fn decode_frame(frame: &[u8]) -> Result<Tensor, FrameError> {
    let header = decode_header(frame)?;
    let payload = &frame[header.data_offset..];

    let data: Vec<f32> = match header.dtype {
        Dtype::Float32 => payload
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::Float64 => payload
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
    };

    Ok(Tensor {
        shape: header.shape,
        data,
    })
}

/// Encodes a float32 tensor as a frame with dtype `float32`.
pub fn encode_frame(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, FrameError> {
    if shape.len() > MAX_NDIM {
        return Err(FrameError::TooManyDimensions {
            ndim: u32::try_from(shape.len()).unwrap_or(u32::MAX),
        });
    }

    let mut dims = Vec::with_capacity(shape.len());
    for &dim in shape {
        let word = u32::try_from(dim).map_err(|_| FrameError::DimensionTooLarge {
            shape: shape.to_vec(),
            dim,
        })?;
        dims.push(word);
    }

    let expected = shape
        .iter()
        .try_fold(1usize, |product, &dim| product.checked_mul(dim));
    if expected != Some(data.len()) {
        return Err(FrameError::ElementCountMismatch {
            shape: shape.to_vec(),
            expected: expected.unwrap_or(usize::MAX),
            actual: data.len(),
        });
    }

    let dtype = Dtype::Float32.canonical_name().as_bytes();
    let mut frame = Vec::with_capacity(8 + 4 * dims.len() + dtype.len() + 4 * data.len());
    frame.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    for dim in dims {
        frame.extend_from_slice(&dim.to_le_bytes());
    }
    frame.extend_from_slice(&(dtype.len() as u32).to_le_bytes());
    frame.extend_from_slice(dtype);
    for value in data {
        frame.extend_from_slice(&value.to_le_bytes());
    }

    Ok(frame)
}
