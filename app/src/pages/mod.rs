pub mod home;
pub mod not_found;
pub mod setup;
pub mod sign_in;
