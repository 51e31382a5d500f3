pub mod copy;
pub mod layout;
pub mod listing;
pub mod notice;
