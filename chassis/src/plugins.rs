//! The plugins that ship with Chassis, each behind its feature.
