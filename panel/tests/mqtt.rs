//! Notifications through a real MQTT broker (mosquitto, started here):
//! a real agent's motion and tamper arrive as the README's topics, with a
//! JPEG snapshot; a broker that is down costs the recording nothing, and
//! once it is up the panel publishes every camera's state again.

mod support;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use support::*;

/// A mosquitto broker on `port`, stopped when dropped.
fn broker(port: u16) -> Proc {
    let child = Command::new("mosquitto")
        .args(["-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto is installed (apt-get install mosquitto)");
    let broker = Proc(child);
    listening(port);
    broker
}

/// Waits until something listens on `port`.
fn listening(port: u16) {
    let up = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            up.elapsed() < Duration::from_secs(10),
            "mosquitto did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A message: topic and payload.
type Said = (String, Vec<u8>);

/// Every message under `cctv/#`, as a subscriber that reconnects by
/// itself receives them.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<Said>>>);

impl Heard {
    fn subscribe(port: u16) -> Self {
        let heard = Heard::default();
        let mut o = MqttOptions::new("test-subscriber", "127.0.0.1", port);
        o.set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut eventloop) = AsyncClient::new(o, 16);
        let seen = heard.0.clone();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        client.subscribe("cctv/#", QoS::AtLeastOnce).await.unwrap();
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        seen.lock()
                            .unwrap()
                            .push((p.topic.clone(), p.payload.to_vec()));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        heard
    }

    fn got(&self, topic: &str, payload: &[u8]) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|(t, p)| t == topic && p == payload)
    }

    /// Waits until each (topic, payload) has been heard.
    async fn wait_all(&self, said: &[(&str, &[u8])], limit: Duration) {
        for (topic, payload) in said {
            wait_for(limit, topic, async || {
                self.got(topic, payload).then_some(())
            })
            .await;
        }
    }

    fn payloads(&self, topic: &str) -> Vec<Vec<u8>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

fn mqtt_config(dir: &std::path::Path, port: u16) -> cctv_engine::config::PanelConfig {
    let mut cfg = config(dir);
    cfg.mqtt = Some(cctv_engine::mqtt::MqttConfig {
        broker: format!("127.0.0.1:{port}"),
        ..Default::default()
    });
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn motion_and_tamper_reach_the_broker_with_a_snapshot() {
    let Some(data) = testdata() else { return };
    let port = free_port();
    let _broker = broker(port);
    let heard = Heard::subscribe(port);
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(mqtt_config(dir.path(), port)).await;
    wait_for(Duration::from_secs(10), "the panel online", async || {
        heard.got("cctv/status", b"online").then_some(())
    })
    .await;
    let creds = enroll(&engine, "door", "Front door").await;
    // People walk for 6 s, then the lens is covered until the clip ends.
    let clip = data.join("events/tamper_covered.mp4");
    let mut agent = start_agent(
        &creds,
        &["--source", &format!("file:{}", clip.display()), "--no-loop"],
    );
    let started: [(&str, &[u8]); 3] = [
        ("cctv/door/state", b"live"),
        ("cctv/door/motion", b"ON"),
        ("cctv/door/tamper", b"covered"),
    ];
    // The clip plays in 12 s, longer on a busy machine.
    heard.wait_all(&started, Duration::from_secs(60)).await;
    let snapshots = heard.payloads("cctv/door/snapshot");
    assert!(snapshots.len() >= 2, "{} snapshots", snapshots.len());
    for s in &snapshots {
        assert!(cctv_engine::jpeg::dimensions(s).is_some(), "not a JPEG");
    }
    let status = tokio::task::spawn_blocking(move || agent.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let ended: [(&str, &[u8]); 3] = [
        ("cctv/door/state", b"offline"),
        ("cctv/door/tamper", b"none"),
        ("cctv/door/motion", b"OFF"),
    ];
    heard.wait_all(&ended, Duration::from_secs(10)).await;
    engine.shutdown().await;
    wait_for(Duration::from_secs(10), "the panel offline", async || {
        heard.got("cctv/status", b"offline").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_down_costs_no_frame_and_is_caught_up_with() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(mqtt_config(dir.path(), port)).await;
    let creds = enroll(&engine, "door", "").await;
    let camera = FakeCamera::start(&creds, 10).await;
    // Four seconds with nowhere to publish: every frame still recorded.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let c = engine.camera("door").unwrap();
    assert_eq!(c.state, cctv_engine::catalog::CameraState::Live);
    assert!(c.recording);
    assert_eq!(c.frames_unrecorded, 0);
    assert!(c.frames_received >= 30, "{} frames", c.frames_received);
    // The broker comes up: the retained state arrives without a change.
    let _broker = broker(port);
    let heard = Heard::subscribe(port);
    wait_for(
        Duration::from_secs(20),
        "the state once the broker is up",
        async || heard.got("cctv/door/state", b"live").then_some(()),
    )
    .await;
    assert!(heard.got("cctv/status", b"online"));
    drop(camera);
    engine.shutdown().await;
}

/// A CA and a broker certificate for 127.0.0.1, as PEM files in `dir`:
/// (ca.pem, server.pem, server.key).
fn certificates(dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let paths = ["ca.pem", "server.pem", "server.key"].map(|f| dir.join(f));
    std::fs::write(&paths[0], ca.pem()).unwrap();
    std::fs::write(&paths[1], cert.pem()).unwrap();
    std::fs::write(&paths[2], key.serialize_pem()).unwrap();
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_logs_in_over_tls_and_a_wrong_password_gets_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key] = certificates(dir.path());
    let passwd = dir.path().join("passwd");
    let made = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&passwd)
        .args(["panel", "s3cret"])
        .status()
        .expect("mosquitto_passwd is installed");
    assert!(made.success());
    // TLS with a password for the panel; plain, anonymous, for the test.
    let (tls_port, plain_port) = (free_port(), free_port());
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\n\
             listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n\
             allow_anonymous false\npassword_file {}\n\
             listener {plain_port} 127.0.0.1\nallow_anonymous true\n",
            ca.display(),
            cert.display(),
            key.display(),
            passwd.display()
        ),
    )
    .unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mosquitto");
    let _broker = Proc(child);
    listening(plain_port);
    let heard = Heard::subscribe(plain_port);
    let panel = |password: &str, prefix: &str| {
        let mut cfg = config(&dir.path().join(prefix));
        cfg.mqtt = Some(cctv_engine::mqtt::MqttConfig {
            broker: format!("127.0.0.1:{tls_port}"),
            client_id: format!("panel-{prefix}"),
            username: Some("panel".into()),
            password: Some(password.into()),
            tls: true,
            ca_file: Some(ca.clone()),
            topic_prefix: format!("cctv/{prefix}"),
        });
        cfg
    };
    let wrong = start_engine(panel("guess", "wrong")).await;
    let right = start_engine(panel("s3cret", "right")).await;
    wait_for(
        Duration::from_secs(10),
        "the right password online",
        async || heard.got("cctv/right/status", b"online").then_some(()),
    )
    .await;
    // The wrong one has had the same time, and tries every 2 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(heard.payloads("cctv/wrong/status").is_empty());
    right.shutdown().await;
    wrong.shutdown().await;
}
