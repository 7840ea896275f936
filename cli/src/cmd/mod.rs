//! One module per command (mini-redis's `cmd/`). Each parses nothing itself (clap does, in
//! `main.rs`), does its work and returns an [`Outcome`](crate::Outcome); text for people is
//! in [`format`](crate::format). The client commands share [`client`].

pub mod admin;
pub mod apply;
pub mod client;
pub mod controller;
pub mod delete;
pub mod describe;
pub mod get;
pub mod report;
pub mod rerun;
pub mod run;
pub mod settings;
pub mod validate;
pub mod watch;
