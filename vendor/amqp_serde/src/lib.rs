// PATCH (shop): a vendored crate (see vendor/README.md); its lints are upstream's business.
#![allow(warnings, clippy::all, clippy::pedantic)]
mod de;
mod error;
mod ser;

///////////////////////////////////////////////
pub mod types;
pub use de::{from_bytes, Deserializer};
pub use error::{Error, Result};
pub use ser::{to_buffer, to_bytes, Serializer};
