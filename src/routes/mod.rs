//! Stage 2, **match_route**: the canonical request view and the route table.
//!
//! [`request::view`] turns a raw request into the one [`RequestView`] every later stage
//! uses; [`RouteTable::find`] picks the route; [`rewrite::upstream_path`] derives the
//! upstream path from the same view. Internal endpoints are matched by the pipeline
//! before user routes.

pub mod normalize;
pub mod request;
pub mod rewrite;
pub mod table;

pub use request::{RequestError, RequestView};
pub use table::{Route, RouteTable};

#[cfg(test)]
mod props;
