//! Corral: a Heroku-style application platform run by systemd.
pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod model;
pub mod sandbox;
pub mod state;
pub mod systemd;
