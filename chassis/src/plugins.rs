//! The plugins that ship with Chassis, each behind its feature.

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "postgres")]
mod report;
