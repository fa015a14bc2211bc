//! gateway (being built).
