//! Codec for the juniper-cascor worker protocol.
