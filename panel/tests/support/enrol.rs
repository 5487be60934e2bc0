//! Cameras' credentials for tests: issued by an engine or by `panel camera
//! add`, as an installer would, and turned into an agent's flags.

use std::path::Path;
use std::process::Command;

/// What an agent needs to reach a panel: its address, the camera's secret,
/// and the panel certificate's fingerprint (`None`: plain TCP).
#[derive(Debug, Clone)]
pub struct Creds {
    pub addr: std::net::SocketAddr,
    pub id: String,
    pub secret: cctv_protocol::auth::Secret,
    pub fingerprint: Option<cctv_protocol::tls::Fingerprint>,
}

impl Creds {
    /// The agent's flags for these credentials.
    pub fn agent_args(&self) -> Vec<String> {
        let mut a = vec![
            "--panel".to_string(),
            self.addr.to_string(),
            "--camera-id".into(),
            self.id.clone(),
            "--secret".into(),
            self.secret.to_hex(),
        ];
        match self.fingerprint {
            Some(f) => a.extend(["--panel-fingerprint".to_string(), f.to_string()]),
            None => a.push("--plain-tcp".into()),
        }
        a
    }
}

/// Issues credentials for `id` on a running engine.
pub async fn enroll(engine: &cctv_engine::Engine, id: &str, name: &str) -> Creds {
    let secret = engine
        .add_camera(id, name, false)
        .await
        .expect("add camera");
    Creds {
        addr: engine.local_addr(),
        id: id.into(),
        secret,
        fingerprint: engine.fingerprint(),
    }
}

/// Issues credentials with `panel camera add`, as an installer would, and
/// reads them back from what it prints.
pub fn enroll_cli(data: &Path, addr: std::net::SocketAddr, id: &str) -> Creds {
    enroll_with(&["--data", data.to_str().unwrap()], addr, id)
}

/// `panel camera add --id ID --name ID` with `args` (`--data DIR`,
/// `--config FILE`): the credentials it prints.
pub fn enroll_with(args: &[&str], addr: std::net::SocketAddr, id: &str) -> Creds {
    let out = Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(["camera", "add", "--id", id, "--name", id])
        .args(args)
        .output()
        .expect("run panel camera add");
    assert!(
        out.status.success(),
        "panel camera add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[derive(serde::Deserialize)]
    struct Printed {
        camera_id: String,
        secret: String,
        panel_fingerprint: Option<String>,
    }
    let p: Printed = toml::from_str(&String::from_utf8_lossy(&out.stdout)).expect("valid TOML");
    assert_eq!(p.camera_id, id);
    Creds {
        addr,
        id: id.into(),
        secret: cctv_protocol::auth::Secret::parse(&p.secret).unwrap(),
        fingerprint: p
            .panel_fingerprint
            .map(|f| cctv_protocol::tls::Fingerprint::parse(&f).unwrap()),
    }
}
