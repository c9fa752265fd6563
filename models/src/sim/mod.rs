//! Simulators: IRT response data with known parameters (for recovery tests and
//! benchmarks) and the demo learning platform (for `irtlake demo-data`).
//!
//! Everything is deterministic given the seed (`rand::rngs::StdRng`).

pub mod responses;

pub use responses::{
    SimulatedBank, complete_bank, draw_items, draw_response, draw_thetas, simulate_complete,
    simulate_sparse, sparse_bank,
};
pub mod platform;
pub use platform::{
    Platform, PlatformConfig, PlatformError, SimAttempt, SimItem, SimStudent, SimSubject, SimTopic,
    Trajectory, simulate_platform, try_simulate_platform,
};
