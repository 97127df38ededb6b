//! Rebuild when a migration is added (sqlx::migrate! embeds them) or the built site changes
//! (rust-embed embeds `target/site` into the binary).
fn main() {
    println!("cargo:rerun-if-changed=../migrations/sqlite");
    println!("cargo:rerun-if-changed=../migrations/postgres");
    let site = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/site");
    // A missing directory would make cargo rerun this script on every build.
    let _ = std::fs::create_dir_all(&site);
    println!("cargo:rerun-if-changed=../target/site");
}
