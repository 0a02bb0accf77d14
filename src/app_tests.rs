//! The replicas count the limiters share: set once, kept across a reload.

use std::path::Path;

use super::*;
use crate::config::load::{SourceFormat, load_str};

fn config(dir: &Path) -> Config {
    std::fs::write(dir.join("mgmt"), "sk-or-v1-test-management").unwrap();
    let text = "[daemon]\nstate = \"file:state\"\n\
                [providers.or]\nkind = \"openrouter\"\nmanagement_key = \"file:mgmt\"\n\
                rate_limit = \"10/s\"\n\
                [stores.local]\nkind = \"file\"\ndir = \"secrets\"\n";
    load_str(text, SourceFormat::Toml, dir).unwrap()
}

#[tokio::test]
async fn the_replicas_count_starts_at_one_and_a_reload_keeps_the_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::build(config(dir.path())).await.unwrap();
    assert_eq!(app.replicas(), 1);
    app.set_replicas(3);
    app.set_replicas(3);
    assert_eq!(app.replicas(), 3, "idempotent");
    let reloaded = app.rebuild(config(dir.path())).await.unwrap();
    assert_eq!(
        reloaded.replicas(),
        3,
        "the new app starts with the last count"
    );
    reloaded.set_replicas(0);
    assert_eq!(app.replicas(), 1, "one count for both, and 0 reads as 1");
}
