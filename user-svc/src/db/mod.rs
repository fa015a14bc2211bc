//! The service's own database: sea-orm entities and the migrations applied at start-up.

pub mod entities;
pub mod migration;
