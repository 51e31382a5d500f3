pub mod entra;
pub mod home;
pub mod not_found;
pub mod setup;
pub mod setup_admin;
pub mod sign_in;
