//! user-svc (being built).
