//! Cross-component tests live in `tests/`.

pub mod cascor_standin;
