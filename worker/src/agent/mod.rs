//! WebSocket agent: connects to juniper-cascor, registers, heartbeats and trains the
//! candidate tasks it is assigned.

pub mod observer;
pub mod settings;
