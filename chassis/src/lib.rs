//! Chassis: the library a Draft service embeds (under construction: plugins first).

pub mod plugin;
pub mod plugins;
