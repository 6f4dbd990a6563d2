//! Cross-component tests live in `tests/`.

pub mod apiserver;
pub mod cascor_standin;
pub mod peer;
pub mod podspec;
