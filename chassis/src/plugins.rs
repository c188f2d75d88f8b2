//! The plugins that ship with Chassis, each behind its feature.

#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "postgres", feature = "nats"))]
mod report;
