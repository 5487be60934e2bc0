//! A fault-injecting TCP proxy between agents and a panel: it passes
//! bytes, blackholes them (holds everything, closes nothing, as a dead
//! route does: TCP waits, and resumes intact when the route comes back), or
//! resets every connection (RST, as a rebooting switch or NAT does).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    Blackhole,
    Reset,
}

pub struct FaultProxy {
    /// Where agents connect instead of the panel.
    pub addr: SocketAddr,
    mode: Arc<watch::Sender<Fault>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(watch::channel(Fault::Pass).0);
        let m = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(carry(client, upstream, m.subscribe()));
            }
        });
        Self { addr, mode, task }
    }

    pub fn set(&self, fault: Fault) {
        self.mode.send_replace(fault);
    }
}

/// Ends a connection with a reset rather than a close.
fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(std::time::Duration::ZERO));
    drop(s);
}

/// Waits while the route is down; false if the connection is to be reset.
async fn route_up(mode: &mut watch::Receiver<Fault>) -> bool {
    loop {
        match *mode.borrow_and_update() {
            Fault::Pass => return true,
            Fault::Reset => return false,
            Fault::Blackhole => {}
        }
        if mode.changed().await.is_err() {
            return false;
        }
    }
}

async fn carry(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Fault>) {
    // A connection made while the route is down waits, as a SYN would be
    // retried, and goes through when it comes back.
    if !route_up(&mut mode).await {
        return reset(client);
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return reset(client);
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut a, mut b) = (client, server);
    let mut up = vec![0u8; 64 * 1024];
    let mut down = vec![0u8; 64 * 1024];
    loop {
        if !route_up(&mut mode).await {
            reset(a);
            reset(b);
            return;
        }
        tokio::select! {
            n = a.read(&mut up) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if b.write_all(&up[..n]).await.is_err() {
                        break;
                    }
                }
            },
            n = b.read(&mut down) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if a.write_all(&down[..n]).await.is_err() {
                        break;
                    }
                }
            },
            _ = mode.changed() => {}
        }
    }
    let _ = a.shutdown().await;
    let _ = b.shutdown().await;
}
