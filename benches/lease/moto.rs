//! Reaching moto: `REKEY_TEST_MOTO_URL` when set, else a `moto_server` of
//! our own on a free loopback port, stopped when the guard is dropped; and
//! the test credentials the AWS SDK's default chain reads.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto we started (killed on drop), or one someone else runs.
pub struct Moto {
    pub url: String,
    child: Option<Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How long a started moto_server gets to answer.
const STARTUP: Duration = Duration::from_secs(30);

/// moto from the environment or started here; `Err` says why there is none.
pub fn reach() -> Result<Moto, String> {
    if let Ok(url) = std::env::var("REKEY_TEST_MOTO_URL") {
        return Ok(Moto { url, child: None });
    }
    let port = free_port()?;
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("moto_server could not be started ({e}); install moto (pip install 'moto[server]') or set REKEY_TEST_MOTO_URL"))?;
    let moto = Moto {
        url: format!("http://127.0.0.1:{port}"),
        child: Some(child),
    };
    wait_until_listening(port)?;
    Ok(moto)
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free loopback port: {e}"))?;
    (listener.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

fn wait_until_listening(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "moto_server did not listen on 127.0.0.1:{port} within {STARTUP:?}"
    ))
}

/// moto's test credentials for the SDK's default chain, unless set already.
/// Called before the runtime starts, while this is the only thread.
pub fn test_credentials() {
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        if std::env::var_os(name).is_none() {
            // SAFETY: main calls this before any other thread exists.
            unsafe { std::env::set_var(name, value) };
        }
    }
}
