//! Every query but the runs' writes, written once for both dialects: each function
//! builds a [`Query`](super::dialect::Query) (or an
//! [`Insert`](super::dialect::Insert)) in a [`Dialect`](super::dialect::Dialect);
//! the transactions are `async fn`s over [`Exec`](super::exec::Exec). The
//! rows come back through the mappings of [`super::row`].

pub(crate) mod history;
pub(crate) mod import;
pub(crate) mod makers;
pub(crate) mod runs;
pub(crate) mod vip;
