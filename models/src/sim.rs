//! Simulators: IRT response data with known parameters and the demo platform.
