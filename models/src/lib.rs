//! Pure numerics for irtlake: Item Response Theory estimation and scoring,
//! linking to an anchor scale, and the simulators used by the demo platform
//! and by recovery tests. No I/O, no Arrow, no async.

pub mod calibration;
pub mod cluster;
pub mod forecast;
pub mod growth;
pub mod irt;
pub mod kpi;
pub mod linking;
pub mod numeric;
pub mod sample;
pub mod segment;
pub mod sim;
pub mod survival;
