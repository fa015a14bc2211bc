//! order-svc (being built).
